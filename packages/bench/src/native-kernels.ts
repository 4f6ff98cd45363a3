/**
 * The native kernels of `@draft/cuda` for this process, when its addon loads — what the CLI does for its own
 * commands. Engine children (`runEngineInChild`) are fresh processes, so they register here; without it their
 * selection ran on the TypeScript reference kernels (SpecKV's selection at 8K: 10 s instead of 0.5 s).
 */
import { getKernelBackend } from '@draft/core';

let tried = false;

/** Registers the native backend once if it can; returns the name of the kernel backend now in use. */
export async function useNativeKernelsIfBuilt(): Promise<string> {
  if (!tried) {
    tried = true;
    try {
      const cuda = await import('@draft/cuda');
      cuda.registerNativeBackend();
    } catch {
      // No addon on this machine: the reference kernels stay (the engine's info says which ran).
    }
  }
  return getKernelBackend().name;
}
