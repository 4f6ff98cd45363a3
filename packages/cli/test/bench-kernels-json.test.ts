import { beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, runBin } from './spawn-cli.js';

// Spawned, not run in-process: the second copy came from the benchmark's own console.log, which an in-process
// capture of the CLI's io never sees.
beforeAll(() => ensureBuilt(['core', 'cuda', 'cli']), 300_000);

describe('draft bench kernels', () => {
  it('--json prints exactly one JSON document on stdout, with one case per key length', () => {
    const run = runBin(['bench', 'kernels', '--json', '--key-lengths', '256,512']);
    expect(run.code).toBe(0);
    const result = JSON.parse(run.stdout); // throws on two concatenated documents
    expect(run.stdout.trim().split('\n')).toHaveLength(1);
    expect(result.cases.map((c: { keyLength: number }) => c.keyLength)).toEqual([256, 512]);
    expect(result.shape).toMatchObject({ numHeads: 14, numKvHeads: 2, headDim: 64 });
  }, 120_000);

  it('without --json prints the table once', () => {
    const run = runBin(['bench', 'kernels', '--key-lengths', '256']);
    expect(run.code).toBe(0);
    expect(run.stdout.match(/SpecKV layer selection/g)).toHaveLength(1);
    expect(run.stdout).toMatch(/^\s+256\s+\d/m);
    expect(() => JSON.parse(run.stdout)).toThrow();
  }, 120_000);

  it('--key-lengths takes integers ≥ 256 (the benchmark keeps 224 keys after a 97-query window)', () => {
    for (const value of ['-64', '128']) {
      const run = runBin(['bench', 'kernels', '--json', '--key-lengths', value]);
      expect(run.code).toBe(2);
      expect(JSON.parse(run.stderr.trim().split('\n').pop() as string).error.details).toEqual({ argument: '--key-lengths', value, expected: 'integers ≥ 256 (or 1K, 2K, …)' });
    }
  }, 120_000);
});
