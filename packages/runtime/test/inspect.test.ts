import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GraphPatternError, ModelLayoutError } from '@draft/core';
import onnxProto from 'onnx-proto';
import { afterAll, describe, expect, it } from 'vitest';
import { MHA_TWIN_SPEC, writeAttentionTwins } from '@draft/models';
import { inspectModel, loadModel } from '../src/index.js';
import { maxAbsDiff, TINY_LLAMA, TINY_QWEN2_GQA } from './helpers.js';

const { onnx } = onnxProto;
type Graph = InstanceType<typeof onnx.GraphProto>;
const work = mkdtempSync(join(tmpdir(), 'draft-inspect-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

let copies = 0;
/** A copy of `from` with its graph and/or config edited. */
function copy(from: string, edit: { graph?: (g: Graph) => void; config?: (c: Record<string, unknown>) => void; files?: (dir: string) => void }): string {
  const dir = join(work, `c${copies++}`);
  cpSync(from, dir, { recursive: true });
  if (edit.graph) {
    const path = join(dir, 'onnx', 'model.onnx');
    const model = onnx.ModelProto.decode(readFileSync(path));
    edit.graph(model.graph as Graph);
    writeFileSync(path, onnx.ModelProto.encode(model).finish());
  }
  if (edit.config) {
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    edit.config(config);
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  }
  edit.files?.(dir);
  return dir;
}
const gqaNodes = (g: Graph) => g.node.filter((n) => n.opType === 'GroupQueryAttention');
function dropPositionIds(g: Graph): void {
  for (const n of gqaNodes(g)) n.input = (n.input ?? []).slice(0, 9);
}
function renameGqa(g: Graph, opType: string): void {
  for (const n of gqaNodes(g)) n.opType = opType;
}

describe('inspectModel', () => {
  it('GroupQueryAttention: position_ids (input 9) wired or not decides explicit positions', () => {
    const wired = inspectModel(TINY_QWEN2_GQA);
    expect(wired.attention.layers.map((l) => [l.style, l.positionIdsWired, l.rotaryCache])).toEqual([
      ['gqa', true, 'initializer'],
      ['gqa', true, 'initializer'],
    ]);
    expect(wired.capabilities).toMatchObject({ positionIds: true, queryCapture: true, raggedKvHeads: false });
    const unwired = inspectModel(copy(TINY_QWEN2_GQA, { graph: (g) => dropPositionIds(g) }));
    expect(unwired.attention.layers.map((l) => [l.positionIdsWired, l.positionIds])).toEqual([
      [false, 'rewired'],
      [false, 'rewired'],
    ]);
    // loadModel wires the graph's position_ids into the op, so positions stay explicit.
    expect(unwired.capabilities.positionIds).toBe(true);
    expect(unwired.warnings.join('\n')).toContain("wires the graph's position_ids into them");
  });

  it('an unsupported fused attention is reported (not thrown), naming the nodes; loadModel throws GraphPatternError', async () => {
    const dir = copy(TINY_QWEN2_GQA, { graph: (g) => renameGqa(g, 'PackedMultiHeadAttention') });
    const x = inspectModel(dir);
    expect(x.loadable).toBe(false);
    expect(x.attention).toEqual({
      pattern: 'unsupported',
      layers: [0, 1].map((l) => ({ layer: l, style: 'other-fused', node: `/model/layers.${l}/self_attn/GroupQueryAttention`, op: 'com.microsoft.PackedMultiHeadAttention' })),
    });
    expect(x.loadError?.message).toMatch(/looked at PackedMultiHeadAttention '\/model\/layers\.0\/self_attn\/GroupQueryAttention', PackedMultiHeadAttention '\/model\/layers\.1/);
    const e = await loadModel(dir).catch((error: unknown) => error);
    expect(e).toBeInstanceOf(GraphPatternError);
    expect((e as Error).message).toContain("PackedMultiHeadAttention '/model/layers.0/self_attn/GroupQueryAttention'");
  });

  it('MultiHeadAttention, the ONNX Attention op and RotaryEmbedding + GQA exports are recognised, with what they offer', () => {
    const twins = { ...writeAttentionTwins(join(work, 'twins'), undefined, ['gqa-rotary-node', 'attention23', 'gqa-packed']), ...writeAttentionTwins(join(work, 'mha'), MHA_TWIN_SPEC, ['mha']) };
    const styles = (dir: string) => inspectModel(dir).attention.layers.map((l) => [l.style, l.positionIds]);
    expect(styles(twins.mha)).toEqual([
      ['mha', undefined],
      ['mha', undefined],
    ]);
    expect(styles(twins.attention23)).toEqual([
      ['attention', undefined],
      ['attention', undefined],
    ]);
    expect(styles(twins['gqa-rotary-node'])).toEqual([
      ['gqa', 'none'],
      ['gqa', 'none'],
    ]);
    expect(styles(twins['gqa-packed'])).toEqual([
      ['gqa-packed-qkv', 'wired'],
      ['gqa-packed-qkv', 'wired'],
    ]);
    const x = inspectModel(twins.mha);
    expect(x.attention.pattern).toBe('mha');
    expect(x.loadable).toBe(true);
    expect(x.capabilities).toMatchObject({ queryCapture: true, allQueryCapture: true, positionIds: true, raggedKvHeads: false, raggedLayers: false });
  });

  it('dtype files in onnx/ and their external data are listed', () => {
    const dir = copy(TINY_LLAMA, {
      files: (d) => {
        for (const f of ['model_fp16.onnx', 'model_q4.onnx', 'model_q4.onnx_data', 'model_q4.onnx_data_1', 'model_quantized.onnx']) writeFileSync(join(d, 'onnx', f), 'x');
      },
    });
    const x = inspectModel(dir);
    expect(x.files.map((f) => [f.path, f.dtype, f.externalData.map((e) => e.path), f.loaded])).toEqual([
      ['onnx/model.onnx', 'fp32', [], true],
      ['onnx/model_fp16.onnx', 'fp16', [], false],
      ['onnx/model_q4.onnx', 'q4', ['onnx/model_q4.onnx_data', 'onnx/model_q4.onnx_data_1'], false],
      ['onnx/model_quantized.onnx', 'q8', [], false],
    ]);
  });

  it.each([
    ['num_key_value_heads', 4, /num_key_value_heads = 4 contradicts graph input 'past_key_values\.0\.key' \[batch_size, 2, past_sequence_length, 16\]/],
    ['head_dim', 32, /head_dim = 32 contradicts graph input 'past_key_values\.0\.key'/],
  ] as const)('config %s contradicting the KV inputs → ModelLayoutError naming config.json and the input', (key, value, message) => {
    const dir = copy(TINY_LLAMA, { config: (c) => (c[key] = value) });
    const e = (() => {
      try {
        inspectModel(dir);
      } catch (error) {
        return error as ModelLayoutError;
      }
    })();
    expect(e).toBeInstanceOf(ModelLayoutError);
    expect(e?.path).toBe(join(dir, 'config.json'));
    expect(e?.message).toMatch(message);
    expect(e?.details).toMatchObject({ key, input: 'past_key_values.0.key' });
  });

  it('num_attention_heads contradicting a GroupQueryAttention node → ModelLayoutError naming the node', () => {
    const dir = copy(TINY_QWEN2_GQA, { config: (c) => Object.assign(c, { num_attention_heads: 8, head_dim: 16 }) });
    expect(() => inspectModel(dir)).toThrow(/num_attention_heads = 8 contradicts node '\/model\/layers\.0\/self_attn\/GroupQueryAttention'/);
  });
});

describe('GroupQueryAttention without cos/sin initializers: the runtime rotates captured queries with scaled RoPE', () => {
  it('linear rope_scaling: queries equal those captured with the same tables as initializers', async () => {
    // Tables for linear scaling, factor 4 (angle = p · θ^(−2i/d) / 4), written into the graph's cos/sin caches.
    const factor = 4;
    const scaled = (g: Graph) => {
      for (const t of g.initializer) {
        if (t.name !== 'cos_cache' && t.name !== 'sin_cache') continue;
        const [positions, half] = (t.dims ?? []).map(Number);
        const data = new Float32Array(positions * half);
        for (let p = 0; p < positions; p++) {
          for (let i = 0; i < half; i++) {
            const angle = (p * Math.fround(1 / 10000 ** (i / half))) / factor;
            data[p * half + i] = t.name === 'cos_cache' ? Math.cos(angle) : Math.sin(angle);
          }
        }
        t.floatData = [];
        t.rawData = new Uint8Array(data.buffer);
      }
    };
    const withCaches = copy(TINY_QWEN2_GQA, { graph: scaled, config: (c) => (c.rope_scaling = { rope_type: 'linear', factor }) });
    // Same graph, but cos/sin reach the node through Identity: no initializer to read, so the runtime's tables are used.
    const computed = copy(withCaches, {
      graph: (g) => {
        g.node.unshift(
          onnx.NodeProto.create({ opType: 'Identity', input: ['cos_cache'], output: ['cos_computed'], name: 'cos_identity' }),
          onnx.NodeProto.create({ opType: 'Identity', input: ['sin_cache'], output: ['sin_computed'], name: 'sin_identity' }),
        );
        for (const n of gqaNodes(g)) n.input?.splice(7, 2, 'cos_computed', 'sin_computed');
      },
    });
    expect(inspectModel(computed).attention.layers[0].rotaryCache).toBe('computed');
    const ids = Array.from({ length: 24 }, (_, i) => (i * 37 + 11) % 500);
    const queries = async (dir: string) => {
      const model = await loadModel(dir, { threads: 1 });
      try {
        // Positions far from 0 so that the scaling matters (a gap, as after compression).
        const first = await model.forward({ inputIds: ids.slice(0, 16), positionIds: ids.slice(0, 16).map((_, i) => 300 + i) });
        const next = await model.forward({ inputIds: ids.slice(16), positionIds: ids.slice(16).map((_, i) => 900 + i), cache: first.cache, captureQueries: 'all' });
        first.cache.dispose();
        next.cache.dispose();
        return next.queries as Float32Array[];
      } finally {
        await model.dispose();
      }
    };
    const expected = await queries(withCaches);
    const actual = await queries(computed);
    for (let l = 0; l < 2; l++) expect(maxAbsDiff(actual[l], expected[l])).toBeLessThan(1e-5);
    // Unscaled tables would rotate differently: the check has teeth.
    const unscaled = await queries(copy(computed, { config: (c) => delete c.rope_scaling }));
    expect(maxAbsDiff(unscaled[0], expected[0])).toBeGreaterThan(1e-2);
  });
});
