import { afterEach, describe, expect, it, vi } from 'vitest';
import { NativeUnavailableError } from '../spec/errors.js';
import type { KernelBackendV1 } from './kernel-backend.js';
import { referenceKernelBackend, topKPerRow } from './reference-backend.js';
import { getKernelBackend, globalKernelRegistry, KernelRegistry, registerKernelBackend, useKernelBackend } from './registry.js';

const fakeNative = (name = 'native'): KernelBackendV1 => ({ ...referenceKernelBackend, name, device: 'cpu' });

describe('KernelRegistry', () => {
  it('starts with the reference backend', () => {
    const r = new KernelRegistry();
    expect(r.get()).toBe(referenceKernelBackend);
    expect(r.list()).toEqual([{ name: 'reference', device: 'js', priority: 0, active: true }]);
  });

  it('picks the highest priority and lets a registration be undone', () => {
    const r = new KernelRegistry();
    const native = fakeNative();
    const undo = r.register(native, { priority: 100 });
    expect(r.get()).toBe(native);
    r.use('reference');
    expect(r.get()).toBe(referenceKernelBackend);
    r.use('auto');
    expect(r.get()).toBe(native);
    undo();
    expect(r.get()).toBe(referenceKernelBackend);
  });

  it("notices once when 'native' is preferred but missing, then uses it once it registers", () => {
    const warn = vi.fn();
    const r = new KernelRegistry();
    r.setLogger({ warn });
    r.use('native');
    expect(r.get()).toBe(referenceKernelBackend);
    expect(r.get()).toBe(referenceKernelBackend);
    expect(warn).toHaveBeenCalledTimes(1);
    expect(warn.mock.calls[0][0]).toMatch(/'native' was requested but is not registered.*@draft\/cuda.*Using 'reference'/);
    const native = fakeNative();
    r.register(native, { priority: -5 });
    expect(r.get()).toBe(native); // preference beats priority
    expect(warn).toHaveBeenCalledTimes(1);
  });

  it('throws NativeUnavailableError when a missing backend is required', () => {
    const r = new KernelRegistry();
    expect(() => r.use('native', { required: true })).toThrow(NativeUnavailableError);
  });

  it('takes an initial preference (the global one reads DRAFT_KERNEL_BACKEND)', () => {
    const warn = vi.fn();
    const r = new KernelRegistry({ preferred: 'native' });
    r.setLogger({ warn });
    r.get();
    expect(warn).toHaveBeenCalledOnce();
  });

  it('rejects malformed backends', () => {
    const r = new KernelRegistry();
    expect(() => r.register({ ...referenceKernelBackend, name: '' })).toThrow(/backend.name/);
    expect(() => r.register({ ...referenceKernelBackend, name: 'x', pool1d: undefined } as never)).toThrow(/backend.pool1d/);
  });
});

describe('global kernel registry', () => {
  afterEach(() => useKernelBackend('auto'));

  it('is shared through a Symbol.for key, so duplicated package copies see one registry', () => {
    const holder = globalThis as unknown as Record<symbol, unknown>;
    const registry = globalKernelRegistry();
    expect(holder[Symbol.for('@draft/core.kernelRegistry.v1')]).toBe(registry);
    const native = fakeNative('native-test');
    const undo = registerKernelBackend(native, { priority: 100 });
    try {
      expect(getKernelBackend()).toBe(native);
      useKernelBackend('reference');
      expect(getKernelBackend()).toBe(referenceKernelBackend);
    } finally {
      undo();
    }
    expect(getKernelBackend()).toBe(referenceKernelBackend);
  });
});

describe('reference topKPerRow', () => {
  it('selects per row with uniform or ragged k, ties to the lower position', () => {
    const scores = new Float32Array([5, 1, 5, 2, /* row 1 */ 0, 9, 9, 9]);
    expect(topKPerRow(scores, { rows: 2, length: 4, k: 2 }).map((r) => Array.from(r))).toEqual([[0, 2], [1, 2]]);
    expect(topKPerRow(scores, { rows: 2, length: 4, k: [1, 3] }).map((r) => Array.from(r))).toEqual([[0], [1, 2, 3]]);
    expect(() => topKPerRow(scores, { rows: 3, length: 4, k: 1 })).toThrow(/rows·length/);
    expect(() => topKPerRow(scores, { rows: 2, length: 4, k: [1] })).toThrow(/k.length/);
  });
});
