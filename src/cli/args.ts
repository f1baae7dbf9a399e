// What every command shares: settings as flags, the parsers of the commands' own arguments, and
// how a command's exit code reaches main().
import { InvalidArgumentError, Option, type Command } from 'commander';
import {
  int,
  Invalid,
  isSwitch,
  num,
  SETTING_KEYS,
  SETTINGS,
  settingHelp,
  type Config,
  type Parse,
} from '../config.ts';

/** Bad usage and bad settings exit 2; a failure while running exits 1. */
export class UsageError extends Error {}

export type Flags = Partial<Record<keyof Config, string | boolean>>;

/** Every setting as a flag of `command`: --pool-size <value>, and --pgbouncer [on|off] for the switches. */
export function withSettings (command: Command, keys: readonly (keyof Config)[] = SETTING_KEYS): Command {
  for (const key of keys) {
    const s = SETTINGS[key];
    command.addOption(new Option(isSwitch(key) ? `--${s.flag} [on|off]` : `--${s.flag} <value>`, settingHelp(key)));
  }
  return command;
}

/** A setting's parser as a command's argument parser: commander reports `expected` with the flag. */
function argument<T> (parse: Parse<T>, expected: string) {
  return (raw: string): T => {
    const value = parse(raw);
    if (value instanceof Invalid) throw new InvalidArgumentError(value.reason ?? `expected ${expected}`);
    return value;
  };
}

/** An integer argument, read as the settings' integers are (plain decimal). */
export const intArg = (min: number, max: number) => argument(int(min, max), `an integer from ${min} to ${max}`);

/** A number argument, read as the settings' numbers are (plain decimal). */
export const numArg = (min: number, max: number) => argument(num(min, max), `a number from ${min} to ${max}`);

/** The first of `keys` given on the command line, as its flag (allowWrites: --allow-writes): for "X goes with Y". */
export function firstGiven<O extends object> (options: O, keys: (keyof O & string)[]): string | undefined {
  const key = keys.find((k) => options[k] !== undefined && options[k] !== false);
  return key && `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

export const collect = (value: string, previous: string[] = []) => [...previous, value];

/** JSON.parse, or undefined when it is not JSON. */
export function parseJson (text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** A comma-separated list of distinct integers from min to max, in increasing order: 1,2,4,8. */
export function intListArg (min: number, max: number) {
  return (raw: string) => {
    const parts = raw.split(',');
    const one = int(min, max);
    if (!parts.every((p) => !(one(p) instanceof Invalid))) {
      throw new InvalidArgumentError(`expected integers from ${min} to ${max}, separated by commas (1,2,4,8)`);
    }
    const n = parts.map(Number);
    if (n.some((x, i) => i > 0 && x <= n[i - 1]!)) {
      throw new InvalidArgumentError('expected increasing sizes, each once (1,2,4,8)');
    }
    return n;
  };
}

/** Set by the command that ran: `serve` keeps running after its action returns, every other command exits with it. */
export let exitCode: number | undefined;
export const RUNS_UNTIL_SIGNAL = -1;
export const run =
  <A extends unknown[]>(fn: (...args: A) => Promise<number>) =>
    async (...args: A) => {
      exitCode = await fn(...args);
    };
