import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ModelLayoutError } from '@draft/core';
import { afterAll, describe, expect, it } from 'vitest';
import { inspectModel, type RopeParameters, RopeTableCache, ropeInverseFrequencies, ropeTables } from '../src/index.js';
import { TINY_LLAMA } from './helpers.js';

// Config-only matrix: each config keeps the tiny-llama graph's shapes (2 layers, 4 heads / 2 KV heads, head
// dim 16, vocab 512) and adds what its architecture reads. Expected values are derived by hand below.
const work = mkdtempSync(join(tmpdir(), 'draft-arch-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const base = JSON.parse(readFileSync(join(TINY_LLAMA, 'config.json'), 'utf8'));
const shapes = { num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 16, hidden_size: 64, vocab_size: 512, max_position_embeddings: 2048 };
let n = 0;
function folderWith(config: Record<string, unknown>): string {
  const dir = join(work, `m${n++}`);
  cpSync(TINY_LLAMA, dir, { recursive: true });
  const { rope_scaling: _r, rope_theta: _t, model_type: _m, ...rest } = base;
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...rest, ...shapes, ...config }));
  return dir;
}
const inspect = (config: Record<string, unknown>) => inspectModel(folderWith(config));
const longrope16 = (short: number[], long: number[]) => ({ type: 'longrope', short_factor: short, long_factor: long });

describe('architectures (config.json → ModelInfo, RoPE parameters)', () => {
  it('llama with llama3 rope_scaling', () => {
    const x = inspect({ model_type: 'llama', rope_theta: 500000, rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 } });
    expect(x.info.architecture).toBe('llama');
    expect(x.architecture.rope).toEqual({ type: 'llama3', theta: 500000, rotaryDim: 16, maxPositions: 2048, factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 });
    expect(x.warnings).toEqual([]);
    expect(x.info.attentionScale).toBeUndefined(); // 1/√16: the default
  });

  it('SmolLM (model_type llama) and SmolLM3 / Granite read as llama-family', () => {
    expect(inspect({ model_type: 'llama', rope_theta: 100000 }).architecture).toMatchObject({ family: 'llama', known: true, rope: { type: 'default', theta: 100000 } });
    expect(inspect({ model_type: 'smollm3', no_rope_layers: [1, 0] }).architecture).toMatchObject({ family: 'smollm3', known: true });
    // Granite replaces 1/√d by attention_multiplier and scales embeddings.
    const granite = inspect({ model_type: 'granite', attention_multiplier: 0.015625, embedding_multiplier: 12, logits_scaling: 8 });
    expect(granite.info).toMatchObject({ architecture: 'granite', attentionScale: 0.015625 });
    expect(granite.architecture.embeddingMultiplier).toBe(12);
  });

  it('mistral: sliding_window on every layer', () => {
    const x = inspect({ model_type: 'mistral', sliding_window: 4096, rope_theta: 1000000 });
    expect(x.info).toMatchObject({ architecture: 'mistral', slidingWindow: 4096 });
    expect(x.info.slidingWindowLayers).toBeUndefined();
    expect(x.architecture.layerTypes).toEqual(['sliding_attention', 'sliding_attention']);
    expect(x.warnings.join('\n')).toContain('sliding_window 4096');
    // v0.3 has none.
    expect(inspect({ model_type: 'mistral', sliding_window: null }).info.slidingWindow).toBeUndefined();
  });

  it('qwen2 / qwen3: sliding window only with use_sliding_window, from max_window_layers on', () => {
    expect(inspect({ model_type: 'qwen2', sliding_window: 32768, use_sliding_window: false }).info.slidingWindow).toBeUndefined();
    const x = inspect({ model_type: 'qwen2', sliding_window: 1024, use_sliding_window: true, max_window_layers: 1 });
    expect(x.info).toMatchObject({ slidingWindow: 1024, slidingWindowLayers: [1] });
    expect(inspect({ model_type: 'qwen3', rope_theta: 1000000 }).architecture).toMatchObject({ family: 'qwen3', qkNorm: true, rope: { theta: 1000000 } });
  });

  it('phi3: longrope (legacy su) with partial_rotary_factor; factor = max / original, attention factor √(1 + ln f / ln original)', () => {
    // head_dim 16 × 0.5 = 8 rotary dims → 4 factors each. max 2048 / original 256 = 8 → √(1 + ln 8 / ln 256) = √(1 + 3/8).
    const x = inspect({ model_type: 'phi3', partial_rotary_factor: 0.5, original_max_position_embeddings: 256, rope_scaling: { ...longrope16([1, 1, 2, 2], [1, 2, 4, 8]), type: 'su' } });
    expect(x.architecture.rope).toMatchObject({ type: 'longrope', rotaryDim: 8, factor: 8, originalMaxPositions: 256, shortFactor: [1, 1, 2, 2] });
    expect(ropeInverseFrequencies(x.architecture.rope, 100).attentionFactor).toBeCloseTo(Math.sqrt(1.375), 12);
    // Wrong factor count: names the key.
    expect(() => inspect({ model_type: 'phi3', rope_scaling: longrope16([1, 1], [1, 1]) })).toThrow(/rope_scaling\.short_factor must list 8 numbers/);
  });

  it('gemma2: head_dim ≠ hidden / heads, query_pre_attn_scalar, soft-capping, alternate sliding layers, scaled embeddings', () => {
    // hidden 48 / 4 heads = 12, but head_dim 16 (as Gemma's 2304 / 8 ≠ 256).
    const x = inspect({ model_type: 'gemma2', hidden_size: 48, query_pre_attn_scalar: 64, attn_logit_softcapping: 50, final_logit_softcapping: 30, sliding_window: 4096 });
    expect(x.info).toMatchObject({ architecture: 'gemma2', headDim: 16, attentionScale: 0.125, slidingWindow: 4096, slidingWindowLayers: [0] });
    expect(x.architecture).toMatchObject({ attentionLogitSoftcapping: 50, finalLogitSoftcapping: 30, embeddingMultiplier: Math.sqrt(48), layerTypes: ['sliding_attention', 'full_attention'] });
    expect(x.warnings.join('\n')).toContain('attn_logit_softcapping 50');
  });

  it('gemma3: the text_config of a multimodal config, q/k norm, θ default 1e6, explicit layer_types', () => {
    const x = inspect({
      model_type: 'gemma3',
      text_config: { ...shapes, query_pre_attn_scalar: 16, sliding_window: 512, layer_types: ['full_attention', 'sliding_attention'], rope_scaling: { rope_type: 'linear', factor: 8 } },
    });
    expect(x.info).toMatchObject({ architecture: 'gemma3', slidingWindow: 512, slidingWindowLayers: [1] });
    expect(x.info.attentionScale).toBeUndefined(); // 16^−½ = 1/√head_dim
    expect(x.architecture).toMatchObject({ modelType: 'gemma3_text', qkNorm: true, rope: { type: 'linear', factor: 8, theta: 1000000 } });
  });

  it('an unknown model_type loads as Llama-compatible with a warning', () => {
    const x = inspect({ model_type: 'olmo2' });
    expect(x.info.architecture).toBe('olmo2');
    expect(x.architecture.known).toBe(false);
    expect(x.loadable).toBe(true);
    expect(x.warnings[0]).toMatch(/model_type "olmo2" is not one the runtime knows/);
  });

  it('bad rope fields → ModelLayoutError naming config.json and the key', () => {
    const e = (() => {
      try {
        inspect({ model_type: 'llama', rope_scaling: { rope_type: 'llama3', factor: 8, high_freq_factor: 4, original_max_position_embeddings: 8192 } });
      } catch (error) {
        return error as ModelLayoutError;
      }
    })();
    expect(e).toBeInstanceOf(ModelLayoutError);
    expect(e?.path).toMatch(/config\.json$/);
    expect(e?.message).toContain("needs 'low_freq_factor'");
  });
});

describe('RoPE tables with HF scaling (hand-computed values)', () => {
  // θ = 10000, rotary dim 6: f = [1, 10000^(−1/3) = 0.0464158883, 10000^(−2/3) = 0.0021544347].
  const rope = (extra: Partial<RopeParameters>): RopeParameters => ({ type: 'default', theta: 10000, rotaryDim: 6, maxPositions: 256, ...extra });
  const freqs = (r: RopeParameters, seqLen?: number) => Array.from(ropeInverseFrequencies(r, seqLen).invFreq);

  it('default and linear', () => {
    expectClose(freqs(rope({})), [1, 0.046415888336127795, 0.0021544346900318843]);
    expectClose(freqs(rope({ type: 'linear', factor: 4 })), [0.25, 0.011603972084031949, 0.0005386086725079711]);
  });

  it('llama3: high frequencies kept, low divided by factor, the band between smoothed', () => {
    // original 200, low 1, high 4: wavelengths 2π/f = 6.28 (< 50: kept), 135.37 (between 50 and 200), 2916 (> 200: f/8).
    // smooth = (200 / 135.367 − 1) / 3 = 0.1591545; f1' = (1 − s)·f1/8 + s·f1 = 0.0122658729.
    const r = rope({ type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 200 });
    expectClose(freqs(r), [1, 0.012265872889067098, 0.00026930433625398553]);
    const { cos } = ropeTables(256, 6, r);
    expect(cos[100 * 3 + 1]).toBeCloseTo(0.33745221650655943, 5); // cos(100 · 0.0122658729)
    expect(cos[100 * 3 + 2]).toBeCloseTo(0.9996373977878872, 6); // cos(100 · 0.00026930434)
  });

  it('dynamic NTK: default up to max positions; beyond, θ' + "' = θ·(factor·L/max − (factor − 1))^(d/(d−2))", () => {
    const r = rope({ type: 'dynamic', factor: 2 });
    expectClose(freqs(r, 256), freqs(rope({})));
    // L = 512 = 2·max: θ' = 10000 · 3^(6/4) = 51961.524; f1 = θ'^(−1/3) = 0.0267982256.
    expectClose(freqs(r, 512).slice(0, 2), [1, 0.026798225625538994]);
  });

  it('longrope: short factors up to the original context, long beyond; cos/sin scaled by the attention factor', () => {
    // rotary dim 4: base f = [1, 0.01]; short [1, 2] → [1, 0.005]; long [4, 8] → [0.25, 0.00125].
    // factor 4 over original 256 → attention factor √(1 + ln 4 / ln 256) = √1.25 = 1.1180340.
    const r: RopeParameters = { type: 'longrope', theta: 10000, rotaryDim: 4, maxPositions: 1024, factor: 4, originalMaxPositions: 256, shortFactor: [1, 2], longFactor: [4, 8] };
    const short = ropeTables(1024, 4, r, 200);
    expect(short.cos[10 * 2]).toBeCloseTo(-0.9381104884998195, 5); // 1.118 · cos(10)
    expect(short.sin[10 * 2 + 1]).toBeCloseTo(0.05587840997410267, 6); // 1.118 · sin(10 · 0.005)
    const long = ropeTables(1024, 4, r, 300);
    expect(long.cos[10 * 2]).toBeCloseTo(-0.8957057920514506, 5); // 1.118 · cos(10 · 0.25)
    expect(long.sin[10 * 2 + 1]).toBeCloseTo(0.013975060918861271, 6); // 1.118 · sin(10 · 0.00125)
  });

  it('the worker\'s table cache switches longrope tables on the call\'s largest position and reuses them', () => {
    const r: RopeParameters = { type: 'longrope', theta: 10000, rotaryDim: 4, maxPositions: 1024, factor: 4, originalMaxPositions: 256, shortFactor: [1, 2], longFactor: [4, 8] };
    const cache = new RopeTableCache(1024, 4, r);
    const short = cache.at(256); // largest position 255: still the original context
    expect(short.cos[10 * 2]).toBeCloseTo(-0.9381104884998195, 5);
    expect(cache.at(257).cos[10 * 2]).toBeCloseTo(-0.8957057920514506, 5);
    expect(cache.at(100)).toBe(short);
    expect(() => new RopeTableCache(8, 6, rope({ type: 'yarn', factor: 4 }))).toThrow(/rope type 'yarn' is not supported/);
  });

  it('θ as a number is plain Llama RoPE (unchanged signature)', () => {
    expect(ropeTables(8, 6, 10000)).toEqual(ropeTables(8, 6, rope({ maxPositions: 8 })));
  });

  it('unsupported types fail when tables are needed', () => {
    expect(() => ropeTables(8, 6, rope({ type: 'yarn', factor: 4 }))).toThrow(ModelLayoutError);
  });
});

function expectClose(actual: number[], expected: number[]): void {
  expect(actual).toHaveLength(expected.length);
  for (let i = 0; i < expected.length; i++) expect(actual[i] / expected[i]).toBeCloseTo(1, 12);
}
