// The demo's "hosts": each a Linux network namespace with its own address on a bridge the demo
// creates (10.77.0.0/24; the database side is the bridge's own address), or, where namespaces
// cannot be made (not root, no `ip`), distinct loopback addresses 127.0.0.x. Traffic goes only
// to these addresses.
import { execFileSync } from 'node:child_process';
import { findProgram } from '../os/processes.ts';

const PREFIX = 'anp';
const BRIDGE = `${PREFIX}-br0`;
const SUBNET = '10.77.0';

export interface Network {
  mode: 'netns' | 'loopback';
  /** Why namespaces were not used (loopback mode). */
  reason?: string;
  /** Where the hosts reach the database side (PostgreSQL, PgBouncer). */
  dbAddress: string;
  /** The network the database must accept logins from, as CIDR. */
  cidr: string;
  hosts: { name: string; address: string }[];
  /** The command that runs `program` on host i (inside its namespace). */
  command(i: number, program: string, args: string[]): [string, string[]];
  /** Removes the namespaces and the bridge (what runs in them must be stopped first). */
  teardown(): void;
}

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
const quietly = (...args: string[]) => {
  try {
    ip(...args);
  } catch {
    /* not there */
  }
};

/** `n` hosts: namespaces when we may make them, loopback addresses otherwise. */
export function createNetwork (n: number): Network {
  const why =
    process.getuid?.() !== 0
      ? 'not root: network namespaces need CAP_NET_ADMIN'
      : findProgram('ip', ['-V']) === undefined
        ? 'the ip program (Debian package iproute2) is missing'
        : undefined;
  if (!why) {
    try {
      return namespaces(n);
    } catch (err) {
      removeNamespaces(n);
      return loopback(
        n,
        'network namespaces could not be made ' +
          `here (${(err as { stderr?: Buffer }).stderr?.toString().trim() || (err as Error).message})`
      );
    }
  }
  return loopback(n, why);
}

function namespaces (n: number): Network {
  removeNamespaces(n); // what a killed run may have left
  ip('link', 'add', BRIDGE, 'type', 'bridge');
  ip('addr', 'add', `${SUBNET}.1/24`, 'dev', BRIDGE);
  ip('link', 'set', BRIDGE, 'up');
  const hosts = Array.from({ length: n }, (_, k) => ({
    name: `${PREFIX}-h${k + 1}`,
    address: `${SUBNET}.${11 + k}`,
  }));
  hosts.forEach((h, k) => {
    const outside = `${PREFIX}-v${k + 1}`;
    const inside = `${PREFIX}-p${k + 1}`;
    ip('netns', 'add', h.name);
    ip('link', 'add', outside, 'type', 'veth', 'peer', 'name', inside);
    ip('link', 'set', inside, 'netns', h.name);
    ip('link', 'set', outside, 'master', BRIDGE, 'up');
    ip('-n', h.name, 'addr', 'add', `${h.address}/24`, 'dev', inside);
    ip('-n', h.name, 'link', 'set', inside, 'up');
    ip('-n', h.name, 'link', 'set', 'lo', 'up');
  });
  return {
    mode: 'netns',
    dbAddress: `${SUBNET}.1`,
    cidr: `${SUBNET}.0/24`,
    hosts,
    command: (i, program, args) => ['ip', ['netns', 'exec', hosts[i]!.name, program, ...args]],
    teardown: () => removeNamespaces(n),
  };
}

function removeNamespaces (n: number): void {
  for (let k = 1; k <= Math.max(n, 16); k++) {
    quietly('netns', 'del', `${PREFIX}-h${k}`);
    quietly('link', 'del', `${PREFIX}-v${k}`);
  }
  quietly('link', 'del', BRIDGE);
}

function loopback (n: number, reason: string): Network {
  return {
    mode: 'loopback',
    reason,
    dbAddress: '127.0.0.1',
    cidr: '127.0.0.0/8',
    hosts: Array.from({ length: n }, (_, k) => ({ name: `host ${k + 1}`, address: `127.0.0.${11 + k}` })),
    command: (_i, program, args) => [program, args],
    teardown: () => {},
  };
}
