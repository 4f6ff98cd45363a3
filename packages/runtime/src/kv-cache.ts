import {
  DisposedError,
  InvalidArgumentError,
  type KeptIndices,
  type KvCacheV1,
  UnsupportedCapabilityError,
} from '@draft/core';
import type { WorkerClient } from './worker-client.js';

/** Releases worker-side tensors of caches that were garbage-collected without `dispose()`. */
const finalizer = new FinalizationRegistry<{ client: WorkerClient; handle: number }>(({ client, handle }) => client.send({ type: 'release', cache: handle }));

interface Shape {
  numLayers: number;
  numKvHeads: number;
  headDim: number;
}

/**
 * KV cache of an `OrtCausalLM`. The tensors live in the model's worker thread behind a handle (see the
 * README, "Where the cache lives"); this object holds the shape and the original position of every entry.
 *
 * Keys are post-RoPE; every (layer, KV head) holds the same number of entries (ORT exports take one past
 * length), so `gather` rejects non-uniform counts with `UnsupportedCapabilityError('raggedKvHeads')` (or
 * 'raggedLayers' when layers differ). Caches are immutable: gather/crop/clone and forward return new caches.
 */
export class OrtKvCache implements KvCacheV1 {
  readonly specificationVersion = 'v1' as const;
  readonly numLayers: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly uniform = true;
  /** Entries per (layer, KV head). */
  readonly length: number;
  readonly nextPosition: number;
  private disposed = false;
  private lengthsCache: number[][] | undefined;

  /**
   * @param base per (layer, KV head) positions of the first entries (undefined = none)
   * @param tail positions appended after `base`, shared by every (layer, KV head)
   * @internal
   */
  constructor(
    private readonly client: WorkerClient,
    /** @internal worker-side handle */
    readonly handle: number,
    shape: Shape,
    length: number,
    private readonly base: Int32Array[][] | undefined,
    private readonly tail: Int32Array,
    nextPosition: number,
    /** @internal the model that owns the worker */
    readonly owner: object,
  ) {
    this.numLayers = shape.numLayers;
    this.numKvHeads = shape.numKvHeads;
    this.headDim = shape.headDim;
    this.length = length;
    this.nextPosition = nextPosition;
    finalizer.register(this, { client, handle }, this);
  }

  get lengths(): readonly (readonly number[])[] {
    this.lengthsCache ??= Array.from({ length: this.numLayers }, () => new Array<number>(this.numKvHeads).fill(this.length));
    return this.lengthsCache;
  }

  /** @internal the cache made by a forward call without a past. */
  static fresh(client: WorkerClient, handle: number, shape: Shape, positions: Int32Array, owner: object): OrtKvCache {
    let next = 0;
    for (const p of positions) if (p + 1 > next) next = p + 1;
    return new OrtKvCache(client, handle, shape, positions.length, undefined, Int32Array.from(positions), next, owner);
  }

  /** @internal a cache with `positions` appended (after a forward call). */
  appended(handle: number, positions: Int32Array): OrtKvCache {
    const tail = new Int32Array(this.tail.length + positions.length);
    tail.set(this.tail);
    tail.set(positions, this.tail.length);
    let next = this.nextPosition;
    for (const p of positions) if (p + 1 > next) next = p + 1;
    return new OrtKvCache(this.client, handle, this, this.length + positions.length, this.base, tail, next, this.owner);
  }

  private check(): void {
    if (this.disposed) throw new DisposedError('OrtKvCache');
  }

  positions(layer: number, kvHead: number): Int32Array {
    this.check();
    this.checkIndex('layer', layer, this.numLayers);
    this.checkIndex('kvHead', kvHead, this.numKvHeads);
    const head = this.base?.[layer][kvHead] ?? new Int32Array(0);
    const out = new Int32Array(head.length + this.tail.length);
    out.set(head);
    out.set(this.tail, head.length);
    return out;
  }

  async readKeys(layer: number): Promise<Float32Array> {
    this.check();
    this.checkIndex('layer', layer, this.numLayers);
    return this.client.request<Float32Array>({ type: 'read', cache: this.handle, layer, which: 'key' });
  }

  async readValues(layer: number): Promise<Float32Array> {
    this.check();
    this.checkIndex('layer', layer, this.numLayers);
    return this.client.request<Float32Array>({ type: 'read', cache: this.handle, layer, which: 'value' });
  }

  async gather(kept: KeptIndices): Promise<OrtKvCache> {
    this.check();
    if (kept.length !== this.numLayers) throw new InvalidArgumentError({ argument: 'kept.length', value: kept.length, expected: `${this.numLayers} (numLayers)` });
    const count = kept[0]?.[0]?.length ?? 0;
    const positions: Int32Array[][] = [];
    const copies: Int32Array[][] = [];
    for (let l = 0; l < this.numLayers; l++) {
      const layer = kept[l];
      if (layer.length !== this.numKvHeads) {
        throw new InvalidArgumentError({ argument: `kept[${l}].length`, value: layer.length, expected: `${this.numKvHeads} (numKvHeads)` });
      }
      const layerPositions: Int32Array[] = [];
      const layerCopies: Int32Array[] = [];
      for (let h = 0; h < this.numKvHeads; h++) {
        const idx = layer[h];
        if (idx.length !== layer[0].length) {
          throw new UnsupportedCapabilityError({ capability: 'raggedKvHeads', component: 'OrtKvCache.gather', backend: 'onnxruntime-node' });
        }
        if (idx.length !== count) {
          throw new UnsupportedCapabilityError({ capability: 'raggedLayers', component: 'OrtKvCache.gather', backend: 'onnxruntime-node' });
        }
        const all = this.positions(l, h);
        const pos = new Int32Array(count);
        for (let j = 0; j < count; j++) {
          const i = idx[j];
          if (!Number.isInteger(i) || i < 0 || i >= this.length || (j > 0 && i <= idx[j - 1])) {
            throw new InvalidArgumentError({ argument: `kept[${l}][${h}][${j}]`, value: i, expected: `ascending distinct indices in [0, ${this.length})` });
          }
          pos[j] = all[i];
        }
        layerPositions.push(pos);
        layerCopies.push(Int32Array.from(idx));
      }
      positions.push(layerPositions);
      copies.push(layerCopies);
    }
    const handle = await this.client.request<number>({ type: 'gather', cache: this.handle, kept: copies });
    // The next token still goes at the true next position: positions are never renumbered.
    return new OrtKvCache(this.client, handle, this, count, positions, new Int32Array(0), this.nextPosition, this.owner);
  }

  /** Keeps the first `length` entries; `nextPosition` becomes one past the largest kept position (rollback). */
  async crop(length: number): Promise<OrtKvCache> {
    this.check();
    if (!Number.isInteger(length) || length < 0 || length > this.length) {
      throw new InvalidArgumentError({ argument: 'length', value: length, expected: `an integer in [0, ${this.length}]` });
    }
    const positions: Int32Array[][] = [];
    let next = 0;
    for (let l = 0; l < this.numLayers; l++) {
      const layer: Int32Array[] = [];
      for (let h = 0; h < this.numKvHeads; h++) {
        const p = this.positions(l, h).slice(0, length);
        for (const x of p) if (x + 1 > next) next = x + 1;
        layer.push(p);
      }
      positions.push(layer);
    }
    const handle = await this.client.request<number>({ type: 'crop', cache: this.handle, length });
    return new OrtKvCache(this.client, handle, this, length, positions, new Int32Array(0), next, this.owner);
  }

  async clone(): Promise<OrtKvCache> {
    this.check();
    const handle = await this.client.request<number>({ type: 'clone', cache: this.handle });
    return new OrtKvCache(this.client, handle, this, this.length, this.base, this.tail, this.nextPosition, this.owner);
  }

  /** float32 keys + values: 2 · numLayers · numKvHeads · length · headDim · 4 bytes. */
  byteSize(): number {
    return 2 * this.numLayers * this.numKvHeads * this.length * this.headDim * 4;
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    finalizer.unregister(this);
    this.client.send({ type: 'release', cache: this.handle });
  }

  private checkIndex(argument: string, value: number, size: number): void {
    if (!Number.isInteger(value) || value < 0 || value >= size) {
      throw new InvalidArgumentError({ argument, value, expected: `an integer in [0, ${size})` });
    }
  }
}
