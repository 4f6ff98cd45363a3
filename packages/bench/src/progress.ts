/**
 * What a long benchmark reports while it runs (`onProgress`). A run is one method × budget × length × task (or
 * prompt); `completed` counts finished runs, resumed and skipped ones included.
 */
export type BenchProgressEvent =
  /** The sweep is planned: `total` runs. */
  | { type: 'start'; total: number }
  /** A run advanced (a sample, a stage); `detail` says how far. */
  | { type: 'update'; label: string; detail: string; completed: number; total: number }
  /** A run finished, was skipped or resumed; `outcome` is one line (`accuracy 0.800`, `done earlier (resumed)`). */
  | { type: 'finish'; label: string; outcome: string; completed: number; total: number }
  /** The sweep stopped (finished, failed or aborted). */
  | { type: 'end'; completed: number; total: number }
  /** One line worth showing once, after the runs (e.g. resumed runs computed at another code revision). */
  | { type: 'note'; message: string };

export type BenchProgressListener = (event: BenchProgressEvent) => void;

/** Counts finished runs and sends the events; a missing listener makes every call a no-op. */
export class ProgressReporter {
  private completed = 0;

  constructor(
    private readonly total: number,
    private readonly listener: BenchProgressListener | undefined,
  ) {
    listener?.({ type: 'start', total });
  }

  update(label: string, detail = ''): void {
    this.listener?.({ type: 'update', label, detail, completed: this.completed, total: this.total });
  }

  finish(label: string, outcome: string): void {
    this.completed++;
    this.listener?.({ type: 'finish', label, outcome, completed: this.completed, total: this.total });
  }

  end(): void {
    this.listener?.({ type: 'end', completed: this.completed, total: this.total });
  }
}
