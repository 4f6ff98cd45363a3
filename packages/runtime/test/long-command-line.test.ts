import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadModel } from '../src/index.js';
import { ortWorkerStackSizeMb } from '../src/worker-stack.js';
import { TINY_LLAMA } from './helpers.js';

const child = fileURLToPath(new URL('./fixtures/generate-child.mjs', import.meta.url));
// Linux refuses one argument of ≥ 128 KiB (MAX_ARG_STRLEN) with E2BIG: eight just below it make ~1 MiB.
const ARG_BYTES = 128 * 1024 - 1;
const PROMPT = 'The keeper of the lighthouse wrote a note about the tide.';

describe('a process with a ~1 MiB command line', () => {
  // onnxruntime 1.30 parses /proc/self/cmdline recursively when it creates its environment: before the fix, the
  // worker's 4 MB stack overflowed at ~15 KB (segfault, exit signal SIGSEGV).
  it('loads a model in the worker thread and generates what a short command line does', async () => {
    const model = await loadModel(TINY_LLAMA, { threads: 1 });
    let expected: number[];
    try {
      expected = (await model.generate(PROMPT, { maxNewTokens: 6 })).tokens;
    } finally {
      await model.dispose();
    }
    const filler = Array.from({ length: 8 }, (_, i) => String.fromCharCode(97 + i).repeat(ARG_BYTES));
    const run = spawnSync(process.execPath, [child, ...filler], {
      env: { ...process.env, DRAFT_TEST_MODEL: TINY_LLAMA, DRAFT_TEST_PROMPT: PROMPT },
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(run.error).toBeUndefined();
    expect(run.signal).toBeNull();
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(JSON.parse(run.stdout).tokens).toEqual(expected);
    expect(expected.length).toBeGreaterThan(0);
  }, 180_000);
});

describe('ortWorkerStackSizeMb', () => {
  it("keeps Node's default stack for short command lines and grows 512 bytes per byte beyond 8 KiB", () => {
    expect(ortWorkerStackSizeMb(200)).toBeUndefined();
    expect(ortWorkerStackSizeMb(8 * 1024)).toBeUndefined();
    // 4 MB base + ceil(bytes · 512 / 2^20): 16 KiB → 4 + 8; 1 MiB → 4 + 512.
    expect(ortWorkerStackSizeMb(16 * 1024)).toBe(12);
    expect(ortWorkerStackSizeMb(1024 * 1024)).toBe(516);
    expect(ortWorkerStackSizeMb(64 * 1024 * 1024)).toBe(1536);
  });
});
