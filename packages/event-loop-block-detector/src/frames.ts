// A stack's frames as a person wants them: in the source (the source maps beside the built files,
// or inline), the application's own files relative to its root, and the innermost of them picked
// out. The watcher maps a stalled thread's stack with it; it is exported for stacks of one's own.
import { readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Frame } from './block.js';

/** A frame as V8 reports it: function, file (URL or path), 1-based line and column. */
export type RawFrame = [fn: string | null, file: string, line: number, column: number];

const MAP_COMMENT = '//# sourceMappingURL=';

/** `    at fn (file:line:col)`, `    at file:line:col`, `    at async fn (file:line:col)`. */
const STACK_LINE = /^\s*at (?:async )?(?:(.*?) \()?(.+?):(\d+):(\d+)\)?$/;

/** Maps frames to their source and tells the application's own from the rest. */
export class SourceFrames {
  private readonly maps = new Map<string, SourceMap | null>();

  /** `root`: the application's root; frames under it, outside node_modules, are its own. */
  constructor (private readonly root: string) {}

  /** The frames of a V8 stack string (`err.stack`: the lines after its first), as data. */
  static parse (stack: string): RawFrame[] {
    const frames: RawFrame[] = [];
    for (const line of stack.split('\n')) {
      const m = STACK_LINE.exec(line);
      if (m) frames.push([m[1] ?? null, m[2]!, Number(m[3]), Number(m[4])]);
    }
    return frames;
  }

  /** One frame, in its source where its file has a source map. */
  frameOf ([name, file, line, column]: RawFrame): Frame {
    const fn = name || '(anonymous)';
    // ES modules report a file: URL, CommonJS ones a path, Node's own node:...
    const url = file.startsWith('/') ? pathToFileURL(file).href : file;
    const entry = this.mapOf(url)?.findEntry(line - 1, column - 1) as
      { originalSource?: string; originalLine?: number; originalColumn?: number } | undefined;
    if (entry?.originalSource !== undefined && entry.originalLine !== undefined) {
      return {
        fn,
        file: this.shown(new URL(entry.originalSource, url).href),
        line: entry.originalLine + 1,
        column: (entry.originalColumn ?? 0) + 1,
      };
    }
    return { fn, file: this.shown(url), line, column };
  }

  /** The application's own: under the root, not in node_modules, not Node's. */
  ours (f: Frame): boolean {
    // shown() makes the application's files relative and everything outside the root absolute.
    return !f.file.startsWith('node:') && !f.file.startsWith('/') && !f.file.includes('node_modules');
  }

  /**
   * A script's source map (a .map file it names, or an inline one), or null if it has none. Read
   * from the file's sourceMappingURL the first time a frame of it is seen, and kept: the files on
   * disk do not change while the process runs.
   */
  private mapOf (url: string): SourceMap | null {
    let map = this.maps.get(url);
    if (map !== undefined) return map;
    map = null;
    if (url.startsWith('file:')) {
      try {
        const code = readFileSync(fileURLToPath(url), 'utf8');
        const at = code.lastIndexOf(MAP_COMMENT);
        if (at >= 0) {
          const ref = new URL(code.slice(at + MAP_COMMENT.length).split('\n', 1)[0]!.trim(), url);
          const text =
            ref.protocol === 'data:'
              ? Buffer.from(
                ref.pathname.slice(ref.pathname.indexOf(',') + 1),
                ref.pathname.includes(';base64,') ? 'base64' : 'utf8'
              ).toString('utf8')
              : readFileSync(fileURLToPath(ref), 'utf8');
          map = new SourceMap(JSON.parse(text));
        }
      } catch {
        // A map that cannot be read: the frames stay in the generated JavaScript.
      }
    }
    this.maps.set(url, map);
    return map;
  }

  private shown (url: string): string {
    if (!url.startsWith('file:')) return url;
    const path = fileURLToPath(url);
    const rel = relative(this.root, path);
    return rel.startsWith('..') ? path : rel;
  }
}
