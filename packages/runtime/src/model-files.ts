/**
 * Which ONNX file of a model folder to load, named as transformers.js names them (`utils/dtypes.js`,
 * `DEFAULT_DTYPE_SUFFIX_MAPPING` in @huggingface/transformers 4.3.1), and its external data files
 * (`utils/model-loader.js`: `model.onnx_data`, `model.onnx_data_1`, …).
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidArgumentError, ModelLayoutError } from '@draft/core';

/** File-name suffix of each dtype: `onnx/<modelFileName><suffix>.onnx`. */
export const DTYPE_SUFFIXES = Object.freeze({
  fp32: '',
  fp16: '_fp16',
  q8: '_quantized',
  int8: '_int8',
  uint8: '_uint8',
  q4: '_q4',
  q4f16: '_q4f16',
  bnb4: '_bnb4',
});

/** A weight format of a transformers.js model folder. */
export type ModelDtype = keyof typeof DTYPE_SUFFIXES;

/** Element type of the KV cache declared by `transformers.js_config.kv_cache_dtype`. */
export type KvCacheDtype = 'float32' | 'float16';

export const MODEL_DTYPES = Object.keys(DTYPE_SUFFIXES) as ModelDtype[];

/** Options choosing the file (both also read by `loadModel`). */
export interface ModelFileOptions {
  /**
   * Weight format, as transformers.js' `dtype` (default: `transformers.js_config.dtype` in config.json, else
   * `fp32`; `auto` means the same). Picks `onnx/model<suffix>.onnx`, see `DTYPE_SUFFIXES`.
   */
  dtype?: ModelDtype | 'auto';
  /** Base name of the ONNX file, as transformers.js' `model_file_name` (default `model`). */
  modelFileName?: string;
}

/** The files `loadModel` reads. */
export interface ModelFiles {
  dtype: ModelDtype;
  /** Absolute path of the chosen `.onnx` file. */
  modelPath: string;
  /**
   * External data files that `transformers.js_config.use_external_data_format` declares, in chunk order
   * (checked to exist). The graph's own references are checked again, tensor by tensor, when it loads.
   */
  externalDataPaths: string[];
  /** `transformers.js_config.kv_cache_dtype` for this dtype, when declared. */
  kvCacheDtype?: KvCacheDtype;
}

/** transformers.js reads at most this many external data chunks (`MAX_EXTERNAL_DATA_CHUNKS`). */
const MAX_CHUNKS = 100;

function isDtype(value: unknown): value is ModelDtype {
  return typeof value === 'string' && Object.hasOwn(DTYPE_SUFFIXES, value);
}

/** Throws InvalidArgumentError unless `value` is a known dtype (or `auto`, or undefined). */
export function validateDtype(value: unknown, argument = 'dtype'): void {
  if (value === undefined || value === 'auto' || isDtype(value)) return;
  throw new InvalidArgumentError({ argument, value, expected: `one of ${MODEL_DTYPES.join(', ')} (or auto)` });
}

/** A transformers.js config value that is either global or keyed by file name (`model`, `model_q4.onnx`). */
function perFile(value: unknown, keys: string[]): unknown {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  const record = value as Record<string, unknown>;
  const key = keys.find((k) => Object.hasOwn(record, k));
  return key === undefined ? undefined : record[key];
}

/**
 * Resolves the ONNX file and external data of `dir` for `options`. Throws InvalidArgumentError (unknown
 * dtype, bad modelFileName) and ModelLayoutError (missing file: names it and lists the dtype files present;
 * malformed `transformers.js_config`).
 */
export function resolveModelFiles(dir: string, config: Record<string, unknown>, options: ModelFileOptions = {}): ModelFiles {
  validateDtype(options.dtype);
  const baseName = options.modelFileName ?? 'model';
  if (typeof baseName !== 'string' || baseName === '' || /[/\\]/.test(baseName)) {
    throw new InvalidArgumentError({ argument: 'modelFileName', value: baseName, expected: 'a file name without extension or folders, e.g. "model"' });
  }
  const configPath = join(dir, 'config.json');
  const tjs = (config['transformers.js_config'] ?? {}) as Record<string, unknown>;
  const fromConfig = perFile(tjs.dtype, [baseName]);
  if (fromConfig !== undefined && fromConfig !== 'auto' && !isDtype(fromConfig)) {
    throw new ModelLayoutError(`${configPath}: transformers.js_config.dtype ${JSON.stringify(fromConfig)} is not one of ${MODEL_DTYPES.join(', ')}.`, {
      path: configPath,
      details: { key: 'transformers.js_config.dtype' },
    });
  }
  const chosen = options.dtype !== undefined && options.dtype !== 'auto' ? options.dtype : fromConfig;
  const dtype: ModelDtype = isDtype(chosen) ? chosen : 'fp32';
  const fileName = `${baseName}${DTYPE_SUFFIXES[dtype]}.onnx`;
  const onnxDir = join(dir, 'onnx');
  const modelPath = join(onnxDir, fileName);
  if (!existsSync(modelPath)) {
    const present = existsSync(onnxDir) ? MODEL_DTYPES.filter((d) => existsSync(join(onnxDir, `${baseName}${DTYPE_SUFFIXES[d]}.onnx`))) : [];
    const list = present.map((d) => `${d} (${baseName}${DTYPE_SUFFIXES[d]}.onnx)`).join(', ') || 'none';
    throw new ModelLayoutError(`Missing model file ${modelPath} for dtype ${dtype}; dtype files present: ${list}.`, {
      path: modelPath,
      details: { dtype, present },
    });
  }

  // transformers.js: false → 0 chunks, true → 1, a number → that many; a record is keyed by file name.
  const format = perFile(tjs.use_external_data_format, [fileName, baseName]);
  const chunks = format === undefined || format === null ? 0 : Number(format);
  if (!Number.isInteger(chunks) || chunks < 0 || chunks > MAX_CHUNKS) {
    throw new ModelLayoutError(`${configPath}: transformers.js_config.use_external_data_format ${JSON.stringify(format)} must be a boolean or a chunk count in [0, ${MAX_CHUNKS}].`, {
      path: configPath,
      details: { key: 'transformers.js_config.use_external_data_format' },
    });
  }
  const externalDataPaths = Array.from({ length: chunks }, (_, i) => join(onnxDir, `${fileName}_data${i === 0 ? '' : `_${i}`}`));
  for (const path of externalDataPaths) {
    if (!existsSync(path)) {
      const found = readdirSync(onnxDir).filter((f) => f.startsWith(`${fileName}_data`));
      throw new ModelLayoutError(`Missing external data file ${path} (config.json declares ${chunks} chunk(s) for ${fileName}; found: ${found.join(', ') || 'none'}).`, {
        path,
      });
    }
  }

  const kv = perFile(tjs.kv_cache_dtype, [dtype]);
  if (kv !== undefined && kv !== 'float32' && kv !== 'float16') {
    throw new ModelLayoutError(`${configPath}: transformers.js_config.kv_cache_dtype ${JSON.stringify(kv)} must be float32 or float16.`, {
      path: configPath,
      details: { key: 'transformers.js_config.kv_cache_dtype' },
    });
  }
  return { dtype, modelPath, externalDataPaths, ...(kv ? { kvCacheDtype: kv } : {}) };
}
