// `npm run cli -- faults --to URL`: the fault proxy by hand. It prints the URL to give the service
// (DATABASE_URL), then takes one command a line on standard input.
import { createInterface } from 'node:readline';
import { maskSecrets } from 'pg-queuepool';
import { FaultProxy } from './proxy.ts';

export const COMMANDS = 'drop | refuse | reset | delay <ms> | heal | status | quit';

export interface ConsoleOptions {
  /** PostgreSQL's URL: connections go to its host and port. */
  to: string;
  port: number;
  input?: NodeJS.ReadableStream;
  out?: (line: string) => void;
}

/** Runs until `quit`, the end of the input, or `stop` aborts; resolves with the exit code. */
export async function runFaultConsole (options: ConsoleOptions, stop: AbortSignal): Promise<number> {
  const out = options.out ?? console.log;
  const target = new URL(options.to);
  const proxy = new FaultProxy({
    target: { host: target.hostname, port: Number(target.port || 5432) },
    port: options.port,
  });
  await proxy.start();
  out(`Fault proxy on 127.0.0.1:${proxy.port} -> ${target.hostname}:${target.port || 5432}`);
  out(`Point the service at it: DATABASE_URL='${maskSecrets(proxy.urlFor(options.to))}' npm start`);
  out(`Commands, one a line: ${COMMANDS}`);
  const lines = createInterface({ input: options.input ?? process.stdin, terminal: false });
  const done = new Promise<void>((resolve) => {
    lines.once('close', resolve);
    stop.addEventListener('abort', () => lines.close(), { once: true });
  });
  lines.on('line', (line) => {
    const answer = command(proxy, line.trim());
    if (answer === 'quit') lines.close();
    else if (answer) out(answer);
  });
  await done;
  await proxy.close();
  return 0;
}

/** One command: what it did, in a line; 'quit'; or '' for an empty line. */
export function command (proxy: FaultProxy, line: string): string {
  const [verb, arg, ...rest] = line.split(/\s+/);
  if (!verb) return '';
  if (rest.length || (arg !== undefined && verb !== 'delay')) {
    return `Unknown command ${JSON.stringify(line)}: expected ${COMMANDS}`;
  }
  switch (verb) {
    case 'drop':
      proxy.drop();
      return 'drop: every byte of every connection, open or new, is dropped both ways (a partition) until heal';
    case 'refuse':
      proxy.refuse();
      return 'refuse: new connections are reset at once; open ones pass';
    case 'reset': {
      const before = proxy.stats().open;
      proxy.reset();
      return `reset: ${before} open connection(s) reset`;
    }
    case 'delay': {
      if (arg === undefined || !/^\d+$/.test(arg) || Number(arg) > 60_000) {
        return `Invalid delay ${JSON.stringify(arg ?? '')}: expected milliseconds, an integer from 0 to 60000`;
      }
      proxy.delay(Number(arg));
      return `delay: each chunk, each way, ${arg} ms later`;
    }
    case 'heal':
      proxy.heal();
      return 'heal: passing again; connections caught by a partition stay dead';
    case 'status':
      return JSON.stringify(proxy.stats());
    case 'quit':
    case 'exit':
      return 'quit';
    default:
      return `Unknown command ${JSON.stringify(verb)}: expected ${COMMANDS}`;
  }
}
