// GroupQueryAttention exports that do not feed `position_ids` into the op rotate new tokens at the cache
// length. After compaction that is the wrong position; the loader wires the graph's positions into every GQA
// node (adding or retyping the input as needed). Checked against the plain TS reference forward.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gatherCache, loadReferenceModel, referenceForward, type TwinName, writeAttentionTwins } from '@draft/models';
import onnxProto from 'onnx-proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from '../src/index.js';
import { maxAbsDiff } from './helpers.js';

const { onnx } = onnxProto;
let dir: string;
let paths: Record<TwinName, string>;

/** The unwired twin with `position_ids` declared int32 and read by one other node, as some exports have it. */
function writeInt32Variant(from: string, to: string): void {
  const model = onnx.ModelProto.decode(readFileSync(join(from, 'onnx', 'model.onnx')));
  const graph = model.graph as InstanceType<typeof onnx.GraphProto>;
  const input = graph.input.find((i) => i.name === 'position_ids');
  if (!input?.type?.tensorType) throw new Error('twin lacks position_ids');
  input.type.tensorType.elemType = onnx.TensorProto.DataType.INT32;
  graph.node.push(onnx.NodeProto.create({ opType: 'Cast', input: ['position_ids'], output: ['positions_as_float'], name: 'other_reader', attribute: [{ name: 'to', type: onnx.AttributeProto.AttributeType.INT, i: onnx.TensorProto.DataType.FLOAT }] }));
  for (const file of ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json']) writeFileSync(join(to, file), readFileSync(join(from, file)));
  writeFileSync(join(to, 'onnx', 'model.onnx'), onnx.ModelProto.encode(model).finish());
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'draft-gqa-pos-'));
  paths = writeAttentionTwins(dir);
  const int32 = join(dir, 'gqa-int32');
  writeAttentionTwins(int32); // folder skeleton
  writeInt32Variant(paths['gqa-unwired'], join(int32, 'decomposed'));
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const variants = [
  { name: 'unwired', folder: () => paths['gqa-unwired'] },
  { name: 'absent', folder: () => paths['gqa-absent'] },
  { name: 'int32, read elsewhere', folder: () => join(dir, 'gqa-int32', 'decomposed') },
];

describe.each(variants)('GQA without wired position_ids ($name)', ({ folder }) => {
  it('a compacted cache continued at the true position matches the reference forward', async () => {
    const reference = loadReferenceModel(paths.decomposed);
    const prompt = Array.from({ length: 24 }, (_, i) => (i * 37 + 11) % 500);
    const keep = [0, 1, 2, 3, 9, 15, 20, 23];
    const next = [42, 7, 300];
    const ref0 = referenceForward(reference, { inputIds: prompt, positionIds: prompt.map((_, i) => i) });
    const ref1 = referenceForward(reference, { inputIds: next, positionIds: [24, 25, 26], past: gatherCache(ref0.present, keep, 2, 16) });

    const model = await loadModel(folder(), { threads: 1 });
    try {
      expect(model.graph.captures.map((c) => ('positionIds' in c ? c.positionIds : undefined))).toEqual(['rewired', 'rewired']);
      const r0 = await model.forward({ inputIds: prompt });
      const kept = Int32Array.from(keep);
      const compact = await r0.cache.gather([
        [kept, kept],
        [kept, kept],
      ]);
      // 8 entries are cached: an op numbering from the cache length would rotate the new tokens at 8, 9, 10.
      const r1 = await model.forward({ inputIds: next, cache: compact, logits: 'all' });
      expect(maxAbsDiff(r1.logits, ref1.logits)).toBeLessThan(1e-4);
      for (const c of [r0.cache, compact, r1.cache]) c.dispose();
    } finally {
      await model.dispose();
    }
  });
});
