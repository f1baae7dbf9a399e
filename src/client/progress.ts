// Where a long run is, on one line of the terminal that rewrites itself: what runs now, and the time
// elapsed against the time expected. On a terminal only: piped or redirected, nothing is written,
// so logs and JSON stay clean. One line at a time: a run inside another (the demo's client bursts)
// shows as a detail of the outer line instead of a line that fights it.
import type { WriteStream } from 'node:tty';

export class ProgressLine {
  /** The line drawn now, if any: a line started while it runs becomes its detail. */
  private static top: ProgressLine | undefined;
  private readonly parent?: ProgressLine;
  private text: string | (() => string) = '';
  private detail?: () => string;
  private shown = false;
  private readonly t0 = performance.now();
  private readonly timer?: NodeJS.Timeout;
  private readonly on: boolean;

  /**
   * @param expectedSeconds how long the whole run should take, shown beside the time elapsed
   * @param showAfterMs nothing is drawn before this much time has passed (short runs stay quiet)
   */
  constructor (
    private readonly expectedSeconds?: number,
    private readonly showAfterMs = 0,
    private readonly stream: Pick<WriteStream, 'write' | 'isTTY'> = process.stderr
  ) {
    this.on = Boolean(stream.isTTY);
    if (!this.on) return;
    if (ProgressLine.top) {
      this.parent = ProgressLine.top;
      this.parent.detail = () => this.textNow();
      return;
    }
    ProgressLine.top = this;
    this.timer = setInterval(() => this.render(), 200).unref();
  }

  /** What runs now: a string, or a function read at each redraw. */
  update (text: string | (() => string)): void {
    this.text = text;
    this.render();
  }

  /** `print`, with the line wiped before each line printed (the next redraw brings it back below). */
  printing (print: (line: string) => void): (line: string) => void {
    return (line) => {
      this.clear();
      print(line);
    };
  }

  /** Wipes the line, so that a line printed next stands alone; the next redraw brings it back. */
  clear (): void {
    if (this.parent) return this.parent.clear();
    if (this.shown) this.stream.write('\r\x1b[2K');
    this.shown = false;
  }

  stop (): void {
    if (this.parent) {
      this.parent.detail = undefined;
      return;
    }
    clearInterval(this.timer);
    this.clear();
    if (ProgressLine.top === this) ProgressLine.top = undefined;
  }

  private textNow (): string {
    return typeof this.text === 'function' ? this.text() : this.text;
  }

  private render (): void {
    const elapsedMs = performance.now() - this.t0;
    if (!this.on || this.parent || elapsedMs < this.showAfterMs) return;
    const text = this.textNow();
    if (!text) return; // nothing to say yet
    const detail = this.detail?.();
    const of = this.expectedSeconds === undefined ? '' : ` of about ${Math.ceil(this.expectedSeconds)} s`;
    const columns = (this.stream as Partial<WriteStream>).columns || 120; // 0: a terminal of unknown size
    const line = `  ${text}${detail ? `: ${detail}` : ''} (${(elapsedMs / 1000).toFixed(0)} s${of})`;
    // Longer than the terminal, the line would wrap, and \r would rewrite only its last row.
    this.stream.write(`\r\x1b[2K${line.length < columns ? line : `${line.slice(0, columns - 2)}…`}`);
    this.shown = true;
  }
}
