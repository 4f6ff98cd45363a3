/**
 * Writes the dtype / external-data variants of a fixture folder (deterministic, ~1 s for the tiny fixtures),
 * generated on demand rather than committed (they would add ~4 MB of binaries):
 *
 * - `<name>-dtypes/`: onnx/model.onnx (fp32 copy), model_fp16.onnx, model_q4.onnx, model_q4f16.onnx (the q4
 *   graph in float16, MatMulNBits with float16 scales), model_quantized.onnx (uint8 weights), model_int8.onnx,
 *   model_uint8.onnx, and model_kv16.onnx (float32 compute with float16 KV and logits I/O; not a dtype, load it
 *   with `modelFileName: 'model_kv16'`);
 * - `<name>-external/`: onnx/model.onnx + model.onnx_data (`use_external_data_format: true`);
 * - `<name>-chunked/`: onnx/model.onnx + model.onnx_data, _1, _2 (`use_external_data_format: 3`).
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import { writeExternalData } from './convert-external-data.js';
import { convertToFp16 } from './convert-fp16.js';
import { convertToInt8 } from './convert-int8.js';
import { withFloat16KvIo } from './convert-kv16.js';
import { convertToQ4 } from './convert-q4.js';

const { onnx } = onnxProto;

/** Copies the non-ONNX files of a model folder and merges `transformersJsConfig` into config.json. */
function copyFolder(src: string, dst: string, transformersJsConfig?: Record<string, unknown>): void {
  rmSync(dst, { recursive: true, force: true });
  mkdirSync(join(dst, 'onnx'), { recursive: true });
  for (const f of readdirSync(src)) if (f.endsWith('.json')) copyFileSync(join(src, f), join(dst, f));
  if (transformersJsConfig) {
    const config = JSON.parse(readFileSync(join(dst, 'config.json'), 'utf8'));
    config['transformers.js_config'] = transformersJsConfig;
    writeFileSync(join(dst, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
  }
}

export interface DtypeFixtureDirs {
  dtypes: string;
  external: string;
  chunked: string;
}

/**
 * Writes the three variant folders of `srcDir` as `outRoot/<name>-…`; skips when they exist unless `force`.
 * Safe when test runs of several packages call it at once: each writes into its own staging folder and renames
 * the finished folders into place (a folder already there wins).
 */
export function writeDtypeFixtures(srcDir: string, outRoot: string, name: string, options: { force?: boolean } = {}): DtypeFixtureDirs {
  const dirs = { dtypes: join(outRoot, `${name}-dtypes`), external: join(outRoot, `${name}-external`), chunked: join(outRoot, `${name}-chunked`) };
  // The chunked folder is renamed into place last: once it exists, all three do.
  if (!options.force && existsSync(dirs.chunked)) return dirs;
  const staging = join(outRoot, `.staging-${name}-${process.pid}`);
  const staged = { dtypes: join(staging, 'dtypes'), external: join(staging, 'external'), chunked: join(staging, 'chunked') };
  const fp32 = readFileSync(join(srcDir, 'onnx', 'model.onnx'));
  try {
    copyFolder(srcDir, staged.dtypes, { kv_cache_dtype: { q4f16: 'float16', fp16: 'float16' } });
    const out = (file: string, bytes: Uint8Array) => writeFileSync(join(staged.dtypes, 'onnx', file), bytes);
    out('model.onnx', fp32);
    out('model_fp16.onnx', convertToFp16(fp32).bytes);
    const q4 = convertToQ4(fp32);
    out('model_q4.onnx', q4.bytes);
    out('model_q4f16.onnx', convertToFp16(q4.bytes).bytes);
    out('model_kv16.onnx', withFloat16KvIo(onnx.ModelProto.decode(fp32)));
    out('model_quantized.onnx', convertToInt8(fp32, { weightType: 'uint8' }).bytes);
    out('model_int8.onnx', convertToInt8(fp32, { weightType: 'int8' }).bytes);
    out('model_uint8.onnx', convertToInt8(fp32, { weightType: 'uint8' }).bytes);
    for (const [dir, chunks] of [
      [staged.external, 1],
      [staged.chunked, 3],
    ] as const) {
      copyFolder(srcDir, dir, { use_external_data_format: chunks === 1 ? true : chunks });
      writeExternalData(onnx.ModelProto.decode(fp32), { dir: join(dir, 'onnx'), fileName: 'model.onnx', chunks });
    }
    for (const key of ['dtypes', 'external', 'chunked'] as const) {
      if (options.force) rmSync(dirs[key], { recursive: true, force: true });
      try {
        renameSync(staged[key], dirs[key]);
      } catch (error) {
        // Another writer got there first with identical files (the converters are deterministic).
        if (!['ENOTEMPTY', 'EEXIST'].includes((error as NodeJS.ErrnoException).code ?? '')) throw error;
      }
    }
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
  return dirs;
}
