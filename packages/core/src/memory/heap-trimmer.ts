/**
 * Returning freed native memory to the operating system.
 *
 * glibc's malloc keeps memory that native code (ORT sessions, their workers) has freed, per thread arena, for
 * reuse: after an ORT session is created (it parses the model and copies the weights out) or a long prefill
 * ran, the process's RSS stays 150–250 MiB above what it uses (measured on the perf-shaped model; decision
 * record 2026-12-06-heap-trim.md). Only native code can ask the allocator to give it back (`malloc_trim` on
 * glibc), so a native package registers a trimmer here and runtimes call `trimNativeHeap()` after they freed
 * a lot. Without a registered trimmer the call does nothing and says why.
 */

import { InvalidArgumentError } from '../spec/errors.js';

/** What one trim did. */
export interface HeapTrimResultV1 {
  /** True when the allocator returned memory to the OS. */
  trimmed: boolean;
  /** Resident bytes before minus after, when the trimmer can measure it (≥ 0). */
  releasedBytes?: number;
  /** Why nothing was trimmed (no trimmer registered, allocator without trimming, …). */
  reason?: string;
}

/** A native allocator trimmer (`@draft/cuda` registers one: `malloc_trim(0)` on glibc). */
export interface HeapTrimmerV1 {
  readonly name: string;
  /** Gives freed memory of every thread's arena back to the OS. Synchronous, cheap (milliseconds). */
  trim(): HeapTrimResultV1;
}

/** Totals since the process started (or since the registry was made). */
export interface HeapTrimStats {
  /** The registered trimmer's name, or null. */
  trimmer: string | null;
  trims: number;
  releasedBytes: number;
}

interface HeapTrimRegistry {
  trimmer?: HeapTrimmerV1;
  trims: number;
  releasedBytes: number;
}

const GLOBAL_KEY = Symbol.for('@draft/core.heapTrimmer.v1');

/** Process-wide (shared across duplicated package copies, like the kernel registry). */
function registry(): HeapTrimRegistry {
  const holder = globalThis as unknown as Record<symbol, HeapTrimRegistry | undefined>;
  let r = holder[GLOBAL_KEY];
  if (!r) {
    r = { trims: 0, releasedBytes: 0 };
    holder[GLOBAL_KEY] = r;
  }
  return r;
}

/** Registers the process's heap trimmer (the last registration wins). Returns an unregister function. */
export function registerHeapTrimmer(trimmer: HeapTrimmerV1): () => void {
  if (typeof trimmer?.name !== 'string' || trimmer.name.length === 0) {
    throw new InvalidArgumentError({ argument: 'trimmer.name', value: trimmer?.name, expected: 'a non-empty string' });
  }
  if (typeof trimmer.trim !== 'function') throw new InvalidArgumentError({ argument: 'trimmer.trim', value: typeof trimmer.trim, expected: 'a function' });
  const r = registry();
  r.trimmer = trimmer;
  return () => {
    if (r.trimmer === trimmer) r.trimmer = undefined;
  };
}

/**
 * Asks the registered trimmer to return freed native memory to the OS. Never throws: a trimmer that fails
 * reports `trimmed: false` with its message as the reason.
 */
export function trimNativeHeap(): HeapTrimResultV1 {
  const r = registry();
  if (!r.trimmer) return { trimmed: false, reason: 'no heap trimmer is registered (import @draft/cuda/register to get one)' };
  let result: HeapTrimResultV1;
  try {
    result = r.trimmer.trim();
  } catch (error) {
    return { trimmed: false, reason: `heap trimmer '${r.trimmer.name}' failed: ${(error as Error).message}` };
  }
  r.trims++;
  r.releasedBytes += Math.max(0, result.releasedBytes ?? 0);
  return result;
}

export function heapTrimStats(): HeapTrimStats {
  const r = registry();
  return { trimmer: r.trimmer?.name ?? null, trims: r.trims, releasedBytes: r.releasedBytes };
}
