import { type KernelsBenchReport, runKernelsBench } from '@draft/bench';
import { getKernelBackend } from '@draft/core';
import { KERNELS_BENCH_FLAGS, withFlagNames } from '../bench-flags.js';

let nativeTried = false;

/**
 * Makes @draft/core's kernel registry use @draft/cuda's native kernels when its addon is built; otherwise the
 * TS reference stays in use and one notice is printed (to stderr) the first time.
 */
export async function useNativeKernels(warn: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Promise<string> {
  if (!nativeTried) {
    nativeTried = true;
    try {
      const cuda = await import('@draft/cuda');
      const { registered, reason } = cuda.registerNativeBackend();
      if (registered.length === 0) warn(`draft: native kernels unavailable (${reason}); using the TypeScript reference kernels.`);
    } catch (cause) {
      warn(`draft: @draft/cuda could not load (${String(cause)}); using the TypeScript reference kernels.`);
    }
  }
  return getKernelBackend().name;
}

/** `draft kernels --json`: what native code this machine has and which backend is in use. */
export async function kernelsInfo(): Promise<{ native: boolean; cuda: { built: boolean; devices: number }; backend: string; reason?: string }> {
  try {
    const cuda = await import('@draft/cuda');
    await useNativeKernels(() => {});
    const info = cuda.nativeInfo();
    return { native: info.native, cuda: info.cuda, backend: getKernelBackend().name, ...(info.reason ? { reason: info.reason } : {}) };
  } catch (cause) {
    return { native: false, cuda: { built: false, devices: 0 }, backend: getKernelBackend().name, reason: String(cause) };
  }
}

/**
 * `draft bench kernels`: TS reference vs native CPU (and CUDA) side by side (`runKernelsBench` of @draft/bench).
 * The table goes to `log`; with `json` nothing is logged and the caller prints the returned result, once.
 */
export async function benchKernels(options: { json: boolean; keyLengths?: number[]; log: (line: string) => void }): Promise<KernelsBenchReport> {
  return withFlagNames(KERNELS_BENCH_FLAGS, () => runKernelsBench({ keyLengths: options.keyLengths, log: options.json ? undefined : options.log }));
}
