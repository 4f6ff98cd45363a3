import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { heapTrimStats, trimNativeHeap } from '@draft/core';
import { describe, expect, it } from 'vitest';
import { createHeapTrimmer, nativeInfo, registerNativeBackend } from '../src/index.js';

const glibc = process.platform === 'linux' && Boolean((process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header?.glibcVersionRuntime);
const native = nativeInfo().native;
const pkgDir = join(dirname(fileURLToPath(import.meta.url)), '..');

// A child with --expose-gc frees ~125 MiB in 64 KiB holes between kept 1 KiB buffers: glibc cannot give
// those pages back by shrinking the heap's top, only malloc_trim returns them. RSS is read from /proc.
const CHILD = `
import { readFileSync } from 'node:fs';
import { createHeapTrimmer } from './dist/index.js';
const rss = () => Number(/VmRSS:\\s+(\\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]) * 1024;
const trimmer = createHeapTrimmer();
let holes = [];
const kept = [];
for (let i = 0; i < 2000; i++) { const b = new Uint8Array(new ArrayBuffer(64 * 1024)); b.fill(1); holes.push(b); kept.push(new Uint8Array(new ArrayBuffer(1024)).fill(2)); }
holes = null;
for (let i = 0; i < 4; i++) globalThis.gc();
const before = rss();
const result = trimmer.trim();
const after = rss();
console.log(JSON.stringify({ before, after, result, kept: kept.length }));
`;

describe.runIf(native && glibc)('native heap trimmer (glibc)', () => {
  it('registers with @draft/core and trims through trimNativeHeap()', () => {
    const registration = registerNativeBackend();
    try {
      expect(registration.heapTrimmer).toBe(true);
      expect(heapTrimStats().trimmer).toBe('native-malloc-trim');
      const before = heapTrimStats().trims;
      const result = trimNativeHeap();
      expect(typeof result.trimmed).toBe('boolean');
      expect(result.releasedBytes).toBeGreaterThanOrEqual(0);
      expect(heapTrimStats().trims).toBe(before + 1);
    } finally {
      registration.unregister();
    }
    expect(heapTrimStats().trimmer).toBeNull();
  });

  it('returns freed pages in the middle of the heap to the OS (RSS drops by most of the 125 MiB freed)', () => {
    expect(createHeapTrimmer()).not.toBeNull();
    const child = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', CHILD], { cwd: pkgDir, encoding: 'utf8' });
    expect(child.status, child.stderr).toBe(0);
    const out = JSON.parse(child.stdout.trim().split('\n').pop() as string) as { before: number; after: number; result: { trimmed: boolean; releasedBytes: number } };
    expect(out.result.trimmed).toBe(true);
    expect(out.before - out.after).toBeGreaterThan(80 * 2 ** 20);
    // The trimmer's own measurement agrees with /proc within a few MiB.
    expect(Math.abs(out.result.releasedBytes - (out.before - out.after))).toBeLessThan(8 * 2 ** 20);
  });

  it('can be left out of the registration', () => {
    const registration = registerNativeBackend({ heapTrimmer: false });
    try {
      expect(registration.heapTrimmer).toBe(false);
      expect(heapTrimStats().trimmer).toBeNull();
    } finally {
      registration.unregister();
    }
  });
});
