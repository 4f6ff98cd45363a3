import { DraftError, throwIfAborted } from '../spec/errors.js';

/**
 * A selection algorithm written once as a generator that yields every kernel call's result (a value or a
 * promise) and receives it back. `runSync` drives it with the synchronous TS reference kernels (the pure
 * `select*` functions); `runAsync` awaits each yield, so any registered kernel backend (native, possibly
 * asynchronous) can serve it.
 */
export type KernelProgram<T> = Generator<unknown, T, unknown>;

/** Runs a `KernelProgram` whose kernel calls all return values; a yielded promise is an `INTERNAL` error. */
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

/** Runs a `KernelProgram`, awaiting each kernel call and checking `signal` between calls. */
export async function runAsync<T>(program: KernelProgram<T>, signal?: AbortSignal): Promise<T> {
  let step = program.next();
  while (!step.done) {
    const value = await step.value;
    throwIfAborted(signal);
    step = program.next(value);
  }
  return step.value;
}
