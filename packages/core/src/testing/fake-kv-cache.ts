import type { KeptIndices } from '../spec/common.js';
import { DisposedError, InvalidArgumentError, UnsupportedCapabilityError } from '../spec/errors.js';
import type { KvCacheV1 } from '../spec/kv-cache.js';

/** One (layer, KV head) of a FakeKvCache. */
export interface FakeKvSlot {
  positions: Int32Array;
  /** (length, headDim) */
  keys: Float32Array;
  /** (length, headDim) */
  values: Float32Array;
}

/** Counts live caches so tests can assert that a pipeline disposed every intermediate cache. */
export class CacheTracker {
  created = 0;
  disposed = 0;
  get live(): number {
    return this.created - this.disposed;
  }
}

export interface FakeKvCacheOptions {
  numLayers: number;
  numKvHeads: number;
  headDim: number;
  /** Allow per-head counts (gather with non-uniform counts). Default false. */
  raggedKvHeads?: boolean;
  /** Allow per-layer counts. Default false. */
  raggedLayers?: boolean;
  tracker?: CacheTracker;
}

/**
 * A real in-memory KvCacheV1: per (layer, KV head) positions, keys and values, gather / crop / clone, byte
 * counts, dispose (use after dispose throws DisposedError). `nextPosition` is one past the largest position
 * held, or the value carried from the cache it was derived from by `append`.
 */
export class FakeKvCache implements KvCacheV1 {
  readonly specificationVersion = 'v1' as const;
  readonly numLayers: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly nextPosition: number;
  private readonly slots: FakeKvSlot[][];
  private disposedFlag = false;

  constructor(
    private readonly options: FakeKvCacheOptions,
    slots?: FakeKvSlot[][],
    nextPosition?: number,
  ) {
    this.numLayers = options.numLayers;
    this.numKvHeads = options.numKvHeads;
    this.headDim = options.headDim;
    this.slots =
      slots ??
      Array.from({ length: options.numLayers }, () =>
        Array.from({ length: options.numKvHeads }, () => ({ positions: new Int32Array(0), keys: new Float32Array(0), values: new Float32Array(0) })),
      );
    let maxPosition = -1;
    for (const layer of this.slots) for (const slot of layer) for (const p of slot.positions) if (p > maxPosition) maxPosition = p;
    this.nextPosition = nextPosition ?? maxPosition + 1;
    if (options.tracker) options.tracker.created++;
  }

  get disposed(): boolean {
    return this.disposedFlag;
  }

  get lengths(): number[][] {
    this.check();
    return this.slots.map((layer) => layer.map((s) => s.positions.length));
  }

  get uniform(): boolean {
    const lengths = this.lengths;
    const first = lengths[0]?.[0] ?? 0;
    return lengths.every((l) => l.every((v) => v === first));
  }

  /** Direct access for tests: (layer, KV head) slot. */
  slot(layer: number, kvHead: number): FakeKvSlot {
    this.check();
    return this.slots[layer][kvHead];
  }

  positions(layer: number, kvHead: number): Int32Array {
    return this.slot(layer, kvHead).positions.slice();
  }

  async readKeys(layer: number): Promise<Float32Array> {
    return this.readLayer(layer, 'keys');
  }

  async readValues(layer: number): Promise<Float32Array> {
    return this.readLayer(layer, 'values');
  }

  /** New cache with `count` entries per (layer, head) appended: keys/values (numKvHeads, count, headDim) per layer. */
  append(positions: Int32Array, keys: Float32Array[], values: Float32Array[]): FakeKvCache {
    this.check();
    const d = this.headDim;
    const count = positions.length;
    const slots = this.slots.map((layer, l) =>
      layer.map((s, h) => {
        const p = new Int32Array(s.positions.length + count);
        p.set(s.positions);
        p.set(positions, s.positions.length);
        const k = new Float32Array(p.length * d);
        k.set(s.keys);
        k.set(keys[l].subarray(h * count * d, (h + 1) * count * d), s.keys.length);
        const v = new Float32Array(p.length * d);
        v.set(s.values);
        v.set(values[l].subarray(h * count * d, (h + 1) * count * d), s.values.length);
        return { positions: p, keys: k, values: v };
      }),
    );
    let next = this.nextPosition;
    for (const p of positions) if (p + 1 > next) next = p + 1;
    return new FakeKvCache(this.options, slots, next);
  }

  async gather(kept: KeptIndices): Promise<FakeKvCache> {
    this.check();
    if (kept.length !== this.numLayers) throw new InvalidArgumentError({ argument: 'kept.length', value: kept.length, expected: `${this.numLayers}` });
    const counts = kept.map((heads) => heads.map((h) => h.length));
    const headRagged = counts.some((layer) => layer.some((c) => c !== layer[0]));
    const layerRagged = counts.some((layer) => layer[0] !== counts[0][0]);
    if (headRagged && !this.options.raggedKvHeads) throw new UnsupportedCapabilityError({ capability: 'raggedKvHeads', component: 'KV gather', backend: 'FakeKvCache' });
    if (layerRagged && !this.options.raggedLayers) throw new UnsupportedCapabilityError({ capability: 'raggedLayers', component: 'KV gather', backend: 'FakeKvCache' });
    const d = this.headDim;
    const slots = this.slots.map((layer, l) =>
      layer.map((s, h) => {
        const idx = kept[l][h];
        const n = s.positions.length;
        const p = new Int32Array(idx.length);
        const k = new Float32Array(idx.length * d);
        const v = new Float32Array(idx.length * d);
        for (let i = 0; i < idx.length; i++) {
          const j = idx[i];
          if (!(j >= 0 && j < n)) throw new InvalidArgumentError({ argument: 'kept index', value: j, expected: `0..${n - 1}` });
          p[i] = s.positions[j];
          k.set(s.keys.subarray(j * d, (j + 1) * d), i * d);
          v.set(s.values.subarray(j * d, (j + 1) * d), i * d);
        }
        return { positions: p, keys: k, values: v };
      }),
    );
    // The compacted cache continues after the largest position it holds (lookahead entries dropped).
    return new FakeKvCache(this.options, slots);
  }

  async crop(length: number): Promise<FakeKvCache> {
    this.check();
    const kept = this.slots.map((layer) => layer.map((s) => Int32Array.from({ length: Math.min(length, s.positions.length) }, (_, i) => i)));
    return this.gather(kept);
  }

  async clone(): Promise<FakeKvCache> {
    this.check();
    return new FakeKvCache(
      this.options,
      this.slots.map((layer) => layer.map((s) => ({ positions: s.positions.slice(), keys: s.keys.slice(), values: s.values.slice() }))),
      this.nextPosition,
    );
  }

  byteSize(): number {
    if (this.disposedFlag) return 0;
    let bytes = 0;
    for (const layer of this.slots) for (const s of layer) bytes += s.keys.byteLength + s.values.byteLength;
    return bytes;
  }

  dispose(): void {
    if (this.disposedFlag) return;
    this.disposedFlag = true;
    if (this.options.tracker) this.options.tracker.disposed++;
  }

  private readLayer(layer: number, which: 'keys' | 'values'): Float32Array {
    this.check();
    const heads = this.slots[layer];
    if (!heads) throw new InvalidArgumentError({ argument: 'layer', value: layer, expected: `0..${this.numLayers - 1}` });
    const n = heads[0].positions.length;
    if (heads.some((s) => s.positions.length !== n)) {
      throw new UnsupportedCapabilityError({ capability: 'raggedKvHeads', component: `read${which === 'keys' ? 'Keys' : 'Values'}`, backend: 'FakeKvCache' });
    }
    const out = new Float32Array(heads.length * n * this.headDim);
    for (let h = 0; h < heads.length; h++) out.set(heads[h][which], h * n * this.headDim);
    return out;
  }

  private check(): void {
    if (this.disposedFlag) throw new DisposedError('FakeKvCache');
  }
}
