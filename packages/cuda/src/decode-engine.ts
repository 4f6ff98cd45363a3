/**
 * The native decode engine's module (NativeDecoderModuleV1 of @draft/core): a runtime's worker imports this
 * file by path (`decodeEngineModule()`), so it must stand alone. The maths is kernels/cpu/decoder.cpp: one
 * fused decode step for Llama-family decoders over the caller's weights and in-place caches, on a persistent
 * thread pool.
 */
import {
  InvalidArgumentError,
  KernelError,
  NativeUnavailableError,
  type NativeDecoderConfigV1,
  type NativeDecoderModuleV1,
  type NativeDecoderRowV1,
  type NativeDecoderV1,
  type NativeDecoderWeightsV1,
  type NativeKvDtype,
  type NativeWeightDtype,
  type NativeLayerCallV1,
  type NativePrefillV1,
} from '@draft/core';
import { loadBinding } from './binding.js';

function binding() {
  const loaded = loadBinding();
  if (!loaded.binding) throw new NativeUnavailableError(`@draft/cuda: ${loaded.reason}.`, { details: { reason: loaded.reason } });
  return loaded.binding;
}

/** draft_cpu_decoder_step's limit per call. */
const MAX_ROWS_PER_CALL = 64;

const SIZES = ['hiddenSize', 'numLayers', 'numHeads', 'numKvHeads', 'headDim', 'intermediateSize', 'vocabSize'] as const;

function checkConfig(config: NativeDecoderConfigV1): void {
  for (const key of SIZES) {
    const v = config?.[key];
    if (!(Number.isInteger(v) && v >= 1)) throw new InvalidArgumentError({ argument: `config.${key}`, value: v, expected: 'an integer ≥ 1' });
  }
  if (config.numHeads % config.numKvHeads !== 0 || config.numHeads / config.numKvHeads > 64) {
    throw new InvalidArgumentError({ argument: 'config.numKvHeads', value: config.numKvHeads, expected: `a divisor of numHeads (${config.numHeads}) with at most 64 query heads each` });
  }
  if (config.headDim % 2 !== 0) throw new InvalidArgumentError({ argument: 'config.headDim', value: config.headDim, expected: 'an even number (rotate-half RoPE)' });
  if (!(Number.isFinite(config.rmsNormEps) && config.rmsNormEps >= 0)) {
    throw new InvalidArgumentError({ argument: 'config.rmsNormEps', value: config.rmsNormEps, expected: 'a finite number ≥ 0' });
  }
  if (config.threads !== undefined && !(Number.isInteger(config.threads) && config.threads >= 1 && config.threads <= 256)) {
    throw new InvalidArgumentError({ argument: 'config.threads', value: config.threads, expected: 'an integer in [1, 256]' });
  }
  for (const key of ['kvDtype', 'weightDtype'] as const) {
    const v = config[key];
    if (v !== undefined && v !== 'float32' && v !== 'float16') throw new InvalidArgumentError({ argument: `config.${key}`, value: v, expected: "'float32' or 'float16'" });
  }
}

/** Native errors are a backstop: a TypeError/RangeError from the addon is a caller's mistake, typed as such. */
function rethrow(error: unknown, argument: string): never {
  if (error instanceof TypeError || error instanceof RangeError) {
    throw new InvalidArgumentError({ argument, value: undefined, expected: 'see the message', message: `${argument}: ${error.message}`, cause: error });
  }
  const status = (error as { status?: number }).status;
  if (typeof status === 'number') throw new KernelError({ kernel: 'cpu_decoder', status, message: (error as Error).message, cause: error });
  throw error;
}

/** What the addon's NativeDecoder object offers (prefill methods flat on it). */
interface AddonDecoder extends NativeDecoderV1, NativePrefillV1 {}

class Decoder implements NativeDecoderV1 {
  private closed = false;
  readonly prefill: NativePrefillV1;
  readonly kvDtype: NativeKvDtype;
  readonly weightDtype: NativeWeightDtype;
  constructor(
    private readonly native: AddonDecoder,
    private readonly config: NativeDecoderConfigV1,
  ) {
    this.kvDtype = config.kvDtype ?? 'float32';
    this.weightDtype = config.weightDtype ?? 'float32';
    this.prefill = {
      embed: (tokens, hidden) => {
        this.open();
        if (!(tokens instanceof Int32Array) || tokens.length < 1) {
          throw new InvalidArgumentError({ argument: 'tokens', value: tokens, expected: 'a non-empty Int32Array of token ids' });
        }
        const bad = tokens.findIndex((t) => t < 0 || t >= config.vocabSize);
        if (bad >= 0) throw new InvalidArgumentError({ argument: `tokens[${bad}]`, value: tokens[bad], expected: `an integer in [0, ${config.vocabSize})` });
        this.call('hidden', () => native.embed(tokens, hidden));
      },
      layer: (call: NativeLayerCallV1) => {
        this.open();
        if (!(Number.isInteger(call?.layer) && call.layer >= 0 && call.layer < config.numLayers)) {
          throw new InvalidArgumentError({ argument: 'call.layer', value: call?.layer, expected: `an integer in [0, ${config.numLayers})` });
        }
        if (!(Number.isInteger(call.count) && Number.isInteger(call.used) && call.count >= 1 && call.used >= 0 && call.used + call.count <= call.capacity)) {
          throw new InvalidArgumentError({ argument: 'call.count', value: call.count, expected: `count ≥ 1 with used (${call.used}) + count ≤ capacity (${call.capacity})` });
        }
        this.call('call', () => native.layer(call));
      },
      head: (hidden, count, logits) => {
        this.open();
        this.call('hidden', () => native.head(hidden, count, logits));
      },
    };
  }

  private open(): void {
    if (this.closed) throw new InvalidArgumentError({ argument: 'decoder', value: 'closed', expected: 'an open decoder (close() was called)' });
  }

  private call(argument: string, run: () => void): void {
    try {
      run();
    } catch (error) {
      rethrow(error, argument);
    }
  }

  step(rows: NativeDecoderRowV1[]): void {
    this.open();
    if (!Array.isArray(rows) || rows.length < 1) {
      throw new InvalidArgumentError({ argument: 'rows', value: Array.isArray(rows) ? `${rows.length} rows` : rows, expected: 'at least one row' });
    }
    rows.forEach((r, b) => {
      if (!(Number.isInteger(r.token) && r.token >= 0 && r.token < this.config.vocabSize)) {
        throw new InvalidArgumentError({ argument: `rows[${b}].token`, value: r.token, expected: `an integer in [0, ${this.config.vocabSize})` });
      }
      if (!(Number.isInteger(r.used) && Number.isInteger(r.capacity) && r.used >= 0 && r.used < r.capacity)) {
        throw new InvalidArgumentError({ argument: `rows[${b}].used`, value: r.used, expected: `an integer in [0, capacity = ${r.capacity})` });
      }
    });
    try {
      // The kernel takes up to 64 sequences per call (its per-thread scratch); a larger batch runs in groups.
      for (let i = 0; i < rows.length; i += MAX_ROWS_PER_CALL) this.native.step(rows.slice(i, i + MAX_ROWS_PER_CALL));
    } catch (error) {
      rethrow(error, 'rows');
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.native.close();
  }
}

/** Creates a decoder over `weights` (referenced, not copied: keep them unchanged while it lives). */
export function createNativeDecoder(config: NativeDecoderConfigV1, weights: NativeDecoderWeightsV1): NativeDecoderV1 {
  checkConfig(config);
  const Native = binding().NativeDecoder;
  let native: AddonDecoder;
  try {
    native = new Native(config, weights);
  } catch (error) {
    rethrow(error, 'weights');
  }
  return new Decoder(native, config);
}

/** The file's bytes, mapped read-only: never write through a view of it. */
export function mapFile(path: string): ArrayBuffer {
  if (typeof path !== 'string' || path.length === 0) throw new InvalidArgumentError({ argument: 'path', value: path, expected: 'a file path' });
  return binding().mapFile(path);
}

export const nativeDecoderModule: NativeDecoderModuleV1 = { createNativeDecoder, mapFile };
