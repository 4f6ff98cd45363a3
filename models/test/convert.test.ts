import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import { describe, expect, it } from 'vitest';
import { convertToFp16, convertToInt8, convertToQ4, fixturePath, floatToHalf, GraphBuilder, withFloat16KvIo, writeExternalData } from '../src/index.js';
import { DT } from '../src/onnx-builder.js';
import { Rng } from '../src/rng.js';

const { onnx } = onnxProto;

/**
 * y = x · Wᵀ with W (N, K) stored HF-style and transposed in the graph (the writer's linear layers), or with
 * `direct` stored as the [K, N] initializer MatMul reads (Optimum exports).
 */
function linearModel(n: number, k: number, seed: number, direct = false): { bytes: Uint8Array; w: Float32Array; x: Float32Array } {
  const rng = new Rng(seed);
  const rand = () => rng.next();
  const w = Float32Array.from({ length: n * k }, () => rand() * 2 - 1);
  const x = Float32Array.from({ length: 3 * k }, () => rand() * 2 - 1);
  const g = new GraphBuilder();
  g.input('x', DT.FLOAT, [3, k]);
  if (direct) {
    const wT = new Float32Array(k * n);
    for (let j = 0; j < n; j++) for (let i = 0; i < k; i++) wT[i * n + j] = w[j * k + i];
    g.initFloat('w', wT, [k, n]);
  } else g.initFloat('w', w, [n, k]);
  g.node('MatMul', ['x', direct ? 'w' : g.op('Transpose', ['w'], 'T', { perm: [1, 0] })], 'mm', {}, { outputs: ['y'] });
  g.output('y', DT.FLOAT, [3, n]);
  return { bytes: g.toModel({ graphName: 'linear', opsets: { '': 17 } }), w, x };
}

async function runLinear(bytes: Uint8Array, x: Float32Array, k: number): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(bytes, { logSeverityLevel: 3 });
  const out = await session.run({ x: new ort.Tensor('float32', x, [3, k]) });
  return out.y.data as Float32Array;
}

/** x · dequant(W)ᵀ computed here from the quantizer's own dequantized weights. */
function matmulT(x: Float32Array, w: ArrayLike<number>, n: number, k: number): Float32Array {
  const y = new Float32Array(3 * n);
  for (let r = 0; r < 3; r++) for (let j = 0; j < n; j++) for (let i = 0; i < k; i++) y[r * n + j] += x[r * k + i] * w[j * k + i];
  return y;
}

describe('converters', () => {
  it.each([false, true])('q4: ORT MatMulNBits equals x · dequant(W)ᵀ with the documented packing (K not a multiple of 32; [K, N] initializer: %s)', async (direct) => {
    const [n, k] = [5, 80];
    const { bytes, w, x } = linearModel(n, k, 7, direct);
    const { bytes: q4, model, replaced } = convertToQ4(bytes);
    expect(replaced).toBe(1);
    const init = new Map((model.graph?.initializer ?? []).map((t) => [t.name, t.rawData as Uint8Array]));
    const packed = init.get('mm/q4/B') as Uint8Array;
    const scales = new Float32Array(Uint8Array.from(init.get('mm/q4/scales') as Uint8Array).buffer);
    const zps = init.get('mm/q4/zero_points') as Uint8Array;
    const blocks = Math.ceil(k / 32);
    // Unpack by the ORT spec: low nibble first, zero points per row ⌈blocks/2⌉ bytes.
    const deq = new Float32Array(n * k);
    for (let j = 0; j < n; j++) {
      for (let i = 0; i < k; i++) {
        const b = Math.floor(i / 32);
        const byte = packed[(j * blocks + b) * 16 + ((i % 32) >> 1)];
        const code = (i % 2 === 0 ? byte : byte >> 4) & 15;
        const zpByte = zps[j * Math.ceil(blocks / 2) + (b >> 1)];
        const zp = (b % 2 === 0 ? zpByte : zpByte >> 4) & 15;
        deq[j * k + i] = (code - zp) * scales[j * blocks + b];
      }
    }
    for (let i = 0; i < w.length; i++) expect(Math.abs(deq[i] - w[i])).toBeLessThanOrEqual(scales[Math.floor(i / k) * blocks + Math.floor((i % k) / 32)] / 2 + 1e-6);
    const y = await runLinear(q4, x, k);
    const expected = matmulT(x, deq, n, k);
    for (let i = 0; i < y.length; i++) expect(y[i]).toBeCloseTo(expected[i], 4);
  });

  it('int8 and uint8: within one quantization step of the fp32 product', async () => {
    const [n, k] = [6, 40];
    const { bytes, w, x } = linearModel(n, k, 9);
    const exact = matmulT(x, w, n, k);
    for (const weightType of ['int8', 'uint8'] as const) {
      const y = await runLinear(convertToInt8(bytes, { weightType }).bytes, x, k);
      // Weight step ≤ 2/127 (int8) or 2/255, activation step ≤ 2/255; |x|, |w| ≤ 1 over K = 40 terms.
      for (let i = 0; i < y.length; i++) expect(Math.abs(y[i] - exact[i])).toBeLessThan(k * (1 / 127 + 1 / 255));
      expect(y).not.toEqual(exact);
    }
  });

  it('fp16 and fp16 KV I/O rewrite the fixture’s I/O types; external data round-trips through ORT', async () => {
    const fp32 = readFileSync(join(fixturePath('tiny-llama'), 'onnx', 'model.onnx'));
    const types = (bytes: Uint8Array) => {
      const g = onnx.ModelProto.decode(bytes).graph;
      return Object.fromEntries([...(g?.input ?? []), ...(g?.output ?? [])].map((v) => [v.name, v.type?.tensorType?.elemType]));
    };
    const fp16 = types(convertToFp16(fp32).bytes);
    expect([fp16['past_key_values.0.key'], fp16['present.1.value'], fp16.logits, fp16.input_ids]).toEqual([10, 10, 10, DT.INT64]);
    const kv16 = types(withFloat16KvIo(onnx.ModelProto.decode(fp32)));
    expect([kv16['past_key_values.1.value'], kv16.logits, kv16.position_ids]).toEqual([10, 10, DT.INT64]);
    expect(floatToHalf(-3.4e38)).toBe(0xfbff);
    expect(floatToHalf(1)).toBe(0x3c00);
    expect(floatToHalf(2 ** -24)).toBe(1);

    const dir = mkdtempSync(join(tmpdir(), 'draft-ext-'));
    try {
      const names = writeExternalData(onnx.ModelProto.decode(fp32), { dir, fileName: 'model.onnx', chunks: 3 });
      expect(names).toEqual(['model.onnx_data', 'model.onnx_data_1', 'model.onnx_data_2']);
      expect(statSync(join(dir, 'model.onnx')).size).toBeLessThan(fp32.length / 10);
      const session = await ort.InferenceSession.create(join(dir, 'model.onnx'), { logSeverityLevel: 3 });
      expect(session.inputNames).toContain('past_key_values.1.value');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
