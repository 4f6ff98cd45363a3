import type { BenchProgressEvent, BenchProgressListener } from '@draft/bench';

/**
 * Progress of a bench on stderr: a redrawn bar when stderr is a TTY, else one line per finished run (logs stay
 * readable); notes get a line of their own.
 */
export function progressPrinter(write: (text: string) => void, tty: boolean): BenchProgressListener {
  let started = Date.now();
  let lastDraw = 0;
  const draw = (e: { label: string; completed: number; total: number }, detail: string) => {
    const width = 24;
    const filled = e.total > 0 ? Math.round((width * e.completed) / e.total) : width;
    const elapsed = (Date.now() - started) / 1000;
    const eta = e.completed > 0 ? (elapsed / e.completed) * (e.total - e.completed) : Number.NaN;
    const bar = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${e.completed}/${e.total}`;
    const line = `${bar} ${formatSeconds(elapsed)}${Number.isFinite(eta) ? ` eta ${formatSeconds(eta)}` : ''}  ${e.label} ${detail}`;
    const columns = (process.stderr as { columns?: number }).columns ?? 120;
    write(`\r\x1b[2K${line.slice(0, columns - 1)}`);
  };
  return (event: BenchProgressEvent) => {
    switch (event.type) {
      case 'start':
        started = Date.now();
        return;
      case 'update': {
        // A run's steps redraw the bar, at most every 100 ms.
        if (!tty) return;
        const now = Date.now();
        if (now - lastDraw < 100) return;
        lastDraw = now;
        draw(event, event.detail);
        return;
      }
      case 'finish':
        if (tty) draw(event, event.outcome);
        else write(`[${event.completed}/${event.total}] ${event.label}: ${event.outcome}\n`);
        return;
      case 'end':
        if (tty) write('\n');
        return;
      case 'note':
        write(`${event.message}\n`);
        return;
    }
  };
}

export function formatSeconds(s: number): string {
  if (s < 60) return `${s.toFixed(0)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.floor(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
