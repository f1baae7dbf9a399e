// Where the service's database is, as src/server/ found or started it: the one shape the app is
// given (its settings come separately, as the parsed Config).

/** The servers the service uses: the pool's, PostgreSQL itself, its standbys, its version. */
export interface DatabaseTopology {
  /** Where the pool connects: PostgreSQL, or a PgBouncer in front of it. */
  url: string;
  /** PostgreSQL itself (`url` without PgBouncer): the monitor reads pg_stat_activity here. */
  directUrl: string;
  /** Standbys that serve the reads (REPLICAS, DATABASE_REPLICA_URLS); none: every query on `url`. */
  replicas: { name: string; url: string }[];
  /** PostgreSQL's server_version_num, which decides our sessions' guards; unknown: those every version has. */
  serverVersion?: number;
}
