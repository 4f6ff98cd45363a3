import { afterEach, describe, expect, it } from 'vitest';
import { heapTrimStats, registerHeapTrimmer, trimNativeHeap } from '../index.js';

describe('heap trimmer registry', () => {
  const undo: Array<() => void> = [];
  afterEach(() => {
    for (const u of undo.splice(0)) u();
  });

  it('says why nothing was trimmed when no trimmer is registered', () => {
    const result = trimNativeHeap();
    expect(result.trimmed).toBe(false);
    expect(result.reason).toMatch(/no heap trimmer/);
  });

  it('calls the registered trimmer and totals what it released', () => {
    const before = heapTrimStats();
    let calls = 0;
    undo.push(registerHeapTrimmer({ name: 'fake', trim: () => ({ trimmed: true, releasedBytes: 1000 + calls++ }) }));
    expect(trimNativeHeap()).toEqual({ trimmed: true, releasedBytes: 1000 });
    expect(trimNativeHeap()).toEqual({ trimmed: true, releasedBytes: 1001 });
    const after = heapTrimStats();
    expect(after.trimmer).toBe('fake');
    expect(after.trims - before.trims).toBe(2);
    expect(after.releasedBytes - before.releasedBytes).toBe(2001);
  });

  it('turns a throwing trimmer into a reason, and unregistering removes it', () => {
    const off = registerHeapTrimmer({ name: 'broken', trim: () => { throw new Error('boom'); } });
    expect(trimNativeHeap()).toEqual({ trimmed: false, reason: "heap trimmer 'broken' failed: boom" });
    off();
    expect(heapTrimStats().trimmer).toBeNull();
  });

  it('rejects something that is not a trimmer', () => {
    expect(() => registerHeapTrimmer({ name: 'x' } as never)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', details: expect.objectContaining({ argument: 'trimmer.trim' }) }));
    expect(() => registerHeapTrimmer({ name: '', trim: () => ({ trimmed: false }) })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});
