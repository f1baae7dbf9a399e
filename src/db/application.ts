/** Our connections' application_name: it lets the dashboard tell our backends from others in pg_stat_activity. */
export const APPLICATION_NAME = 'async-node-postgres';
