import { trimNativeHeap } from '@draft/core';

/**
 * Coalesced heap trims for the ORT workers. A worker tells its client when it has just freed a lot of native
 * memory (its session was created or recreated, a prefill ran); the client asks @draft/core's registered heap
 * trimmer (`@draft/cuda` registers `malloc_trim`) to return it to the OS. glibc otherwise keeps it per
 * thread arena, and a draft worker's freed pages are not reused by the target's worker: the process's RSS
 * stays at the sum of both peaks (decision record 2026-12-06-heap-trim.md). Requests from several workers in
 * the same tick share one trim; trims run on the main thread, off the workers' paths.
 */
let scheduled: Promise<boolean> | undefined;

/** Schedules one trim for the current burst of requests; resolves true when memory was returned. */
export function requestHeapTrim(): Promise<boolean> {
  scheduled ??= new Promise<boolean>((resolve) => {
    setImmediate(() => {
      scheduled = undefined;
      resolve(trimNativeHeap().trimmed);
    });
  });
  return scheduled;
}
