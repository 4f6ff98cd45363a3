/**
 * Moves initializers into external data files as Optimum / onnx do above 2 GB: `model.onnx` +
 * `model.onnx_data`, or chunked `model.onnx_data`, `model.onnx_data_1`, … (the transformers.js names for
 * `use_external_data_format: N`).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import { graphOf, type ModelProto } from './convert-graph.js';

const { onnx } = onnxProto;
const EXTERNAL = 1;
/** Offsets aligned like onnx's `save_model` so that runtimes may memory-map tensors. */
const ALIGN = 64;

/** transformers.js' data file names for `chunks` chunks of `fileName`. */
export function externalDataFileNames(fileName: string, chunks: number): string[] {
  return Array.from({ length: chunks }, (_, i) => `${fileName}_data${i === 0 ? '' : `_${i}`}`);
}

/**
 * Writes `model` (modified in place) as `dir/fileName` plus `chunks` data files; initializers of at least
 * `minBytes` raw bytes move out (onnx's default threshold is 1024). Returns the written data file names.
 */
export function writeExternalData(model: ModelProto, options: { dir: string; fileName: string; chunks?: number; minBytes?: number }): string[] {
  const chunks = options.chunks ?? 1;
  const minBytes = options.minBytes ?? 1024;
  const names = externalDataFileNames(options.fileName, chunks);
  const graph = graphOf(model);
  const moving = graph.initializer.filter((t) => (t.rawData?.length ?? 0) >= minBytes);
  const total = moving.reduce((sum, t) => sum + (t.rawData as Uint8Array).length, 0);
  const parts: Uint8Array[][] = names.map(() => []);
  const sizes = names.map(() => 0);
  let chunk = 0;
  for (const t of moving) {
    // Fill chunk after chunk to about total / chunks bytes each.
    if (chunk < chunks - 1 && sizes[chunk] > 0 && sizes[chunk] + (t.rawData as Uint8Array).length / 2 > total / chunks) chunk++;
    const raw = t.rawData as Uint8Array;
    const offset = sizes[chunk];
    const pad = (ALIGN - ((offset + raw.length) % ALIGN)) % ALIGN;
    parts[chunk].push(raw, new Uint8Array(pad));
    sizes[chunk] += raw.length + pad;
    t.rawData = new Uint8Array(0);
    t.dataLocation = EXTERNAL;
    t.externalData = [
      onnx.StringStringEntryProto.create({ key: 'location', value: names[chunk] }),
      onnx.StringStringEntryProto.create({ key: 'offset', value: String(offset) }),
      onnx.StringStringEntryProto.create({ key: 'length', value: String(raw.length) }),
    ];
  }
  writeFileSync(join(options.dir, options.fileName), onnx.ModelProto.encode(model).finish());
  for (const [i, name] of names.entries()) writeFileSync(join(options.dir, name), Buffer.concat(parts[i]));
  return names;
}
