// The steady load `demo --failover` runs across a failover: writers that record every id the
// service acknowledged (and the WAL position it gave), readers that read a recent write back
// with its X-Read-After, and a few database sleeps; beside them, the service's /servers sampled
// ten times a second. Every request has a deadline, so none can hang the demo; one that passes
// it is recorded as unanswered.
import { setTimeout as delay } from 'node:timers/promises';

export interface Sent {
  kind: 'write' | 'read' | 'sleep';
  /** performance.now() when sent and when answered (or given up). */
  start: number;
  end: number;
  /** 0: no answer (the connection failed, or past the deadline). */
  status: number;
  /** The error's code, from the JSON body of a failure. */
  code?: string;
  /** X-Served-By: the server that answered a read. */
  servedBy?: string;
}

/** The primary's pool as /servers showed it. */
export interface Sample {
  t: number;
  /** Connections open. */
  open: number;
  /** Connections the pool closed as untrusted, every cause, since start. */
  closed: number;
  /** Of them, closed because a query had no answer within QUERY_TIMEOUT. */
  deadline: number;
  waiting: number;
  /** The primary's address, as its last check reached it. */
  at?: string;
}

export interface ServersView {
  servers: {
    name: string;
    at?: string;
    pool: { total: number; waiting: number; closed: Record<string, number> };
  }[];
}

export interface LoadShape {
  writers: number;
  readers: number;
  sleepers: number;
  /** Each request's deadline, in ms. */
  deadlineMs: number;
}

export interface FailoverLoad {
  readonly samples: Sample[];
  now(): number;
  /** When the first write sent at or after `t` was acknowledged (201), if one was. */
  firstAckAfter(t: number): number | undefined;
  servers(): Promise<ServersView>;
  /** Stops sending, waits for what is in flight, and returns everything recorded. */
  stop(): Promise<{ sent: Sent[]; samples: Sample[]; acked: { id: number; lsn: string }[] }>;
}

const DEFAULT_SHAPE: LoadShape = { writers: 4, readers: 4, sleepers: 2, deadlineMs: 20_000 };

export function startFailoverLoad (base: string, shape: LoadShape = DEFAULT_SHAPE): FailoverLoad {
  const sent: Sent[] = [];
  const samples: Sample[] = [];
  const acked: { id: number; lsn: string }[] = [];
  const stopping = new AbortController();

  async function send (kind: Sent['kind'], path: string, init: RequestInit = {}): Promise<Sent & { body?: unknown }> {
    const start = performance.now();
    try {
      const res = await fetch(`${base}${path}`, { ...init, signal: AbortSignal.timeout(shape.deadlineMs) });
      const body = (await res.json().catch(() => undefined)) as { code?: string } | undefined;
      const r: Sent = {
        kind,
        start,
        end: performance.now(),
        status: res.status,
        ...(res.ok ? {} : { code: body?.code }),
        ...(res.headers.get('x-served-by') ? { servedBy: res.headers.get('x-served-by')! } : {}),
      };
      sent.push(r);
      return { ...r, body: { ...body, readAfter: res.headers.get('x-read-after') } };
    } catch {
      const r: Sent = { kind, start, end: performance.now(), status: 0 };
      sent.push(r);
      return r;
    }
  }

  // A failed request is followed by a pause: during an outage the loops must not spin the machine.
  const pace = (status: number) => delay(status >= 200 && status < 300 ? 5 : 50);

  const writer = async (w: number) => {
    for (let i = 0; !stopping.signal.aborted; i++) {
      const r = await send('write', '/todos/', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ title: `failover ${w}.${i}` }),
      });
      const body = r.body as { id?: number; readAfter?: string } | undefined;
      if (r.status === 201 && body?.id !== undefined) acked.push({ id: body.id, lsn: body.readAfter ?? '' });
      await pace(r.status);
    }
  };
  const reader = async () => {
    while (!stopping.signal.aborted) {
      const recent = acked.slice(-50);
      const pick = recent[Math.floor(Math.random() * recent.length)];
      if (!pick) {
        await delay(20);
        continue;
      }
      const r = await send('read', `/todos/${pick.id}`, { headers: { 'X-Read-After': pick.lsn } });
      await pace(r.status);
    }
  };
  const sleeper = async () => {
    while (!stopping.signal.aborted) await pace((await send('sleep', '/sleep/postgres/?seconds=0.5')).status);
  };

  const servers = async () =>
    (await (await fetch(`${base}/servers`, { signal: AbortSignal.timeout(2000) })).json()) as ServersView;
  const sampler = async () => {
    while (!stopping.signal.aborted) {
      const primary = (await servers().catch(() => undefined))?.servers.find((x) => x.name === 'primary');
      if (primary) {
        const closed = Object.values(primary.pool.closed).reduce((a, n) => a + n, 0);
        samples.push({
          t: performance.now(),
          open: primary.pool.total,
          closed,
          deadline: primary.pool.closed.deadline ?? 0,
          waiting: primary.pool.waiting,
          ...(primary.at ? { at: primary.at } : {}),
        });
      }
      await delay(100);
    }
  };

  const loops = [
    ...Array.from({ length: shape.writers }, (_, w) => writer(w)),
    ...Array.from({ length: shape.readers }, reader),
    ...Array.from({ length: shape.sleepers }, sleeper),
    sampler(),
  ];

  return {
    samples,
    now: () => performance.now(),
    firstAckAfter: (t) =>
      sent
        .filter((r) => r.kind === 'write' && r.status === 201 && r.start >= t)
        .reduce<number | undefined>((first, r) => (first === undefined || r.end < first ? r.end : first), undefined),
    servers,
    async stop () {
      stopping.abort();
      await Promise.all(loops);
      return { sent, samples, acked };
    },
  };
}
