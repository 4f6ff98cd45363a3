import { AbortError } from '@draft/core';

/** Thrown by `FifoLimiter.acquire` when `maxQueue` requests already wait. */
export class QueueFullError extends Error {
  constructor(readonly maxConcurrent: number, readonly maxQueue: number) {
    super(`The server is busy: ${maxConcurrent} running and ${maxQueue} queued requests; retry later.`);
    this.name = 'QueueFullError';
  }
}

interface Waiter {
  grant: (release: () => void) => void;
  reject: (error: unknown) => void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

/**
 * At most `maxConcurrent` holders at a time; up to `maxQueue` more wait in arrival order (FIFO); beyond that
 * `acquire` rejects at once with QueueFullError. A waiter whose signal fires leaves the queue (AbortError).
 */
export class FifoLimiter {
  private running = 0;
  private readonly queue: Waiter[] = [];
  private idleWaiters: (() => void)[] = [];

  constructor(
    readonly maxConcurrent: number,
    readonly maxQueue: number,
  ) {}

  get active(): number {
    return this.running;
  }

  get queued(): number {
    return this.queue.length;
  }

  /** Resolves with a `release` function (idempotent) once a slot is free. */
  acquire(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(new AbortError({ reason: signal.reason }));
    if (this.running < this.maxConcurrent) {
      this.running++;
      return Promise.resolve(this.releaser());
    }
    if (this.queue.length >= this.maxQueue) return Promise.reject(new QueueFullError(this.maxConcurrent, this.maxQueue));
    return new Promise((resolve, reject) => {
      const waiter: Waiter = { grant: resolve, reject, signal };
      if (signal) {
        waiter.onAbort = () => {
          const i = this.queue.indexOf(waiter);
          if (i >= 0) this.queue.splice(i, 1);
          reject(new AbortError({ reason: signal.reason }));
          this.checkIdle();
        };
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.queue.push(waiter);
    });
  }

  /** Resolves when nothing runs and nothing waits. */
  idle(): Promise<void> {
    if (this.running === 0 && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.queue.shift();
      if (next) {
        // The slot passes straight to the next waiter: `running` stays the same.
        if (next.onAbort) next.signal?.removeEventListener('abort', next.onAbort);
        next.grant(this.releaser());
      } else {
        this.running--;
        this.checkIdle();
      }
    };
  }

  private checkIdle(): void {
    if (this.running !== 0 || this.queue.length !== 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}
