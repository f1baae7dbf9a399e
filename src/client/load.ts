// Fires N concurrent requests, each on its own TCP connection, and records when
// each one was sent and when its response had fully arrived.
import http from 'node:http';

export type ErrorKind = 'refused' | 'reset' | 'timeout' | 'http' | 'interrupted' | 'other';

export interface RequestResult {
  /** Milliseconds since the burst started. */
  start: number;
  end: number;
  status?: number;
  error?: ErrorKind;
  message?: string;
  /** The JSON error body's message for HTTP errors (for example the pool timeout). */
  body?: string;
  /** The JSON error body's code for HTTP errors (POOL_TIMEOUT, QUERY_TIMEOUT, ...). */
  code?: string;
}

export interface Burst {
  url: string;
  results: RequestResult[];
  totalMs: number;
}

export interface BurstOptions {
  timeoutMs?: number;
  onResult?: (result: RequestResult) => void;
  signal?: AbortSignal;
}

export async function burst (url: string, n: number, options: BurstOptions = {}): Promise<Burst> {
  const t0 = performance.now();
  const results: RequestResult[] = [];
  await Promise.all(
    Array.from({ length: n }, () =>
      one(url, t0, options).then((r) => {
        results.push(r);
        options.onResult?.(r);
      })
    )
  );
  return { url, results, totalMs: performance.now() - t0 };
}

function one (url: string, t0: number, options: BurstOptions): Promise<RequestResult> {
  const start = performance.now() - t0;
  // agent: false = a fresh connection per request, so the client never serializes.
  return getOnce(url, { agent: false, timeout: options.timeoutMs, signal: options.signal }).then((r) => ({
    start,
    end: performance.now() - t0,
    ...r,
  }));
}

/** What one GET came to: its status, or the kind of error (with the JSON error body's message for HTTP errors). */
export interface Outcome {
  status?: number;
  error?: ErrorKind;
  message?: string;
  body?: string;
  code?: string;
}

/** One GET, read to its end; never rejects. `onSocket` is called when it has its connection (it leaves then). */
export function getOnce (url: string, options: http.RequestOptions, onSocket?: () => void): Promise<Outcome> {
  return new Promise((resolve) => {
    const req = http.get(url, options, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        if (status < 400) return resolve({ status });
        const text = Buffer.concat(chunks).toString();
        const code = errorCode(text);
        resolve({ status, error: 'http', body: errorMessage(text), ...(code ? { code } : {}) });
      });
      res.on('error', (err) => resolve({ status: res.statusCode, ...classify(err) }));
    });
    if (onSocket) req.once('socket', onSocket);
    req.on('timeout', () => req.destroy(Object.assign(new Error('request timed out'), { code: 'ETIMEDOUT' })));
    req.on('error', (err) => resolve(classify(err)));
  });
}

export function classify (err: NodeJS.ErrnoException): { error: ErrorKind; message: string } {
  const code = err.code ?? '';
  if (code === 'ABORT_ERR' || err.name === 'AbortError') {
    return { error: 'interrupted', message: 'abandoned after Ctrl-C, still in flight' };
  }
  if (code === 'ECONNREFUSED') return { error: 'refused', message: err.message };
  if (code === 'ECONNRESET' || code === 'EPIPE' || err.message === 'socket hang up') {
    return { error: 'reset', message: err.message };
  }
  if (code === 'ETIMEDOUT') return { error: 'timeout', message: err.message };
  return { error: 'other', message: err.message || code };
}

/** The `code` of a JSON error body, if it has one. */
export function errorCode (body: string): string | undefined {
  try {
    const code = (JSON.parse(body) as { code?: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  } catch {
    return undefined;
  }
}

export function errorMessage (body: string): string {
  try {
    return (JSON.parse(body) as { message?: string }).message ?? body.slice(0, 200);
  } catch {
    return body.slice(0, 200);
  }
}
