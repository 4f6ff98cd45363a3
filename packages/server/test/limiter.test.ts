import { describe, expect, it } from 'vitest';
import { FifoLimiter, QueueFullError } from '../src/index.js';

describe('FifoLimiter', () => {
  it('runs maxConcurrent at once, grants waiters first in first out, refuses beyond maxQueue, and reports idle', async () => {
    const limiter = new FifoLimiter(2, 2);
    const order: string[] = [];
    const a = await limiter.acquire();
    const b = await limiter.acquire();
    const granted = (name: string) => (release: () => void) => {
      order.push(name);
      return release;
    };
    const c = limiter.acquire().then(granted('c'));
    const d = limiter.acquire().then(granted('d'));
    await expect(limiter.acquire()).rejects.toBeInstanceOf(QueueFullError);
    expect([limiter.active, limiter.queued]).toEqual([2, 2]);
    let idle = false;
    const idlePromise = limiter.idle().then(() => (idle = true));
    b();
    b(); // idempotent
    const releaseC = await c;
    a();
    const releaseD = await d;
    expect(order).toEqual(['c', 'd']);
    expect([limiter.active, limiter.queued]).toEqual([2, 0]);
    releaseC();
    releaseD();
    await idlePromise;
    expect(idle).toBe(true);
    expect(limiter.active).toBe(0);
  });

  it('a waiter whose signal fires leaves the queue with an AbortError', async () => {
    const limiter = new FifoLimiter(1, 1);
    const release = await limiter.acquire();
    const controller = new AbortController();
    const waiting = limiter.acquire(controller.signal);
    controller.abort();
    await expect(waiting).rejects.toMatchObject({ code: 'ABORTED' });
    expect(limiter.queued).toBe(0);
    release();
    expect(limiter.active).toBe(0);
  });
});
