import { type KernelBackendV1, NativeUnavailableError, registerDecodeEngine, registerHeapTrimmer, registerKernelBackend } from '@draft/core';
import { decodeEngineModule } from './decode-engine-path.js';
import { createHeapTrimmer } from './heap-trimmer.js';
import { loadBinding, type NativeDevice } from './binding.js';
import { nativeGatherRows, nativePool1d, nativeRaggedAttention, nativeTopK, nativeWindowScores } from './native-ops.js';

export interface NativeInfo {
  /** The addon is built and loaded (CPU kernels usable). */
  native: boolean;
  cuda: {
    /** The addon was compiled with the CUDA kernels. */
    built: boolean;
    /** Usable CUDA devices (0 without a driver or GPU). */
    devices: number;
  };
  /** Why `native` is false, or why CUDA is unusable. */
  reason?: string;
}

/** What this machine's @draft/cuda can do. Never throws. */
export function nativeInfo(): NativeInfo {
  const loaded = loadBinding();
  if (!loaded.binding) return { native: false, cuda: { built: false, devices: 0 }, reason: loaded.reason };
  const info = loaded.binding.info();
  const result: NativeInfo = { native: true, cuda: { built: info.cudaBuilt, devices: info.cudaDevices } };
  if (!info.cudaBuilt) result.reason = 'built without CUDA (no CUDA toolkit at build time)';
  else if (info.cudaDevices === 0) result.reason = 'built with CUDA, but no CUDA device is available';
  return result;
}

export interface NativeBackendOptions {
  /** 'cpu' (backend name 'native') or 'cuda' (backend name 'cuda'). */
  device?: NativeDevice;
  /** CPU threads (default: one per hardware thread). */
  numThreads?: number;
}

/**
 * A `KernelBackendV1` over the native kernels. Every method validates its inputs (InvalidArgumentError),
 * runs off the main thread and resolves to the same result as the TypeScript reference backend.
 * @throws NativeUnavailableError when the addon (or, for 'cuda', a device) is unavailable
 */
export function createNativeBackend(options: NativeBackendOptions = {}): KernelBackendV1 {
  const device = options.device ?? 'cpu';
  const info = nativeInfo();
  if (!info.native) throw new NativeUnavailableError(`@draft/cuda: ${info.reason}.`, { details: { reason: info.reason } });
  if (device === 'cuda' && info.cuda.devices === 0) {
    throw new NativeUnavailableError(`@draft/cuda: CUDA backend requested, but ${info.reason}.`, { details: { cuda: info.cuda } });
  }
  const call = { device, numThreads: options.numThreads };
  return Object.freeze({
    specificationVersion: 'v1' as const,
    name: device === 'cuda' ? 'cuda' : 'native',
    device,
    windowAttentionScores: (queries, keys, o) => nativeWindowScores(queries, keys, { ...o, ...call }),
    pool1d: (scores, o) => nativePool1d(scores, { ...o, ...call }),
    topKPerRow: (scores, o) => nativeTopK(scores, { ...o, ...call }),
    gatherRows: (tensor, shape, kept) => nativeGatherRows(tensor, shape, kept, call),
    raggedAttention: (queries, keys, values, o) => nativeRaggedAttention(queries, keys, values, { ...o, ...call }),
  } satisfies KernelBackendV1);
}

export interface RegisterNativeOptions {
  /** Priority of 'native' (CPU) in the registry; default 100 (above the reference backend's 0). */
  priority?: number;
  /**
   * Priority of 'cuda' when a device exists; default 90, so CUDA is opt-in (`useKernelBackend('cuda')` or
   * DRAFT_KERNEL_BACKEND=cuda): each call copies its inputs to the device, which only pays off for long inputs.
   */
  cudaPriority?: number;
  numThreads?: number;
  /** Throw NativeUnavailableError instead of returning `registered: []` when the addon is unavailable. */
  required?: boolean;
  /** Also register the addon's heap trimmer with @draft/core (`registerHeapTrimmer`); default true. */
  heapTrimmer?: boolean;
  /**
   * Also register the native decoder with @draft/core (`registerDecodeEngine`) so that runtimes can decode
   * with it (`loadModel(dir, { decodeEngine: 'native' })` in @draft/runtime); default true.
   */
  decodeEngine?: boolean;
}

export interface RegisterNativeResult {
  /** Backend names registered: [] | ['native'] | ['native', 'cuda']. */
  registered: string[];
  /** Whether the heap trimmer was registered (glibc builds of the addon). */
  heapTrimmer: boolean;
  /** Whether the native decode engine was registered. */
  decodeEngine: boolean;
  reason?: string;
  /** Removes what this call registered. */
  unregister(): void;
}

/**
 * Registers the native kernels in @draft/core's kernel-backend registry as 'native' (and 'cuda' when a device
 * exists). Safe to call more than once (a name re-registers). Without the addon it registers nothing and
 * says why (or throws with `required`). `import '@draft/cuda/register'` calls it with the defaults.
 */
export function registerNativeBackend(options: RegisterNativeOptions = {}): RegisterNativeResult {
  const info = nativeInfo();
  if (!info.native) {
    if (options.required) throw new NativeUnavailableError(`@draft/cuda: ${info.reason}.`, { details: { reason: info.reason } });
    return { registered: [], heapTrimmer: false, decodeEngine: false, reason: info.reason, unregister: () => {} };
  }
  const undo: Array<() => void> = [];
  const registered: string[] = [];
  undo.push(registerKernelBackend(createNativeBackend({ device: 'cpu', numThreads: options.numThreads }), { priority: options.priority ?? 100 }));
  registered.push('native');
  if (info.cuda.devices > 0) {
    undo.push(registerKernelBackend(createNativeBackend({ device: 'cuda' }), { priority: options.cudaPriority ?? 90 }));
    registered.push('cuda');
  }
  const trimmer = options.heapTrimmer === false ? null : createHeapTrimmer();
  if (trimmer) undo.push(registerHeapTrimmer(trimmer));
  const engine = options.decodeEngine === false ? null : decodeEngineModule();
  if (engine) undo.push(registerDecodeEngine({ name: 'native-cpu-decoder', module: engine }));
  return {
    registered,
    heapTrimmer: trimmer !== null,
    decodeEngine: engine !== null,
    reason: info.reason,
    unregister: () => {
      for (const u of undo) u();
    },
  };
}
