// Names what blocks the event loop, live, from the monitor thread. The main loop writes a
// heartbeat into shared memory every few milliseconds; when it stops for longer than the
// threshold, this thread connects an in-process inspector session to the main thread, enables
// the debugger and pauses it (each served by an interrupt, so it reaches a thread busy in
// JavaScript, between native calls, or waiting in Atomics.wait), reads its call frames, resumes
// it at once, and disables the debugger and disconnects again. The block is recorded when the heartbeat comes
// back: when it began, how long it lasted, the frames mapped to the TypeScript source, and the
// route whose handler was running when the stall was seen.
//
// The session and the debugger exist only during a stall: enabled, V8 runs every promise
// through the debugger's hooks, and an await-heavy loop took 8 times the CPU here; and it is
// not started ahead of time either: once it has been on, the same loop stays about 4 % slower
// for the process's life (measured here; V8 does not restore its fast path for promises).
// While nothing blocks, only this thread's timer runs. Enabling replays every
// loaded script to the session (about 1,700 here), which takes the main thread some 50 ms (130
// the first time): the stack is taken that much after the threshold, and the block reported
// includes it. Blocks that end sooner are recorded without frames. No port is opened: the
// session is this process's own.
import { readFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { SourceMap } from 'node:module';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { now } from '../clock.ts';

export interface BlockFrame {
  /** The function's name, or "(anonymous)". */
  fn: string;
  /** The TypeScript file for our own code (relative to the project), node:internal/... for Node's, a path otherwise. */
  file: string;
  line: number;
  column: number;
}

export interface Block {
  /** When the loop last answered before the stall (epoch ms). */
  at: number;
  /** How long it stalled, in ms: known once the loop answers again. */
  ms: number;
  /** How long after the stall began the stack was taken. */
  sampledAfterMs: number;
  /** The main thread's stack, innermost first (at most 8 frames); empty if it could not be taken in time. */
  frames: BlockFrame[];
  /** The innermost frame of our own code: the function to fix. */
  culprit: BlockFrame | undefined;
  /** The route whose handler was running (its synchronous part), or null outside any handler. */
  route: string | null;
}

export interface DetectorOptions {
  thresholdMs: number;
  heartbeatMs: number;
  /** The main loop's last heartbeat (epoch ms). */
  lastBeat: () => number;
  /** The route being handled right now, if any. */
  route: () => string | null;
  /** The project's root: frames under it (outside node_modules) are ours. */
  root: string;
  onBlock: (block: Block) => void;
}

interface Script {
  url: string;
  sourceMapURL: string;
}

interface CallFrame {
  functionName: string;
  location: { scriptId: string; lineNumber: number; columnNumber: number };
}

const MAX_FRAMES = 8;

export class BlockDetector {
  /** Scripts as the session that samples now was told of them (its Debugger.scriptParsed). */
  private readonly scripts = new Map<string, Script>();
  private readonly maps = new Map<string, SourceMap | null>();
  /** The session taking a stack now, if any: one at a time, and none while nothing blocks. */
  private session: Session | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** The heartbeat a stall was seen after, so that one stall is sampled once. */
  private stalledAfter = 0;
  private current: Omit<Block, 'ms'> | undefined;

  constructor (private readonly o: DetectorOptions) {}

  start (): void {
    // Half the threshold: a stall is seen at most threshold / 2 late, for 2 wakeups per threshold.
    this.timer = setInterval(() => this.check(), Math.max(10, Math.min(50, this.o.thresholdMs / 2)));
  }

  stop (): void {
    clearInterval(this.timer);
    this.session?.disconnect();
    this.session = undefined;
  }

  private check (): void {
    const beat = this.o.lastBeat();
    if (beat === 0) return;
    const stalledMs = now() - beat - this.o.heartbeatMs;
    if (this.current && beat !== this.stalledAfter) {
      // The loop answered: the block is over.
      const block = { ...this.current, ms: Math.max(this.o.thresholdMs, beat - this.stalledAfter - this.o.heartbeatMs) };
      this.current = undefined;
      this.o.onBlock(block);
    }
    if (!this.current && stalledMs > this.o.thresholdMs && beat !== this.stalledAfter) {
      this.stalledAfter = beat;
      const block: Omit<Block, 'ms'> = { at: beat, sampledAfterMs: 0, frames: [], culprit: undefined, route: this.o.route() };
      this.current = block;
      if (!this.session) this.sample(block, beat);
    }
  }

  /**
   * Connects a session to the main thread, enables the debugger (which sends every script, the
   * frames are resolved against), pauses, reads the frames, resumes, and lets go of it all.
   * Each step is served by an interrupt of the stalled thread. Callbacks, not await: the
   * session's answers come on this thread's loop.
   */
  private sample (block: Omit<Block, 'ms'>, beat: number): void {
    const session = new Session();
    this.session = session;
    session.connectToMainThread();
    session.on('Debugger.scriptParsed', ({ params }) => {
      if (params.url) this.scripts.set(params.scriptId, { url: params.url, sourceMapURL: params.sourceMapURL ?? '' });
    });
    session.on('Debugger.paused', ({ params }) => {
      // Resume first: every moment here is a moment more of the stall. The main thread is
      // paused, so its heartbeat cannot move meanwhile: if it moved since the stall began, the
      // block ended before the pause landed, and these frames are of whatever ran next.
      session.post('Debugger.resume');
      if (this.current === block && this.o.lastBeat() === beat) {
        block.frames = (params.callFrames as CallFrame[]).slice(0, MAX_FRAMES).map((f) => this.frameOf(f));
        block.culprit = block.frames.find((f) => this.ours(f));
        block.sampledAfterMs = now() - block.at;
      }
      session.post('Debugger.disable', () => {
        session.disconnect();
        this.scripts.clear();
        if (this.session === session) this.session = undefined;
      });
    });
    session.post('Debugger.enable', () => session.post('Debugger.pause', () => {}));
  }

  private ours (f: BlockFrame): boolean {
    // shown() makes our files relative and everything outside the project absolute.
    return !f.file.startsWith('node:') && !f.file.startsWith('/') && !f.file.includes('node_modules');
  }

  private frameOf (f: CallFrame): BlockFrame {
    const { scriptId, lineNumber, columnNumber } = f.location;
    const fn = f.functionName || '(anonymous)';
    const script = this.scripts.get(scriptId);
    if (!script) return { fn, file: '(unknown)', line: lineNumber + 1, column: columnNumber + 1 };
    const entry = this.mapOf(script)?.findEntry(lineNumber, columnNumber) as { originalSource?: string; originalLine?: number; originalColumn?: number } | undefined;
    if (entry?.originalSource !== undefined && entry.originalLine !== undefined) {
      return { fn, file: this.shown(new URL(entry.originalSource, script.url).href), line: entry.originalLine + 1, column: (entry.originalColumn ?? 0) + 1 };
    }
    return { fn, file: this.shown(script.url), line: lineNumber + 1, column: columnNumber + 1 };
  }

  /**
   * A script's source map (tsc's .js.map beside it, or tsx's inline one), or null if it has none.
   * Kept across blocks by script URL: each block's session is told of the scripts anew, and the
   * maps on disk do not change while the process runs.
   */
  private mapOf (script: Script): SourceMap | null {
    const key = `${script.url} ${script.sourceMapURL}`;
    let map = this.maps.get(key);
    if (map !== undefined) return map;
    map = null;
    if (script.sourceMapURL && script.url.startsWith('file:')) {
      try {
        const ref = new URL(script.sourceMapURL, script.url);
        const text = ref.protocol === 'data:'
          ? Buffer.from(ref.pathname.slice(ref.pathname.indexOf(',') + 1), ref.pathname.includes(';base64,') ? 'base64' : 'utf8').toString('utf8')
          : readFileSync(fileURLToPath(ref), 'utf8');
        map = new SourceMap(JSON.parse(text));
      } catch {
        // A map that cannot be read: the frames stay in the generated JavaScript.
      }
    }
    this.maps.set(key, map);
    return map;
  }

  private shown (url: string): string {
    if (!url.startsWith('file:')) return url;
    const path = fileURLToPath(url);
    const rel = relative(this.o.root, path);
    return rel.startsWith('..') ? path : rel;
  }
}
