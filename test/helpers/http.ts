// Real HTTP over real sockets: one request on its own connection, the answer with its timing.
import http from 'node:http';

export interface Response {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  json: unknown;
  ms: number;
}

/** One HTTP request on its own connection: the one HTTP helper of the tests that use sockets. */
export function request (
  base: string,
  method: string,
  path: string,
  opts: { headers?: Record<string, string>; body?: string; signal?: AbortSignal } = {}
): Promise<Response> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request(
      new URL(path, base),
      { method, headers: opts.headers, agent: false, signal: opts.signal },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          body += c;
        });
        res.on('end', () => {
          let parsed: unknown;
          try {
            parsed = body ? JSON.parse(body) : undefined;
          } catch {
            parsed = undefined;
          }
          resolve({
            status: res.statusCode!,
            headers: res.headers,
            body,
            json: parsed,
            ms: performance.now() - t0,
          });
        });
      }
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

export const get = (base: string, path: string) => request(base, 'GET', path);
