import { describe, expect, it } from 'vitest';
import { DisposedError, UnsupportedCapabilityError } from '../spec/errors.js';
import { FakeCausalLM } from './fake-causal-lm.js';

describe('FakeKvCache via FakeCausalLM', () => {
  it('keeps original positions through gather, continues after the largest one, and tracks disposal', async () => {
    const model = new FakeCausalLM({ numLayers: 1, numHeads: 2, numKvHeads: 1, headDim: 2 });
    const { cache } = await model.forward({ inputIds: [97, 98, 99, 100, 101] });
    expect(cache.nextPosition).toBe(5);
    const keys = await cache.readKeys(0);
    const kept = await cache.gather([[Int32Array.of(0, 3)]]);
    expect(Array.from(kept.positions(0, 0))).toEqual([0, 3]);
    expect(kept.nextPosition).toBe(4);
    expect(Array.from(await kept.readKeys(0))).toEqual([...keys.subarray(0, 2), ...keys.subarray(6, 8)]);
    expect(kept.byteSize()).toBe(2 * 2 * 2 * 4);
    const next = await model.forward({ inputIds: [102], cache: kept });
    expect(Array.from(next.cache.positions(0, 0))).toEqual([0, 3, 4]);
    expect(model.tracker.live).toBe(3);
    for (const c of [cache, kept, next.cache]) c.dispose();
    expect(model.tracker.live).toBe(0);
    expect(() => kept.lengths).toThrow(DisposedError);
  });

  it('rejects ragged gathers without the capability and allows them with it', async () => {
    const uniform = new FakeCausalLM({ numKvHeads: 2 });
    const a = await uniform.forward({ inputIds: [97, 98, 99] });
    await expect(a.cache.gather([[Int32Array.of(0), Int32Array.of(0, 1)], [Int32Array.of(0), Int32Array.of(1)]])).rejects.toThrow(UnsupportedCapabilityError);
    const ragged = new FakeCausalLM({ numKvHeads: 2, capabilities: { raggedKvHeads: true } });
    const b = await ragged.forward({ inputIds: [97, 98, 99] });
    const g = await b.cache.gather([[Int32Array.of(0), Int32Array.of(0, 1)], [Int32Array.of(0), Int32Array.of(1, 2)]]);
    expect(g.lengths).toEqual([[1, 2], [1, 2]]);
    expect(g.uniform).toBe(false);
  });

  it('captures queries of the last w positions and records calls', async () => {
    const model = new FakeCausalLM({ numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 3 });
    const r = await model.forward({ inputIds: [97, 98, 99, 100], captureQueries: 3, logits: 'all' });
    expect(r.queries?.map((q) => q.length)).toEqual([4 * 3 * 3, 4 * 3 * 3]);
    expect(r.logits.length).toBe(4 * 128);
    expect(model.calls[0]).toMatchObject({ positionIds: [0, 1, 2, 3], captureQueries: 3, logits: 'all' });
    await expect(model.forward({ inputIds: [97], captureQueries: 2 })).rejects.toThrow(/captureQueries/);
  });
});
