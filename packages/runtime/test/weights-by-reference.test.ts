// Inline weights are handed to ORT by reference into the model file (externalizeInlineWeights): each large
// initializer's external range must be exactly its bytes in the file, small ones stay inline, and a symlinked
// model resolves to the real file.
import { cpSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import { afterAll, describe, expect, it } from 'vitest';
import { externalizeInlineWeights } from '../src/graph/external-data.js';
import { loadModel } from '../src/index.js';
import { maxAbsDiff, TINY_LLAMA } from './helpers.js';

const { onnx } = onnxProto;
const dir = mkdtempSync(join(tmpdir(), 'draft-weights-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function writeModel(path: string): { big: Uint8Array; small: Uint8Array } {
  const big = Uint8Array.from({ length: 8192 }, (_, i) => (i * 31 + 7) % 251);
  const small = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
  const graph = onnx.GraphProto.create({
    name: 'g',
    initializer: [
      onnx.TensorProto.create({ name: 'small', dataType: onnx.TensorProto.DataType.UINT8, dims: [8], rawData: small }),
      onnx.TensorProto.create({ name: 'big', dataType: onnx.TensorProto.DataType.UINT8, dims: [8192], rawData: big }),
    ],
  });
  writeFileSync(path, onnx.ModelProto.encode(onnx.ModelProto.create({ irVersion: 8, graph })).finish());
  return { big, small };
}

describe('externalizeInlineWeights', () => {
  it('points a large initializer at its exact bytes in the file and leaves a small one inline', () => {
    const path = join(dir, 'model.onnx');
    const { big, small } = writeModel(path);
    const file = readFileSync(path);
    const model = onnx.ModelProto.decode(file);
    const tensors = model.graph?.initializer ?? [];
    const moved = externalizeInlineWeights(tensors, file, path);
    expect(moved.bytes).toBe(8192);
    const [smallT, bigT] = tensors;
    expect(smallT.dataLocation ?? 0).toBe(onnx.TensorProto.DataLocation.DEFAULT);
    expect(Array.from(smallT.rawData ?? [])).toEqual(Array.from(small));
    expect(bigT.dataLocation).toBe(onnx.TensorProto.DataLocation.EXTERNAL);
    const entry = (key: string) => bigT.externalData?.find((e) => e.key === key)?.value;
    expect(entry('location')).toBe('model.onnx');
    const offset = Number(entry('offset'));
    expect(Number(entry('length'))).toBe(8192);
    expect(Array.from(file.subarray(offset, offset + 8192))).toEqual(Array.from(big));
    // Re-encoded, the graph no longer carries the big tensor's bytes.
    expect(onnx.ModelProto.encode(model).finish().byteLength).toBeLessThan(200);
  });

  it('resolves a symlinked model to the real file and folder', () => {
    const real = join(dir, 'blob-1234');
    writeModel(real);
    const link = join(dir, 'linked.onnx');
    symlinkSync(real, link);
    const file = readFileSync(link);
    const tensors = onnx.ModelProto.decode(file).graph?.initializer ?? [];
    const moved = externalizeInlineWeights(tensors, file, link);
    expect(moved.folder).toBe(realpathSync(dir));
    expect(tensors[1].externalData?.find((e) => e.key === 'location')?.value).toBe('blob-1234');
  });
});

describe('a model with inline weights', () => {
  it('gives the logits of the same model with its weights in a data file', async () => {
    // The same folder with every initializer of 4 KiB or more moved by hand into onnx/model.onnx_data.
    const copy = join(dir, 'tiny-llama-external');
    cpSync(TINY_LLAMA, copy, { recursive: true });
    const model = onnx.ModelProto.decode(readFileSync(join(copy, 'onnx', 'model.onnx')));
    const chunks: Uint8Array[] = [];
    let offset = 0;
    for (const t of model.graph?.initializer ?? []) {
      if (!t.rawData || t.rawData.byteLength < 4096) continue;
      chunks.push(t.rawData.slice());
      t.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
      t.externalData = [
        { key: 'location', value: 'model.onnx_data' },
        { key: 'offset', value: String(offset) },
        { key: 'length', value: String(t.rawData.byteLength) },
      ];
      offset += t.rawData.byteLength;
      t.rawData = null;
    }
    expect(offset).toBeGreaterThan(0);
    writeFileSync(join(copy, 'onnx', 'model.onnx_data'), Buffer.concat(chunks));
    writeFileSync(join(copy, 'onnx', 'model.onnx'), onnx.ModelProto.encode(model).finish());

    const inline = await loadModel(TINY_LLAMA, { threads: 1 });
    const external = await loadModel(copy, { threads: 1 });
    try {
      expect(inline.graph.externalDataFiles).toEqual([]);
      expect(external.graph.externalDataFiles).toHaveLength(1);
      const ids = [3, 14, 15, 92, 65, 35, 89, 79];
      const a = await inline.forward({ inputIds: ids });
      const b = await external.forward({ inputIds: ids });
      expect(maxAbsDiff(a.logits, b.logits)).toBe(0);
      a.cache.dispose();
      b.cache.dispose();
    } finally {
      await inline.dispose();
      await external.dispose();
    }
  });
});
