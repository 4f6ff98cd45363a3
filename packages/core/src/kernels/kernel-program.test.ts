import { describe, expect, it } from 'vitest';
import { type KernelProgram, runAsync, runSync } from './kernel-program.js';

function* double(values: unknown[]): KernelProgram<number[]> {
  const out: number[] = [];
  for (const v of values) out.push(2 * ((yield v) as number));
  return out;
}

describe('kernel programs', () => {
  it('runSync feeds each yielded value back and rejects promises', () => {
    expect(runSync(double([1, 2]))).toEqual([2, 4]);
    expect(() => runSync(double([1, Promise.resolve(2)]))).toThrow(/synchronous selection/);
  });

  it('runAsync awaits each yield and honours the signal', async () => {
    expect(await runAsync(double([1, Promise.resolve(2)]))).toEqual([2, 4]);
    await expect(runAsync(double([1]), AbortSignal.abort())).rejects.toMatchObject({ code: 'ABORTED' });
  });
});
