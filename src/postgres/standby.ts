// A streaming standby of a PostgreSQL we run, made without pg_basebackup (the embedded package
// has none): PostgreSQL's low-level backup API around a copy of the data folder, then
// standby.signal and primary_conninfo. A physical replication slot keeps the WAL the standby
// has not received yet, so that one restarted after minutes still catches up.
import {
  chownSync,
  copyFileSync,
  mkdirSync,
  readdirSync,
  rmSync,
  writeFileSync,
  appendFileSync,
  lstatSync,
  readlinkSync,
  symlinkSync,
} from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import type { Owner } from '../os/user.ts';

export interface StandbySource {
  /** The primary, as a superuser (the backup API and slots need one). */
  url: string;
  /** The primary's data folder, which we can read (we started it). */
  pgdata: string;
  /** Names the slot and the standby's application_name on the primary. */
  name: string;
}

/** Everything of a running cluster that a copy must leave out or empty (the list pg_basebackup uses). */
const EMPTIED = new Set([
  'pg_wal',
  'pg_dynshmem',
  'pg_notify',
  'pg_replslot',
  'pg_serial',
  'pg_snapshots',
  'pg_stat_tmp',
  'pg_subtrans',
]);
const SKIPPED = new Set([
  'postmaster.pid',
  'postmaster.opts',
  'backup_label',
  'tablespace_map',
  'standby.signal',
  'recovery.signal',
  'pg_internal.init',
]);

export const slotName = (name: string) => `anp_${name.replace(/[^a-z0-9_]/gi, '_').toLowerCase()}`;

/**
 * Makes `pgdata` a standby of `source`: a fresh copy, whatever was there before. The copy is
 * taken while the primary runs and writes; the backup label makes the standby replay from the
 * backup's start, so the copy need not be consistent.
 */
export async function cloneStandby (source: StandbySource, pgdata: string, owner: Owner): Promise<void> {
  const url = new URL(source.url);
  const client = new pg.Client({ connectionString: source.url, application_name: `clone ${source.name}` });
  await client.connect();
  try {
    const slot = slotName(source.name);
    // A slot left by an earlier run (its standby is re-made now) would hold WAL from then.
    await client.query(
      'SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active',
      [slot]
    );
    await client.query('SELECT pg_create_physical_replication_slot($1, true)', [slot]);
    await client.query('SELECT pg_backup_start($1, true)', [source.name]);
    let label: string;
    try {
      rmSync(pgdata, { recursive: true, force: true });
      copyTree(source.pgdata, pgdata, owner);
    } finally {
      label = (await client.query<{ labelfile: string }>('SELECT labelfile FROM pg_backup_stop(false)')).rows[0]!
        .labelfile;
    }
    const conninfo = [
      `host=${url.hostname}`,
      `port=${url.port || 5432}`,
      `user=${decodeURIComponent(url.username)}`,
      `password=${decodeURIComponent(url.password)}`,
      `application_name=${source.name}`,
    ]
      .map((kv) => kv.replace(/\\/g, '\\\\').replace(/ /g, '\\ '))
      .join(' ');
    writeOwned(join(pgdata, 'backup_label'), label, owner);
    writeOwned(join(pgdata, 'standby.signal'), '', owner);
    // postgresql.auto.conf, like pg_basebackup -R: read before postgresql.conf's values are final.
    appendFileSync(
      join(pgdata, 'postgresql.auto.conf'),
      `primary_conninfo = '${conninfo.replace(/'/g, "''")}'\nprimary_slot_name = '${slot}'\n`
    );
  } finally {
    await client.end().catch(() => {});
  }
}

/** Slots of standbys we no longer run (REPLICAS lowered): dropped, or they would keep WAL forever. */
export async function dropUnusedSlots (url: string, keep: string[]): Promise<string[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ slot_name: string }>(
      'SELECT slot_name, pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE ' +
        "'anp\\_%' AND NOT active AND NOT slot_name = ANY($1)",
      [keep.map(slotName)]
    );
    return rows.map((r) => r.slot_name);
  } finally {
    await client.end().catch(() => {});
  }
}

/** A copy that tolerates files vanishing under it (the server runs), with the server's owner. */
function copyTree (from: string, to: string, owner: Owner, top = true): void {
  mkdirSync(to, { mode: 0o700 });
  own(to, owner);
  for (const name of readdirSync(from)) {
    if (SKIPPED.has(name) || name.startsWith('pgsql_tmp')) continue;
    const src = join(from, name);
    const dst = join(to, name);
    let st;
    try {
      st = lstatSync(src);
    } catch {
      continue; // gone since readdir
    }
    if (st.isDirectory()) {
      // Only the cluster's own folders are emptied, not a database's that shares a name.
      if (top && EMPTIED.has(name)) {
        mkdirSync(dst, { mode: 0o700 });
        own(dst, owner);
      } else {
        copyTree(src, dst, owner, false);
      }
    } else if (st.isSymbolicLink()) {
      symlinkSync(readlinkSync(src), dst);
    } else {
      try {
        copyFileSync(src, dst);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw err;
      }
      own(dst, owner);
    }
  }
}

function own (path: string, owner: Owner): void {
  if (owner.uid !== undefined) chownSync(path, owner.uid, owner.gid!);
}

function writeOwned (path: string, text: string, owner: Owner): void {
  writeFileSync(path, text, { mode: 0o600 });
  own(path, owner);
}
