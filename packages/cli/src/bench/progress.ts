/**
 * Progress on stderr: a redrawn bar when stderr is a TTY, else one line per finished run (logs stay readable).
 */
export class Progress {
  private done = 0;
  private readonly started = Date.now();
  private lastDraw = 0;

  constructor(
    private readonly total: number,
    private readonly write: (text: string) => void,
    private readonly tty: boolean,
  ) {}

  /** A run (or step) within the current run advanced; redraws at most every 100 ms. */
  update(label: string, detail = ''): void {
    if (!this.tty) return;
    const now = Date.now();
    if (now - this.lastDraw < 100) return;
    this.lastDraw = now;
    this.draw(label, detail);
  }

  /** A run finished (or was skipped/resumed). */
  finish(label: string, outcome: string): void {
    this.done++;
    if (this.tty) this.draw(label, outcome);
    else this.write(`[${this.done}/${this.total}] ${label}: ${outcome}\n`);
  }

  end(): void {
    if (this.tty) this.write('\n');
  }

  private draw(label: string, detail: string): void {
    const width = 24;
    const filled = this.total > 0 ? Math.round((width * this.done) / this.total) : width;
    const elapsed = (Date.now() - this.started) / 1000;
    const eta = this.done > 0 ? (elapsed / this.done) * (this.total - this.done) : Number.NaN;
    const bar = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${this.done}/${this.total}`;
    const line = `${bar} ${formatSeconds(elapsed)}${Number.isFinite(eta) ? ` eta ${formatSeconds(eta)}` : ''}  ${label} ${detail}`;
    const columns = (process.stderr as { columns?: number }).columns ?? 120;
    this.write(`\r\x1b[2K${line.slice(0, columns - 1)}`);
  }
}

export function formatSeconds(s: number): string {
  if (s < 60) return `${s.toFixed(0)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.floor(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
