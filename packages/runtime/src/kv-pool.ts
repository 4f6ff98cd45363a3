/**
 * Worker-side allocator of KV tensors (one per layer and key/value).
 *
 * Why: ORT writes `present` outputs straight into buffers bound in `session.run(feeds, fetches)`, so a
 * forward step no longer copies every present into a fresh JS array, and a buffer freed by one step (the
 * previous cache, disposed by the decode loop) is reused two steps later instead of waiting for the GC. It
 * also counts: `stats()` gives the KV bytes held by caches and forward steps, and their peak, as the
 * allocator sees them (not RSS), which is what tests use to bound a prefill's KV memory.
 */

import { releaseBufferNow } from './release-bytes.js';

/** KV storage in the graph's element type: float32 values, or float16 bits. */
export type KvArray = Float32Array | Uint16Array;

export interface KvPoolStats {
  /** Bytes of KV arrays in use (held by caches or by a forward step in flight), capacity slack included. */
  liveBytes: number;
  /** Highest `liveBytes` since the last `resetPeak()`. */
  peakLiveBytes: number;
  /** Bytes of freed buffers kept for reuse. */
  pooledBytes: number;
}

interface Block {
  buffer: ArrayBuffer;
  refs: number;
}

export class KvPool {
  private readonly blocks = new WeakMap<ArrayBuffer, Block>();
  /** Free buffers, oldest first. */
  private free: ArrayBuffer[] = [];
  private live = 0;
  private peak = 0;
  private pooled = 0;

  /**
   * Keep as many freed bytes as are live (when above `maxPooledBytes`): a decode step that fetches whole presents
   * frees what the step after next reuses. In-place decode does not ping-pong, so its worker turns this off.
   */
  keepLiveBytes = true;

  /**
   * @param elementBytes 4 (float32) or 2 (float16 bits)
   * @param rowElements elements per token of one array (numKvHeads · headDim): capacity is rounded in tokens
   * @param maxPooledBytes freed bytes kept for reuse at most (the oldest go first)
   */
  constructor(
    private readonly elementBytes: 2 | 4,
    private readonly rowElements: number,
    private readonly maxPooledBytes: number,
  ) {}

  /**
   * An array of exactly `length` elements (a view at the start of a pooled buffer, or of a new one with
   * room for a few more tokens, so a decode step can reuse the buffer of the step before the last). Count 1.
   * `withRoom` false: a new buffer is exactly `length` (the caller already sized the room, as a cache laid out
   * for in-place decode does).
   */
  alloc(length: number, withRoom = true): KvArray {
    const bytes = length * this.elementBytes;
    let best = -1;
    for (let i = 0; i < this.free.length; i++) {
      const size = this.free[i].byteLength;
      // Smallest fit, but not a buffer more than twice the need (it would pin memory a short cache does not use).
      if (size >= bytes && size <= 2 * bytes + 4096 && (best < 0 || size < this.free[best].byteLength)) best = i;
    }
    let buffer: ArrayBuffer;
    if (best >= 0) {
      buffer = this.free[best];
      this.free.splice(best, 1);
      this.pooled -= buffer.byteLength;
    } else if (!withRoom) {
      buffer = new ArrayBuffer(bytes);
    } else {
      const tokens = this.rowElements > 0 ? Math.ceil(length / this.rowElements) : 0;
      // Room for max(32, tokens/16) more tokens, rounded to 32: ping-pong decode reuses a buffer ≥ 32 steps.
      const capacityTokens = Math.ceil((tokens + Math.max(32, tokens >> 4)) / 32) * 32;
      buffer = new ArrayBuffer(Math.max(bytes, capacityTokens * this.rowElements * this.elementBytes));
    }
    this.blocks.set(buffer, { buffer, refs: 1 });
    this.live += buffer.byteLength;
    if (this.live > this.peak) this.peak = this.live;
    return this.elementBytes === 2 ? new Uint16Array(buffer, 0, length) : new Float32Array(buffer, 0, length);
  }

  /** One more holder of `array` (a cache sharing it, e.g. a clone). Arrays not from this pool are ignored. */
  retain(array: KvArray): void {
    const block = this.blocks.get(array.buffer as ArrayBuffer);
    if (block) block.refs++;
  }

  /** Whether `array`'s buffer is this pool's and held once (its holder may reuse it in place). */
  exclusive(array: KvArray): boolean {
    return this.blocks.get(array.buffer as ArrayBuffer)?.refs === 1;
  }

  /** One holder less; at zero the buffer goes back to the pool. Arrays not from this pool are ignored. */
  release(array: KvArray): void {
    const block = this.blocks.get(array.buffer as ArrayBuffer);
    if (!block || block.refs <= 0) return;
    block.refs--;
    if (block.refs > 0) return;
    this.blocks.delete(block.buffer);
    this.live -= block.buffer.byteLength;
    this.free.push(block.buffer);
    this.pooled += block.buffer.byteLength;
    // At least `maxPooledBytes`, else as much as is live: a decode step frees what the step after next reuses.
    while (this.pooled > (this.keepLiveBytes ? Math.max(this.maxPooledBytes, this.live) : this.maxPooledBytes) && this.free.length > 0) {
      const dropped = this.free.shift() as ArrayBuffer;
      this.pooled -= dropped.byteLength;
      releaseBufferNow(dropped);
    }
  }

  stats(): KvPoolStats {
    return { liveBytes: this.live, peakLiveBytes: this.peak, pooledBytes: this.pooled };
  }

  /** Frees every buffer kept for reuse (an idle model gives its memory back). */
  dropFree(): void {
    for (const buffer of this.free.splice(0)) releaseBufferNow(buffer);
    this.pooled = 0;
  }

  /** Starts a new peak measurement at the current live bytes. */
  resetPeak(): void {
    this.peak = this.live;
  }
}
