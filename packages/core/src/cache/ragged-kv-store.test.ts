import { describe, expect, it } from 'vitest';
import { float16ToFloat32, float32ToFloat16 } from '../primitives/float16.js';
import { raggedAttention } from '../primitives/ragged-attention.js';
import { DisposedError, InvalidArgumentError } from '../spec/errors.js';
import { RaggedKvStore } from './ragged-kv-store.js';

/** Keys/values whose element (h, j, x) is h·1000 + j·10 + x: every row says where it came from. */
function tagged(hkv: number, n: number, d: number, sign = 1): Float32Array {
  return Float32Array.from({ length: hkv * n * d }, (_, i) => sign * (Math.floor(i / (n * d)) * 1000 + (Math.floor(i / d) % n) * 10 + (i % d)));
}

describe('RaggedKvStore', () => {
  it('holds exactly the kept entries per (layer, KV head) and reports their true bytes', () => {
    const d = 4;
    const n = 9;
    const store = RaggedKvStore.fromSelection({
      numKvHeads: 3,
      headDim: d,
      layers: [
        { keys: tagged(3, n, d), values: tagged(3, n, d, -1), length: n, kept: [Int32Array.of(0, 4, 8), Int32Array.of(), Int32Array.of(7)] },
        { keys: tagged(3, n, d), values: tagged(3, n, d, -1), length: n, kept: [Int32Array.of(1), Int32Array.of(2, 3), Int32Array.of(0, 1, 2, 3, 4)] },
      ],
    });
    expect(Array.from(store.lengths(0))).toEqual([3, 0, 1]);
    expect(Array.from(store.lengths(1))).toEqual([1, 2, 5]);
    // (3 + 0 + 1 + 1 + 2 + 5) = 12 entries × d 4 × (K + V) 2 × 4 bytes = 384
    expect(store.byteSize()).toBe(384);
    expect(store.capacityBytes()).toBe(384);
    const head = store.readHead(0, 0);
    expect(Array.from(head.keys)).toEqual([0, 1, 2, 3, 40, 41, 42, 43, 80, 81, 82, 83]);
    expect(Array.from(head.values)).toEqual([-0, -1, -2, -3, -40, -41, -42, -43, -80, -81, -82, -83]);
    expect(Array.from(store.readHead(0, 2).keys)).toEqual([2070, 2071, 2072, 2073]);
    expect(Array.from(store.positions(1, 1))).toEqual([2, 3]);
  });

  it('keeps original positions and appends decode tokens at each head end, with geometric spare room', () => {
    const d = 2;
    const store = RaggedKvStore.fromSelection({
      numKvHeads: 2,
      headDim: d,
      layers: [{ keys: tagged(2, 5, d), values: tagged(2, 5, d), length: 5, kept: [Int32Array.of(1, 3), Int32Array.of(4)], positions: Int32Array.of(10, 11, 12, 13, 14) }],
    });
    expect(Array.from(store.positions(0, 0))).toEqual([11, 13]);
    let reallocations = 0;
    let lastCapacity = store.capacityBytes();
    for (let t = 0; t < 200; t++) {
      // token t: K = V = [t, −t] on head 0 and [t + 0.5, 0] on head 1
      const kv = Float32Array.of(t, -t, t + 0.5, 0);
      store.append(0, kv, kv, Int32Array.of(15 + t));
      if (store.capacityBytes() !== lastCapacity) reallocations++;
      lastCapacity = store.capacityBytes();
    }
    expect(Array.from(store.lengths(0))).toEqual([202, 201]);
    expect(store.byteSize()).toBe((202 + 201) * d * 2 * 4);
    // Spare room per head on overflow = max(16, ⌈0.5 × mean length after the append⌉). Before step s the heads
    // hold [2 + s, 1 + s]; overflows at s = 0 (spare 16 → caps 19, 18), 17 (16 → 36, 35), 34 (⌈18.25⌉ = 19 →
    // 56, 55), 54 (29 → 86, 85), 84 (44 → 131, 130), 129 (66 → 198, 197), 196 (100 → 299, 298): 7, not 200.
    expect(reallocations).toBe(7);
    expect(store.capacityBytes()).toBe((299 + 298) * d * 2 * 4);
    const h0 = store.readHead(0, 0);
    expect(Array.from(h0.keys.subarray(0, 6))).toEqual([10, 11, 30, 31, 0, -0]);
    expect(Array.from(h0.keys.subarray(2 * 201, 2 * 202))).toEqual([199, -199]);
    expect(Array.from(store.positions(0, 1).subarray(0, 3))).toEqual([14, 15, 16]);
  });

  it('reserve() makes the next appends allocation-free', () => {
    const store = new RaggedKvStore({ numLayers: 2, numKvHeads: 1, headDim: 1 });
    store.reserve(32);
    expect(store.capacityBytes()).toBe(2 * 32 * 2 * 4);
    const view = store.layer(1).keys;
    for (let t = 0; t < 32; t++) store.append(1, Float32Array.of(t), Float32Array.of(-t), Int32Array.of(t));
    expect(store.layer(1).keys).toBe(view);
    expect(store.byteSize()).toBe(32 * 2 * 4);
  });

  it('stores float16 at half the bytes, rounded like float32ToFloat16', () => {
    const keys = Float32Array.of(0.1, 0.2, 0.3, 0.4);
    const store = RaggedKvStore.fromSelection({ numKvHeads: 1, headDim: 2, dtype: 'float16', layers: [{ keys, values: keys, length: 2, kept: [Int32Array.of(0, 1)] }] });
    expect(store.byteSize()).toBe(2 * 2 * 2 * 2);
    expect(store.layer(0).keys).toBeInstanceOf(Uint16Array);
    expect(Array.from(store.readHead(0, 0).keys)).toEqual(Array.from(float16ToFloat32(float32ToFloat16(keys))));
  });

  it('its layer view is what raggedAttention reads: equals attention over the kept rows of the full cache', () => {
    const d = 3;
    const n = 6;
    const keys = Float32Array.from({ length: 2 * n * d }, (_, i) => Math.sin(i * 0.7));
    const values = Float32Array.from({ length: 2 * n * d }, (_, i) => Math.cos(i * 1.3));
    const kept = [Int32Array.of(0, 2, 5), Int32Array.of(4)];
    const store = RaggedKvStore.fromSelection({ numKvHeads: 2, headDim: d, layers: [{ keys, values, length: n, kept }] });
    store.append(0, new Float32Array(2 * d).fill(0.25), new Float32Array(2 * d).fill(1), Int32Array.of(n));
    const q = Float32Array.from({ length: 4 * d }, (_, i) => Math.cos(i));
    const view = store.layer(0);
    const got = raggedAttention(q, view.keys, view.values, { numHeads: 4, numKvHeads: 2, headDim: d, offsets: view.offsets, lengths: view.lengths });
    // The same attention with the kept rows copied out by hand (plus the appended token), one KV head at a time.
    for (let h = 0; h < 2; h++) {
      const rows = [...kept[h]].map((j) => h * n + j);
      const k = new Float32Array((rows.length + 1) * d);
      const v = new Float32Array((rows.length + 1) * d);
      rows.forEach((r, i) => {
        k.set(keys.subarray(r * d, r * d + d), i * d);
        v.set(values.subarray(r * d, r * d + d), i * d);
      });
      k.fill(0.25, rows.length * d);
      v.fill(1, rows.length * d);
      const want = raggedAttention(q.subarray(h * 2 * d, (h + 1) * 2 * d), k, v, { numHeads: 2, numKvHeads: 1, headDim: d, offsets: [0], lengths: [rows.length + 1] });
      expect(Array.from(got.subarray(h * 2 * d, (h + 1) * 2 * d))).toEqual(Array.from(want));
    }
  });

  it('rejects bad input with typed errors and throws DisposedError after dispose', () => {
    const store = new RaggedKvStore({ numLayers: 1, numKvHeads: 2, headDim: 2 });
    const attempt = (fn: () => void) => {
      try {
        fn();
      } catch (error) {
        return error as InvalidArgumentError;
      }
      throw new Error('did not throw');
    };
    const a = attempt(() => store.append(0, new Float32Array(3), new Float32Array(4), Int32Array.of(0)));
    expect(a).toBeInstanceOf(InvalidArgumentError);
    expect(a.argument).toBe('keys.length');
    expect(a.value).toBe(3);
    const b = attempt(() => store.setLayer(0, { keys: new Float32Array(8), values: new Float32Array(8), length: 2, kept: [Int32Array.of(1, 1), Int32Array.of()] }));
    expect(b.argument).toBe('kept[0][1]');
    const c = attempt(() => store.setLayer(0, { keys: new Float32Array(8), values: new Float32Array(8), length: 2, kept: [Int32Array.of(2), Int32Array.of()] }));
    expect(c.argument).toBe('kept[0][0]');
    expect(c.value).toBe(2);
    expect(attempt(() => store.lengths(1)).argument).toBe('layer');
    expect(attempt(() => new RaggedKvStore({ numLayers: 1, numKvHeads: 1, headDim: 1, dtype: 'int8' as never })).argument).toBe('dtype');
    // the store is still usable after the errors
    store.append(0, new Float32Array(4), new Float32Array(4), Int32Array.of(0));
    expect(Array.from(store.lengths(0))).toEqual([1, 1]);
    store.dispose();
    expect(() => store.byteSize()).toThrow(DisposedError);
  });
});
