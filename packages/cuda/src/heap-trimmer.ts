import type { HeapTrimmerV1 } from '@draft/core';
import { loadBinding } from './binding.js';

/**
 * The addon's heap trimmer for @draft/core's `registerHeapTrimmer` (`malloc_trim(0)` on glibc): runtimes call
 * it after freeing a lot (a session created, a long prefill, an idle release), so RSS follows what the process
 * uses instead of its high-water mark. Null when the addon is unavailable or the C library cannot trim.
 */
export function createHeapTrimmer(): HeapTrimmerV1 | null {
  const { binding } = loadBinding();
  if (!binding || typeof binding.trimHeap !== 'function') return null;
  // Support is fixed when the addon is compiled (glibc or not); asking costs one trim, which is harmless.
  if (!binding.trimHeap().supported) return null;
  return {
    name: 'native-malloc-trim',
    trim: () => {
      const r = binding.trimHeap();
      return { trimmed: r.trimmed, ...(r.releasedBytes !== undefined ? { releasedBytes: r.releasedBytes } : {}), ...(r.reason ? { reason: r.reason } : {}) };
    },
  };
}
