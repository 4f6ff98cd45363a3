import { MessageChannel } from 'node:worker_threads';

/**
 * Frees a large buffer's memory now instead of at the worker's next garbage collection. A worker collects when
 * its own JS heap asks for it, not when the process's RSS grows: an idle worker may not collect for a long time
 * (a model file read to find its graph, 146 MB on the perf model, stayed resident beside the weights ORT had
 * copied), and a busy one leaves each request's transient arrays (a prefill's hidden states and RoPE rows, the
 * KV buffers its pool let go) to pile up under the next (SpecKV at 8K on the perf pair: 30–50 MiB per request,
 * decision record 2026-12-07-transient-buffers-freed-at-once.md). Transferring the buffer into a message on a
 * channel that is then closed detaches it here and drops the message, which frees its backing store.
 * Every view on the buffer reads as empty afterwards; the caller must not use it again. Returns the bytes freed
 * (0 for a buffer that cannot be transferred, e.g. one of Node's pooled buffers or a SharedArrayBuffer).
 */
export function releaseBufferNow(buffer: ArrayBufferLike): number {
  if (!(buffer instanceof ArrayBuffer)) return 0;
  const size = buffer.byteLength;
  const { port1, port2 } = new MessageChannel();
  try {
    port1.postMessage(null, [buffer]);
  } catch {
    return 0; // untransferable (pooled): left to the garbage collector
  } finally {
    port1.close();
    port2.close();
  }
  return size;
}

/**
 * `releaseBufferNow` for a view that owns its whole buffer; a view of part of a buffer (which others may use) is
 * left alone and 0 returned.
 */
export function releaseBytesNow(view: ArrayBufferView): number {
  const buffer = view.buffer;
  if (view.byteOffset !== 0 || view.byteLength !== buffer.byteLength) return 0;
  return releaseBufferNow(buffer);
}
