import {
  DisposedError,
  type GatherOptionsV1,
  InvalidArgumentError,
  type KeptIndices,
  type KvCacheV1,
  UnsupportedCapabilityError,
} from '@draft/core';
import type { WorkerClient } from './worker-client.js';

/** Releases worker-side tensors of caches that were garbage-collected without `dispose()`. */
const finalizer = new FinalizationRegistry<{ client: WorkerClient; handle: number }>(({ client, handle }) => client.send({ type: 'release', cache: handle }));

/** @internal what every cache of one model shares. */
export interface CacheContext {
  client: WorkerClient;
  numLayers: number;
  numKvHeads: number;
  headDim: number;
  /** The model that owns the worker. */
  owner: object;
  /** The graph has the per-(layer, head) key bias: counts may differ per layer and KV head. */
  ragged: boolean;
  /** Bytes per stored element: 4 (float32) or 2 (float16 caches, stored as float16 in the worker). */
  bytesPerElement: number;
}

/** @internal layout of a cache's entries. */
interface Layout {
  /** Slots per (layer, KV head), padding included. */
  slots: number;
  /** Per (layer, KV head) original positions of the entries before `tail` (undefined = none). */
  base: Int32Array[][] | undefined;
  /** Padded caches: per (layer, KV head) the slot of each base entry (undefined = slot i holds entry i). */
  baseSlots: Int32Array[][] | undefined;
  /** Slots taken by the base part (the tail follows). */
  baseSlotCount: number;
  /** Positions appended after the base part, shared by every (layer, KV head). */
  tail: Int32Array;
  nextPosition: number;
  /** The worker holds exactly each (layer, KV head)'s entries, no padding (native engine, packed heads). */
  packed?: boolean;
}

/**
 * KV cache of an `OrtCausalLM`. The tensors live in the model's worker thread behind a handle (see the
 * README, "Where the cache lives"); this object holds the layout and the original position of every entry.
 *
 * Keys are post-RoPE. ORT exports take one past length, so every (layer, KV head) has the same number of
 * *slots*. Models loaded with `raggedCache: true` (decomposed attention only) may keep different counts per
 * layer and KV head: shorter heads are padded and the padding is masked by a per-(layer, head) key bias; other
 * models reject non-uniform `gather` with `UnsupportedCapabilityError('raggedKvHeads' | 'raggedLayers')`.
 * Caches are immutable: gather/crop/clone and forward return new caches.
 */
export class OrtKvCache implements KvCacheV1 {
  readonly specificationVersion = 'v1' as const;
  readonly numLayers: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  /** Slots per (layer, KV head) held in the worker (padding included); the entry count when `uniform`. */
  readonly length: number;
  readonly nextPosition: number;
  readonly lengths: readonly (readonly number[])[];
  readonly uniform: boolean;
  private disposed = false;

  /** @internal */
  constructor(
    private readonly context: CacheContext,
    /** @internal worker-side handle */
    readonly handle: number,
    private readonly layout: Layout,
  ) {
    this.numLayers = context.numLayers;
    this.numKvHeads = context.numKvHeads;
    this.headDim = context.headDim;
    this.length = layout.slots;
    this.nextPosition = layout.nextPosition;
    const tail = layout.tail.length;
    this.lengths = Array.from({ length: this.numLayers }, (_, l) =>
      Array.from({ length: this.numKvHeads }, (_, h) => (layout.base ? layout.base[l][h].length : 0) + tail),
    );
    this.uniform = this.lengths.every((layer) => layer.every((n) => n === layout.slots));
    finalizer.register(this, { client: context.client, handle }, this);
  }

  /** @internal the model that owns this cache's worker */
  get owner(): object {
    return this.context.owner;
  }

  /** @internal the cache made by a forward call without a past. */
  static fresh(context: CacheContext, handle: number, positions: Int32Array): OrtKvCache {
    let next = 0;
    for (const p of positions) if (p + 1 > next) next = p + 1;
    return new OrtKvCache(context, handle, { slots: positions.length, base: undefined, baseSlots: undefined, baseSlotCount: 0, tail: Int32Array.from(positions), nextPosition: next });
  }

  /**
   * @internal a cache the worker built from kept entries (gather, layer-wise prefill): per (layer, KV head) the
   * original positions of its entries, kept entries first and padding after.
   */
  static selected(context: CacheContext, handle: number, positions: Int32Array[][], packed = false): OrtKvCache {
    let maxCount = 0;
    for (const layer of positions) for (const p of layer) maxCount = Math.max(maxCount, p.length);
    const padded = positions.some((layer) => layer.some((p) => p.length !== maxCount));
    // Positions are never renumbered. The next token goes right after the largest position kept
    // (KvCacheV1.gather): dropping a lookahead tail rewinds to it.
    let next = 0;
    for (const layer of positions) for (const p of layer) if (p.length > 0) next = Math.max(next, p[p.length - 1] + 1);
    return new OrtKvCache(context, handle, {
      slots: maxCount,
      base: positions,
      baseSlots: padded ? positions.map((layer) => layer.map((p) => Int32Array.from({ length: p.length }, (_, i) => i))) : undefined,
      baseSlotCount: maxCount,
      tail: new Int32Array(0),
      nextPosition: next,
      packed,
    });
  }

  /** @internal a cache with `positions` appended to every (layer, KV head) (after a forward call); `packed`: as the worker stored it. */
  appended(handle: number, positions: Int32Array, packed = false): OrtKvCache {
    const tail = new Int32Array(this.layout.tail.length + positions.length);
    tail.set(this.layout.tail);
    tail.set(positions, this.layout.tail.length);
    let next = this.nextPosition;
    for (const p of positions) if (p + 1 > next) next = p + 1;
    return new OrtKvCache(this.context, handle, { ...this.layout, slots: this.layout.slots + positions.length, tail, nextPosition: next, packed });
  }

  private check(): void {
    if (this.disposed) throw new DisposedError('OrtKvCache');
  }

  positions(layer: number, kvHead: number): Int32Array {
    this.check();
    this.checkIndex('layer', layer, this.numLayers);
    this.checkIndex('kvHead', kvHead, this.numKvHeads);
    const head = this.layout.base?.[layer][kvHead] ?? new Int32Array(0);
    const out = new Int32Array(head.length + this.layout.tail.length);
    out.set(head);
    out.set(this.layout.tail, head.length);
    return out;
  }

  /** Slot of entry `i` of (layer, kvHead). */
  private slotOf(layer: number, kvHead: number, i: number): number {
    const baseCount = this.layout.base?.[layer][kvHead].length ?? 0;
    if (i < baseCount) return this.layout.baseSlots ? this.layout.baseSlots[layer][kvHead][i] : i;
    return this.layout.baseSlotCount + (i - baseCount);
  }

  private async read(layer: number, which: 'key' | 'value'): Promise<Float32Array> {
    this.check();
    this.checkIndex('layer', layer, this.numLayers);
    if (!this.lengths[layer].every((n) => n === this.lengths[layer][0])) {
      throw new UnsupportedCapabilityError({
        capability: 'raggedKvHeads',
        component: 'OrtKvCache.readKeys/readValues',
        message: `Layer ${layer} holds different counts per KV head (${this.lengths[layer].join(', ')}); reads need one count per layer.`,
      });
    }
    return this.context.client.request<Float32Array>({ type: 'read', cache: this.handle, layer, which });
  }

  /** Keys of one layer, (numKvHeads, lengths[layer][0], headDim); every head of the layer must hold the same count. */
  readKeys(layer: number): Promise<Float32Array> {
    return this.read(layer, 'key');
  }

  /** Values of one layer, (numKvHeads, lengths[layer][0], headDim); every head of the layer must hold the same count. */
  readValues(layer: number): Promise<Float32Array> {
    return this.read(layer, 'value');
  }

  /**
   * @internal The worker-side tensor of one layer with its padding: data (numKvHeads, slots, headDim) and
   * valid (numKvHeads, slots), 1 for a real entry. For tests and debugging.
   */
  async readSlots(layer: number, which: 'key' | 'value'): Promise<{ data: Float32Array; valid: Uint8Array; slots: number }> {
    this.check();
    this.checkIndex('layer', layer, this.numLayers);
    return this.context.client.request({ type: 'read', cache: this.handle, layer, which, slots: true });
  }

  async gather(kept: KeptIndices, options: GatherOptionsV1 = {}): Promise<OrtKvCache> {
    this.check();
    if (kept.length !== this.numLayers) throw new InvalidArgumentError({ argument: 'kept.length', value: kept.length, expected: `${this.numLayers} (numLayers)` });
    const first = kept[0]?.[0]?.length ?? 0;
    let maxCount = 0;
    const positions: Int32Array[][] = [];
    const slots: Int32Array[][] = [];
    for (let l = 0; l < this.numLayers; l++) {
      const layer = kept[l];
      if (layer.length !== this.numKvHeads) {
        throw new InvalidArgumentError({ argument: `kept[${l}].length`, value: layer.length, expected: `${this.numKvHeads} (numKvHeads)` });
      }
      const layerPositions: Int32Array[] = [];
      const layerSlots: Int32Array[] = [];
      for (let h = 0; h < this.numKvHeads; h++) {
        const idx = layer[h];
        if (!this.context.ragged && idx.length !== layer[0].length) {
          throw new UnsupportedCapabilityError({ capability: 'raggedKvHeads', component: 'OrtKvCache.gather', backend: 'this model (load it with raggedCache: true; decomposed attention only)' });
        }
        if (!this.context.ragged && idx.length !== first) {
          throw new UnsupportedCapabilityError({ capability: 'raggedLayers', component: 'OrtKvCache.gather', backend: 'this model (load it with raggedCache: true; decomposed attention only)' });
        }
        const n = this.lengths[l][h];
        const all = this.positions(l, h);
        const pos = new Int32Array(idx.length);
        const slot = new Int32Array(idx.length);
        for (let j = 0; j < idx.length; j++) {
          const i = idx[j];
          if (!Number.isInteger(i) || i < 0 || i >= n || (j > 0 && i <= idx[j - 1])) {
            throw new InvalidArgumentError({ argument: `kept[${l}][${h}][${j}]`, value: i, expected: `ascending distinct indices in [0, ${n})` });
          }
          pos[j] = all[i];
          slot[j] = this.slotOf(l, h, i);
        }
        maxCount = Math.max(maxCount, idx.length);
        layerPositions.push(pos);
        layerSlots.push(slot);
      }
      positions.push(layerPositions);
      slots.push(layerSlots);
    }
    const consume = options.consume === true;
    // Consumed: the worker frees this cache's arrays layer by layer and forgets its handle; so does this object.
    if (consume) {
      this.disposed = true;
      finalizer.unregister(this);
    }
    const handle = await this.context.client.request<number>({ type: 'gather', cache: this.handle, kept: slots, ...(consume ? { consume } : {}) });
    return OrtKvCache.selected(this.context, handle, positions);
  }

  /**
   * Keeps the first `length` entries of every (layer, KV head); `nextPosition` becomes one past the largest
   * kept position (rollback).
   */
  async crop(length: number): Promise<OrtKvCache> {
    this.check();
    const shortest = Math.min(...this.lengths.flat());
    if (!Number.isInteger(length) || length < 0 || length > shortest) {
      throw new InvalidArgumentError({ argument: 'length', value: length, expected: `an integer in [0, ${shortest}]` });
    }
    const prefix = Int32Array.from({ length }, (_, i) => i);
    const kept = Array.from({ length: this.numLayers }, () => Array.from({ length: this.numKvHeads }, () => prefix));
    let next = 0;
    for (let l = 0; l < this.numLayers; l++) {
      for (let h = 0; h < this.numKvHeads; h++) for (const p of this.positions(l, h).subarray(0, length)) if (p + 1 > next) next = p + 1;
    }
    let handle: number;
    let layout: Layout;
    if (this.uniform) {
      handle = await this.context.client.request<number>({ type: 'crop', cache: this.handle, length });
      layout = { slots: length, base: undefined, baseSlots: undefined, baseSlotCount: 0, tail: new Int32Array(0), nextPosition: next };
      const base = kept.map((layer, l) => layer.map((_, h) => this.positions(l, h).slice(0, length)));
      layout.base = base;
      layout.baseSlotCount = length;
    } else {
      const gathered = await this.gather(kept);
      return new OrtKvCache(this.context, gathered.transferHandle(), { ...gathered.layout, nextPosition: next });
    }
    return new OrtKvCache(this.context, handle, layout);
  }

  /** Hands this cache's worker handle to a new object (this one becomes disposed without releasing it). */
  private transferHandle(): number {
    this.disposed = true;
    finalizer.unregister(this);
    return this.handle;
  }

  async clone(): Promise<OrtKvCache> {
    this.check();
    const handle = await this.context.client.request<number>({ type: 'clone', cache: this.handle });
    return new OrtKvCache(this.context, handle, this.layout);
  }

  /**
   * Bytes of keys + values held in the worker: 2 · Σ entries · headDim · (4 for float32 graphs, 2 for float16 KV
   * graphs), where Σ entries is Σ lengths[l][h] for packed caches (the native engine keeps each KV head's entries
   * exactly) and numLayers · numKvHeads · slots (padding included) otherwise.
   */
  byteSize(): number {
    const entries = this.layout.packed ? this.lengths.reduce((sum, layer) => sum + layer.reduce((a, n) => a + n, 0), 0) : this.numLayers * this.numKvHeads * this.length;
    return 2 * entries * this.headDim * this.context.bytesPerElement;
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    finalizer.unregister(this);
    this.context.client.send({ type: 'release', cache: this.handle });
  }

  private checkIndex(argument: string, value: number, size: number): void {
    if (!Number.isInteger(value) || value < 0 || value >= size) {
      throw new InvalidArgumentError({ argument, value, expected: `an integer in [0, ${size})` });
    }
  }
}
