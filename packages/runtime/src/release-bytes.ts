import { MessageChannel } from 'node:worker_threads';

/**
 * Frees a large buffer's memory now instead of at the worker's next garbage collection: an idle worker may not
 * collect for a long time, and a model file read to find its graph (146 MB on the perf model) stayed resident
 * beside the weights ORT had copied. Transferring the buffer into a message on a channel that is then closed
 * detaches it here and drops the message, which frees its backing store. Only a buffer that owns its whole
 * ArrayBuffer is released (views into Node's shared pool are left alone); the caller must not touch it again.
 * Returns the bytes released.
 */
export function releaseBytesNow(bytes: Uint8Array): number {
  const buffer = bytes.buffer;
  if (!(buffer instanceof ArrayBuffer) || bytes.byteOffset !== 0 || bytes.byteLength !== buffer.byteLength) return 0;
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
