import { getKernelBackend } from '@draft/core';

/** `draft kernels --json`: what native code this machine has and which backend is in use. */
export async function kernelsInfo(): Promise<{ native: boolean; cuda: { built: boolean; devices: number }; backend: string; reason?: string }> {
  try {
    const cuda = await import('@draft/cuda');
    cuda.registerNativeBackend();
    const info = cuda.nativeInfo();
    return { native: info.native, cuda: info.cuda, backend: getKernelBackend().name, ...(info.reason ? { reason: info.reason } : {}) };
  } catch (cause) {
    return { native: false, cuda: { built: false, devices: 0 }, backend: getKernelBackend().name, reason: String(cause) };
  }
}

/** `draft bench kernels`: TS reference vs native CPU (and CUDA) side by side. */
export async function benchKernels(options: { json: boolean; keyLengths?: number[] }): Promise<unknown> {
  const cuda = await import('@draft/cuda');
  return cuda.runKernelBenchmark({ json: options.json, keyLengths: options.keyLengths });
}
