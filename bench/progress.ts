/**
 * The progress line on stderr: rewritten in place on a terminal; when stderr is a file or pipe, a plain line
 * now and then instead, so logs stay readable. stdout is left to the result's summary
 * (results.ts).
 */

/** How often a non-terminal stderr gets a line. */
const PLAIN_LINE_EVERY_MS = 2000;

export class Progress {
  private readonly tty = process.stderr.isTTY === true;
  private lastPlain = 0;
  private shown = false;

  constructor(private readonly quiet = false) {}

  update(line: string): void {
    if (this.quiet) return;
    if (this.tty) {
      process.stderr.write(`\r\x1b[K${line}`);
      this.shown = true;
      return;
    }
    const now = Date.now();
    if (now - this.lastPlain < PLAIN_LINE_EVERY_MS) return;
    this.lastPlain = now;
    process.stderr.write(`${line}\n`);
  }

  /** A line that stays (phase changes, results). */
  note(line: string): void {
    if (this.quiet) return;
    this.done();
    process.stderr.write(`${line}\n`);
  }

  done(): void {
    if (this.tty && this.shown) process.stderr.write('\r\x1b[K');
    this.shown = false;
  }
}
