import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, type OrtCausalLM } from '../src/index.js';
import { TORCH_LLAMA } from './helpers.js';

describe('worker thread', () => {
  let model: OrtCausalLM;
  beforeAll(async () => {
    model = await loadModel(TORCH_LLAMA, { threads: 1 });
  });
  afterAll(async () => {
    await model?.dispose();
  });

  it('keeps the main thread responsive during a long prefill', async () => {
    const ids = Array.from({ length: 2040 }, (_, i) => 3 + (i % 200));
    await model.forward({ inputIds: ids.slice(0, 8) }).then((r) => r.cache.dispose()); // warm up
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    const started = performance.now();
    // One ORT run (no chunking): were it on this thread, no tick could fire until it returned.
    const r = await model.forward({ inputIds: ids });
    const elapsed = performance.now() - started;
    clearInterval(timer);
    r.cache.dispose();
    expect(elapsed).toBeGreaterThan(40);
    expect(ticks).toBeGreaterThanOrEqual(Math.floor((elapsed / 5) * 0.3));
  });
});
