import { basename, dirname } from 'node:path';
import { AutoModelForCausalLM, env, Tensor } from '@huggingface/transformers';
import { afterAll, describe, expect, it } from 'vitest';
import { loadModel, type OrtCausalLM } from '../src/index.js';
import { TINY_LLAMA, TINY_QWEN2_GQA, TORCH_LLAMA, torchGolden } from './helpers.js';

env.allowRemoteModels = false;

/** Greedy generation by transformers.js on the same folder; returns only the new tokens. */
async function transformersGreedy(dir: string, prompt: number[], maxNewTokens: number): Promise<number[]> {
  env.localModelPath = `${dirname(dir)}/`;
  const model = await AutoModelForCausalLM.from_pretrained(basename(dir), { dtype: 'fp32', local_files_only: true, device: 'cpu' });
  try {
    const ids = new Tensor('int64', BigInt64Array.from(prompt.map(BigInt)), [1, prompt.length]);
    const mask = new Tensor('int64', new BigInt64Array(prompt.length).fill(1n), [1, prompt.length]);
    const out = (await model.generate({ input_ids: ids, attention_mask: mask, max_new_tokens: maxNewTokens, do_sample: false })) as Tensor;
    return Array.from(out.data as BigInt64Array, Number).slice(prompt.length);
  } finally {
    await model.dispose();
  }
}

describe.each([
  ['torch-llama (torch export)', TORCH_LLAMA, torchGolden().cases[1].prompt],
  ['tiny-llama (decomposed)', TINY_LLAMA, Array.from({ length: 24 }, (_, i) => (i * 53 + 7) % 500)],
  ['tiny-qwen2-gqa (GroupQueryAttention)', TINY_QWEN2_GQA, Array.from({ length: 24 }, (_, i) => (i * 29 + 3) % 500)],
])('exact greedy tokens vs @huggingface/transformers generate: %s', (_name, dir, prompt) => {
  let model: OrtCausalLM | undefined;
  afterAll(async () => {
    await model?.dispose();
  });

  it('produces the same tokens', async () => {
    const maxNewTokens = 24;
    const expected = await transformersGreedy(dir, prompt, maxNewTokens);
    model = await loadModel(dir, { threads: 1 });
    const ours = await model.generate({ inputIds: prompt }, { maxNewTokens });
    // transformers.js keeps the EOS it stopped on; ours excludes it.
    const eos = new Set(model.info.eosTokenIds);
    const trimmed = eos.has(expected[expected.length - 1]) ? expected.slice(0, -1) : expected;
    expect(ours.tokens).toEqual(trimmed);
    expect(ours.tokens.length).toBeGreaterThan(0);
    // Same tokens again through chunked prefill.
    const chunked = await model.generate({ inputIds: prompt }, { maxNewTokens, chunkSize: 7 });
    expect(chunked.tokens).toEqual(trimmed);
  });
});
