import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FIXTURES, fixturePath, TINY_SIZES } from '../src/fixtures.js';
import { gatherCache, type KvEntry, loadReferenceModel, referenceForward } from '../src/reference-forward.js';
import type { Architecture, AttentionVariant, ModelSpec } from '../src/spec.js';
import { CHAT_TEMPLATE } from '../src/tokenizer.js';
import { writeDecoderModel } from '../src/writer.js';
import { argmaxRows, createSession, maxAbsDiff, ortStep } from './ort-helpers.js';

const TOL = 1e-4;
const tmp = mkdtempSync(join(tmpdir(), 'draft-models-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const prompt = Array.from({ length: 20 }, (_, i) => (i * 37 + 11) % 500);

const cases: [Architecture, AttentionVariant][] = [
  ['llama', 'decomposed'],
  ['llama', 'gqa'],
  ['qwen2', 'decomposed'],
  ['qwen2', 'gqa'],
  ['llama', 'gqa-packed'],
  ['llama', 'gqa-rotary-node'],
  ['llama', 'mha'],
  ['qwen2', 'attention23'],
  ['qwen3', 'decomposed'],
  ['qwen3', 'gqa'],
];

describe.each(cases)('%s / %s: ONNX Runtime vs reference forward', (architecture, attention) => {
  const spec: ModelSpec = {
    architecture,
    attention,
    ...TINY_SIZES,
    // MultiHeadAttention has no grouped KV heads.
    ...(attention === 'mha' ? { numKvHeads: TINY_SIZES.numHeads } : {}),
    maxPositions: 256,
    tieWordEmbeddings: architecture === 'qwen2',
    seed: 100 + cases.findIndex((c) => c[0] === architecture && c[1] === attention),
    weightScale: 0.2,
  };
  const dir = join(tmp, `${architecture}-${attention}`);
  const written = writeDecoderModel({ dir, spec });
  const ref = loadReferenceModel(dir);

  it('loads the same spec and weights back from the folder', () => {
    expect(ref.spec.attention).toBe(attention);
    expect(ref.spec.architecture).toBe(architecture);
    expect(ref.spec.qkvBias).toBe(architecture === 'qwen2');
    for (const [name, t] of written.weights) expect(ref.weights.get(name)).toEqual(t.data);
  });

  it('prefill, 3 cached decode steps, compacted past and a multi-token chunk match within 1e-4', async () => {
    const session = await createSession(written.modelPath);
    const pos = prompt.map((_, i) => i);
    const o = await ortStep(session, spec, prompt, pos, null);
    const r = referenceForward(ref, { inputIds: prompt, positionIds: pos });
    expect(maxAbsDiff(o.logits, r.logits)).toBeLessThan(TOL);
    for (let l = 0; l < spec.numLayers; l++) {
      expect(maxAbsDiff(o.present[l].key, r.present[l].key)).toBeLessThan(TOL);
      expect(maxAbsDiff(o.present[l].value, r.present[l].value)).toBeLessThan(TOL);
    }
    // cached decode: ORT's present fed back as its past, reference likewise
    let opast: KvEntry[] = o.present;
    let rpast: KvEntry[] = r.present;
    let next = argmaxRows(o.logits, spec.vocabSize).at(-1)!;
    let n = prompt.length;
    for (let step = 0; step < 3; step++) {
      const o2 = await ortStep(session, spec, [next], [n], opast);
      const r2 = referenceForward(ref, { inputIds: [next], positionIds: [n], past: rpast });
      expect(maxAbsDiff(o2.logits, r2.logits)).toBeLessThan(TOL);
      opast = o2.present;
      rpast = r2.present;
      next = argmaxRows(o2.logits, spec.vocabSize)[0];
      n++;
    }
    // compacted past: keep a subset (with their original positions baked into the post-RoPE keys), continue at n
    const keep = [0, 1, 2, 3, 7, 12, 15, 18, 19, 20, 22];
    const oc = gatherCache(opast, keep, spec.numKvHeads, spec.headDim);
    const rc = gatherCache(rpast, keep, spec.numKvHeads, spec.headDim);
    const chunk = [next, 42, 7];
    const cpos = [n, n + 1, n + 2];
    const o3 = await ortStep(session, spec, chunk, cpos, oc);
    const r3 = referenceForward(ref, { inputIds: chunk, positionIds: cpos, past: rc });
    expect(maxAbsDiff(o3.logits, r3.logits)).toBeLessThan(TOL);
    for (let l = 0; l < spec.numLayers; l++) expect(maxAbsDiff(o3.present[l].key, r3.present[l].key)).toBeLessThan(TOL);
    // the compacted run really differs from the uncompacted one (positions / cache matter)
    const full = referenceForward(ref, { inputIds: chunk, positionIds: cpos, past: rpast });
    expect(maxAbsDiff(full.logits, r3.logits)).toBeGreaterThan(1e-3);
    // and one more decode step on the compacted cache
    const o4 = await ortStep(session, spec, [5], [n + 3], o3.present);
    const r4 = referenceForward(ref, { inputIds: [5], positionIds: [n + 3], past: r3.present });
    expect(maxAbsDiff(o4.logits, r4.logits)).toBeLessThan(TOL);
  });

  it.runIf(attention === 'decomposed')('attention_mask zeros anywhere in the past are masked (decomposed only)', async () => {
    const session = await createSession(written.modelPath);
    const pre = await ortStep(session, spec, [1, 2, 3, 4], [0, 1, 2, 3], null);
    const rpre = referenceForward(ref, { inputIds: [1, 2, 3, 4], positionIds: [0, 1, 2, 3] });
    for (const mask of [[1, 0, 1, 1, 1, 1], [0, 1, 1, 0, 1, 1]]) {
      const o = await ortStep(session, spec, [7, 8], [4, 5], pre.present, mask);
      const r = referenceForward(ref, { inputIds: [7, 8], positionIds: [4, 5], past: rpre.present, attentionMask: mask });
      expect(maxAbsDiff(o.logits, r.logits)).toBeLessThan(TOL);
    }
  });

  it('present keys are stored post-RoPE (equal to the reference keys at their positions)', async () => {
    const session = await createSession(written.modelPath);
    // same token at two different positions gives different cached keys (a prefill starting at position 10)
    const o = await ortStep(session, spec, [9, 9], [10, 11], null);
    const { numKvHeads: Hkv, headDim: d } = spec;
    const k = o.present[0].key;
    expect(maxAbsDiff(k.subarray(0, d), k.subarray(d, 2 * d))).toBeGreaterThan(1e-3);
    const r = referenceForward(ref, { inputIds: [9, 9], positionIds: [10, 11] });
    expect(maxAbsDiff(k, r.present[0].key)).toBeLessThan(TOL);
    expect(k.length).toBe(Hkv * 2 * d);
  });
});

describe('GroupQueryAttention quirks in ORT 1.30 CPU (documented in README)', () => {
  const spec: ModelSpec = {
    architecture: 'llama',
    attention: 'gqa',
    ...TINY_SIZES,
    maxPositions: 64,
    tieWordEmbeddings: false,
    seed: 7,
    weightScale: 0.2,
  };
  const dir = join(tmp, 'gqa-quirks');
  const written = writeDecoderModel({ dir, spec });
  const ref = loadReferenceModel(dir);
  const d = spec.headDim;
  const keyRow = (k: Float32Array, row: number) => k.subarray(row * d, (row + 1) * d); // head 0

  it('with a past, position_ids are honoured per token (any order / gaps)', async () => {
    const session = await createSession(written.modelPath);
    const pre = await ortStep(session, spec, [1, 2, 3], [0, 1, 2], null);
    const o = await ortStep(session, spec, [9, 9], [20, 5], pre.present);
    const at = (p: number) => referenceForward(ref, { inputIds: [9], positionIds: [p] }).present[0].key;
    expect(maxAbsDiff(keyRow(o.present[0].key, 3), keyRow(at(20), 0))).toBeLessThan(TOL);
    expect(maxAbsDiff(keyRow(o.present[0].key, 4), keyRow(at(5), 0))).toBeLessThan(TOL);
  });

  it('without a past (first prompt), rotary uses position_ids[0] + j: only contiguous prefill positions are exact', async () => {
    const session = await createSession(written.modelPath);
    const o = await ortStep(session, spec, [9, 9], [3, 10], null);
    const at = (p: number) => referenceForward(ref, { inputIds: [9], positionIds: [p] }).present[0].key;
    expect(maxAbsDiff(keyRow(o.present[0].key, 0), keyRow(at(3), 0))).toBeLessThan(TOL);
    expect(maxAbsDiff(keyRow(o.present[0].key, 1), keyRow(at(4), 0))).toBeLessThan(TOL); // not position 10
  });

  it('attention_mask is only reduced to a length (seqlens_k): a zero inside the past is NOT masked', async () => {
    const session = await createSession(written.modelPath);
    const pre = await ortStep(session, spec, [1, 2, 3, 4], [0, 1, 2, 3], null);
    const rpre = referenceForward(ref, { inputIds: [1, 2, 3, 4], positionIds: [0, 1, 2, 3] });
    const o = await ortStep(session, spec, [7], [4], pre.present, [1, 0, 1, 1, 1]);
    const masked = referenceForward(ref, { inputIds: [7], positionIds: [4], past: rpre.present, attentionMask: [1, 0, 1, 1, 1] });
    expect(maxAbsDiff(o.logits, masked.logits)).toBeGreaterThan(1e-2);
  });
});

describe('committed fixtures', () => {
  it.each(FIXTURES.map((f) => [f.name, f] as const))('%s is up to date with its spec and runs in ORT', async (_name, f) => {
    const dir = fixturePath(f.name);
    const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    expect(cfg.model_type).toBe(f.spec.architecture);
    expect(cfg.num_hidden_layers).toBe(f.spec.numLayers);
    expect(cfg.hidden_size).toBe(f.spec.hiddenSize);
    expect(cfg.num_key_value_heads).toBe(f.spec.numKvHeads);
    const tokCfg = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8'));
    expect(tokCfg.chat_template ?? null).toBe(f.chatTemplate);
    // regenerating gives byte-identical ONNX
    const again = writeDecoderModel({ dir: join(tmp, `fixture-${f.name}`), spec: f.spec, chatTemplate: f.chatTemplate });
    expect(Buffer.compare(readFileSync(again.modelPath), readFileSync(join(dir, 'onnx', 'model.onnx')))).toBe(0);
    const ref = loadReferenceModel(dir);
    const session = await createSession(join(dir, 'onnx', 'model.onnx'));
    const ids = prompt.slice(0, 8);
    const pos = ids.map((_, i) => i);
    const o = await ortStep(session, f.spec, ids, pos, null);
    expect(maxAbsDiff(o.logits, referenceForward(ref, { inputIds: ids, positionIds: pos }).logits)).toBeLessThan(TOL);
  });

  it('tiny-qwen3 (q_norm / k_norm before RoPE): ORT greedy tokens equal the reference forward greedy tokens', async () => {
    const dir = fixturePath('tiny-qwen3');
    const spec = FIXTURES.find((f) => f.name === 'tiny-qwen3')!.spec;
    const ref = loadReferenceModel(dir);
    expect(ref.weights.has('model.layers.1.self_attn.q_norm.weight')).toBe(true);
    const session = await createSession(join(dir, 'onnx', 'model.onnx'));
    const ids = prompt.slice(0, 12);
    let o = await ortStep(session, spec, ids, ids.map((_, i) => i), null);
    let r = referenceForward(ref, { inputIds: ids, positionIds: ids.map((_, i) => i) });
    const ortTokens: number[] = [];
    const refTokens: number[] = [];
    for (let step = 0; step < 10; step++) {
      ortTokens.push(argmaxRows(o.logits, spec.vocabSize).at(-1)!);
      refTokens.push(argmaxRows(r.logits, spec.vocabSize).at(-1)!);
      const p = ids.length + step;
      o = await ortStep(session, spec, [ortTokens[step]], [p], o.present);
      r = referenceForward(ref, { inputIds: [refTokens[step]], positionIds: [p], past: r.present });
    }
    expect(ortTokens).toEqual(refTokens);
    expect(new Set(ortTokens).size).toBeGreaterThan(3); // a random model that does not repeat one token
    // The norm matters: without it the reference gives other logits.
    const plain = referenceForward({ ...ref, spec: { ...ref.spec, architecture: 'qwen2', qkvBias: false } }, { inputIds: ids, positionIds: ids.map((_, i) => i) });
    expect(maxAbsDiff(plain.logits, referenceForward(ref, { inputIds: ids, positionIds: ids.map((_, i) => i) }).logits)).toBeGreaterThan(1e-2);
  });

  it('chat template is present where expected', () => {
    expect(FIXTURES.find((f) => f.name === 'tiny-qwen2-gqa')!.chatTemplate).toBe(CHAT_TEMPLATE);
  });
});
