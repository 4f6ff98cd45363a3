/**
 * @draft/cuda — native CPU/CUDA kernels (kernels/ via node-addon-api) for window scoring, pooling, top-k,
 * KV gather, SpecPC aggregation and attention over ragged per-KV-head caches. Side-effect free: call `registerNativeBackend()` or
 * `import '@draft/cuda/register'` to make @draft/core's `getKernelBackend()` use them (and its heap trimmer
 * return memory that ORT freed to the OS: `createHeapTrimmer`).
 */
export const PACKAGE_NAME = '@draft/cuda';

export { type BindingLoadResult, type BindingModule, KernelStatus, loadBinding, type NativeDevice } from './binding.js';
export { float16ToFloat32, float32ToFloat16 } from './f16.js';
export { createHeapTrimmer } from './heap-trimmer.js';
export { createNativeDecoder, mapFile, nativeDecoderModule } from './decode-engine.js';
export { decodeEngineModule } from './decode-engine-path.js';
export {
  createNativeBackend,
  type NativeBackendOptions,
  type NativeInfo,
  nativeInfo,
  type RegisterNativeOptions,
  type RegisterNativeResult,
  registerNativeBackend,
} from './native-backend.js';
export {
  kernelErrorFrom,
  type NativeCallOptions,
  type NativeGatherShape,
  nativeGatherRows,
  nativePool1d,
  type NativeRaggedAttentionOptions,
  nativeRaggedAttention,
  type NativeSpecPCAggregateOptions,
  nativeSpecPCAggregate,
  type NativeTopKOptions,
  nativeTopK,
  type NativeWindowScoreOptions,
  nativeWindowScores,
} from './native-ops.js';
export { type KernelBenchmarkCase, type KernelBenchmarkOptions, type KernelBenchmarkResult, runKernelBenchmark } from './bench.js';
export {
  type RaggedBenchmarkCase,
  type RaggedBenchmarkOptions,
  type RaggedBenchmarkResult,
  runRaggedAttentionBenchmark,
} from './ragged-bench.js';
