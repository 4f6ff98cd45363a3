import type { NativeDecoderConfigV1, NativeDecoderV1, NativeDecoderWeightsV1, NativePrefillV1 } from '@draft/core';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Numeric enums of kernels/include/draft_kernels.h. */
export const ReduceOpCode = { max: 0, mean: 1, sum: 2 } as const;
export const PoolTypeCode = { max: 0, avg: 1 } as const;
export const PaddingCode = { same: 0, 'centred-zero': 1 } as const;
export const TopKOrderCode = { position: 0, score: 1 } as const;
/** `draft_status` values. */
export const KernelStatus = {
  ok: 0,
  invalidArgument: 1,
  outOfMemory: 2,
  cuda: 3,
  noDevice: 4,
  notBuilt: 5,
  unsupported: 6,
  internal: 7,
} as const;

export type NativeDevice = 'cpu' | 'cuda';

interface DeviceArgs {
  device?: NativeDevice;
  numThreads?: number;
}

/** The raw addon (binding/addon.cpp). Inputs are not validated beyond a backstop: use the wrappers in native-ops.ts. */
export interface BindingModule {
  info(): { cudaBuilt: boolean; cudaDevices: number; kernelsVersion: string };
  windowScores(
    queries: Float32Array,
    keys: Float32Array | Uint16Array,
    options: DeviceArgs & {
      numHeads: number;
      numKvHeads: number;
      headDim: number;
      queryCount: number;
      keyCount: number;
      causalTail: number;
      scale?: number;
      op: number;
      queryWeights?: Float32Array;
      chunkSize?: number;
    },
  ): Promise<Float32Array>;
  pool1d(scores: Float32Array, options: DeviceArgs & { rows: number; length: number; kernel: number; type: number; padding: number }): Promise<Float32Array>;
  topk(scores: Float32Array, options: DeviceArgs & { rows: number; length: number; k: number; order: number }): Promise<Int32Array>;
  gatherRows<T extends Float32Array | Uint16Array>(
    tensor: T,
    options: DeviceArgs & { numKvHeads: number; length: number; rowDim: number },
    indices: Int32Array,
    counts: Int32Array,
  ): Promise<T>;
  raggedAttention<T extends Float32Array | Uint16Array>(
    queries: Float32Array,
    keys: T,
    values: T,
    offsets: Int32Array,
    lengths: Int32Array,
    options: DeviceArgs & {
      numHeads: number;
      numKvHeads: number;
      headDim: number;
      queryCount: number;
      causal: number;
      scale?: number;
      chunkSize?: number;
    },
  ): Promise<Float32Array>;
  /** malloc_trim(0) on glibc; `supported: false` elsewhere. See binding/heap_trim.cpp. */
  trimHeap(): { supported: boolean; trimmed: boolean; releasedBytes?: number; reason?: string };
  /** binding/decoder.cpp: the native decode step (validate with src/decode-engine.ts first). */
  NativeDecoder: new (config: NativeDecoderConfigV1, weights: NativeDecoderWeightsV1) => NativeDecoderV1 & NativePrefillV1;
  /** Maps a file read-only (PROT_READ): views of the buffer must never be written. */
  mapFile(path: string): ArrayBuffer;
  specpcAggregate(
    scores: Float32Array,
    options: { numLayers: number; rowsPerLayer: number; keyCount: number; outLength: number; device?: NativeDevice },
    out?: Float32Array,
  ): Float32Array;
}

export type BindingLoadResult = { binding: BindingModule; path: string; reason?: undefined } | { binding: null; path?: string; reason: string };

let cached: BindingLoadResult | undefined;

/** Candidate locations of the compiled addon: DRAFT_NATIVE_PATH, then build/Release next to dist/ or src/. */
function candidates(): string[] {
  const here = dirname(fileURLToPath(import.meta.url));
  const list = [join(here, '..', 'build', 'Release', 'draft_native.node')];
  if (process.env.DRAFT_NATIVE_PATH) list.unshift(process.env.DRAFT_NATIVE_PATH);
  return list;
}

/**
 * Loads the native addon once. Never throws: returns `{ binding: null, reason }` when the addon is disabled
 * (DRAFT_NATIVE=0), was not built (no cmake / compiler at install time) or cannot be loaded.
 */
export function loadBinding(): BindingLoadResult {
  if (cached) return cached;
  if (process.env.DRAFT_NATIVE === '0') {
    cached = { binding: null, reason: 'disabled by DRAFT_NATIVE=0' };
    return cached;
  }
  const path = candidates().find((p) => existsSync(p));
  if (!path) {
    cached = {
      binding: null,
      reason: 'the native addon is not built (run `pnpm --filter @draft/cuda build:native`; needs cmake and a C++17 compiler)',
    };
    return cached;
  }
  try {
    const require = createRequire(import.meta.url);
    cached = { binding: require(path) as BindingModule, path };
  } catch (error) {
    cached = { binding: null, path, reason: `the native addon at ${path} failed to load: ${(error as Error).message}` };
  }
  return cached;
}
