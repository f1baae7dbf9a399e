// `demo --hosts N`: past one machine, for real. N hosts (network namespaces, or loopback
// addresses), each running the service with WORKERS=2, behind HAProxy, over one PostgreSQL with a
// small max_connections, reached directly or through one central PgBouncer. Three scenarios:
// (a) every host fits alone, together they exceed max_connections, and PostgreSQL refuses;
// (b) through the central PgBouncer nothing is refused and the waves are PgBouncer's;
// (c) a rolling restart under load drops nothing; a host killed outright loses what it held.
// The fleet is in hosts/fleet.ts, (a) and (b) in hosts/connections.ts, (c) in hosts/restarts.ts.
import { setTimeout as delay } from 'node:timers/promises';
import type { Config } from '../config.ts';
import type { Stoppable } from '../harness/server-process.ts';
import { straightToPostgres, throughOneBouncer } from './hosts/connections.ts';
import { Fleet, MAX_CONNECTIONS, WORKERS } from './hosts/fleet.ts';
import { restarts } from './hosts/restarts.ts';
import { createNetwork } from './network.ts';
import type { Verdict } from './verdicts.ts';

export interface HostsOptions {
  hosts: number;
  /** Shorter pauses around the restarts and the kill (--quick); the same scenarios and verdicts. */
  quick?: boolean;
  running: Set<Stoppable>;
  out: (line: string) => void;
}

export async function runHosts (
  config: Config,
  { hosts: n, quick = false, running, out }: HostsOptions
): Promise<Verdict[]> {
  const net = createNetwork(n);
  const fleet = new Fleet(config, net);
  // Stopped on the way out, or by the demo on Ctrl-C.
  running.add(fleet);
  try {
    out(
      `=== Past one machine: ${n} hosts x ${WORKERS} workers behind HAProxy, one PostgreSQL with ` +
        `max_connections ${MAX_CONNECTIONS} ===`
    );
    out(
      net.mode === 'netns'
        ? `    hosts: network namespaces ${net.hosts.map((h) => `${h.name} (${h.address})`).join(', ')} on a bridge; ` +
            `PostgreSQL and PgBouncer at ${net.dbAddress}`
        : `    hosts: loopback addresses ${net.hosts.map((h) => h.address).join(', ')} (${net.reason}); PostgreSQL ` +
            `and PgBouncer at ${net.dbAddress}`
    );
    await fleet.start();
    const pause = (ms: number) => delay(quick ? ms / 2 : ms);
    return [
      await straightToPostgres(fleet, out),
      await throughOneBouncer(fleet, out),
      ...(await restarts(fleet, pause, quick, out)),
    ];
  } finally {
    await fleet.stop();
    running.delete(fleet);
  }
}
