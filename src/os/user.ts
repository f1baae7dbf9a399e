// PostgreSQL and PgBouncer refuse to run as root: as root they run as the `postgres` OS user,
// which must be able to reach their files.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, statSync } from 'node:fs';
import { userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';

const OS_USER = 'postgres';

/** spawn() options: the uid and gid to run a server as, or none when we are not root. */
export type Owner = { uid?: number; gid?: number };

/** As root, the `postgres` OS user (created if missing); otherwise ourselves. */
export function osUser (): Owner {
  if (userInfo().uid !== 0) return {};
  const id = (flag: string) => Number(execFileSync('id', [flag, OS_USER], { encoding: 'utf8' }).trim());
  try {
    return { uid: id('-u'), gid: id('-g') };
  } catch {
    execFileSync('useradd', [
      '--system',
      '--user-group',
      '--no-create-home',
      '--shell',
      '/usr/sbin/nologin',
      OS_USER,
    ]);
    return { uid: id('-u'), gid: id('-g') };
  }
}

/** The first folder on the way to `path` that `owner` may not enter, if any. */
export function unreachable (path: string, owner: Owner): string | undefined {
  const chain: string[] = [];
  for (let dir = resolve(path); ; dir = dirname(dir)) {
    chain.unshift(dir);
    if (dirname(dir) === dir) break;
  }
  return chain.find((d) => {
    if (!existsSync(d)) return false; // made later, by us, with the default mode
    const st = statSync(d);
    const bit = st.uid === owner.uid ? 0o100 : st.gid === owner.gid ? 0o010 : 0o001;
    return !(st.mode & bit);
  });
}

/**
 * A folder every user can enter, for what the postgres OS user must reach: one per `path`,
 * under /var/tmp (kept across reboots, unlike /tmp on many systems).
 */
export function stagingDir (path: string): string {
  const base = join('/var/tmp', 'async-node-postgres');
  const dir = join(base, createHash('sha256').update(resolve(path)).digest('hex').slice(0, 16));
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  // /var/tmp is writable by everyone: use these folders only if we (root) made them.
  for (const d of [base, dir]) {
    const st = lstatSync(d);
    if (!st.isDirectory() || st.uid !== process.getuid!()) {
      throw new Error(`${d} is not a folder owned by this user; remove it and retry`);
    }
  }
  return dir;
}
