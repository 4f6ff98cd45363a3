import { DraftError, throwIfAborted } from '@draft/core';

/**
 * A selection algorithm is written once as a generator that yields every kernel call's result (a value or a
 * promise). `runSync` drives it with the synchronous TS reference kernels (the pure `select*` functions);
 * `runAsync` awaits each yield, so any registered kernel backend (native, possibly asynchronous) can serve it.
 */
export type KernelProgram<T> = Generator<unknown, T, unknown>;

export function runSync<T>(program: KernelProgram<T>): T {
  let step = program.next();
  while (!step.done) {
    if (step.value instanceof Promise) {
      throw new DraftError('INTERNAL', 'A synchronous selection received a promise from its kernel backend.');
    }
    step = program.next(step.value);
  }
  return step.value;
}

export async function runAsync<T>(program: KernelProgram<T>, signal?: AbortSignal): Promise<T> {
  let step = program.next();
  while (!step.done) {
    const value = await step.value;
    throwIfAborted(signal);
    step = program.next(value);
  }
  return step.value;
}
