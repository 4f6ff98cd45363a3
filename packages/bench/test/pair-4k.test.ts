import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadModel } from '@draft/runtime';
import { afterAll, describe, expect, it } from 'vitest';
import { runRuler } from '../src/index.js';

// The 4K pair (models/draft-4k, models/target-4k): the trained weights exported with RoPE base 40000 instead of
// 10000 (models/MODEL_CARD.md, "4K pair"). Checked against its own torch export (golden.json, an independent
// reference) and on 4080-token prompts, whose answers the generator knows by construction.
const models = fileURLToPath(new URL('../../../models', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'draft-pair-4k-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

interface GoldenCase {
  task: string;
  length: number;
  text: string;
  prefill_last_logits_first16: number[];
  greedy: number[];
}

describe('the 4K pair', () => {
  for (const name of ['target-4k', 'draft-4k']) {
    it(`${name}: config and ONNX graph carry the same RoPE base; logits and greedy ids match torch`, async () => {
      const dir = join(models, name);
      const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
      expect(config.rope_theta).toBe(40000);
      expect(config.draft_trained_rope_theta).toBe(10000);
      const golden = JSON.parse(readFileSync(join(dir, 'golden.json'), 'utf8')) as { tolerance: number; cases: GoldenCase[] };
      const model = await loadModel(dir, { threads: 1 });
      try {
        // the torch export ran with θ = 40000: logits agree only if the graph's rotation is that base
        for (const c of golden.cases.filter((x) => x.length === 1024).slice(0, 4)) {
          const ids = model.tokenizer.encode(c.text);
          expect(ids).toHaveLength(c.length);
          const pre = await model.forward({ inputIds: ids });
          const diff = Math.max(...c.prefill_last_logits_first16.map((v, i) => Math.abs(v - pre.logits[i])));
          expect(diff).toBeLessThanOrEqual(golden.tolerance);
          pre.cache.dispose();
          const result = await model.generate({ inputIds: ids }, { maxNewTokens: 8 });
          expect(result.tokens).toEqual(c.greedy.slice(0, result.tokens.length));
        }
      } finally {
        await model.dispose();
      }
    });
  }

  it('answers 4080-token needle and variable-tracking prompts with full KV and with SpecKV at C = 16', async () => {
    const report = await runRuler({
      target: join(models, 'target-4k'),
      draft: join(models, 'draft-4k'),
      methods: ['full', 'speckv'],
      budgets: [16],
      windowSize: 8,
      lengths: [4080],
      tasks: ['niah_single_2', 'vt'],
      samples: 3,
      threads: 1,
      methodOptions: { speckv: { kernelSize: 3 } },
      out: join(work, 'ruler'),
    });
    expect(report.results.filter((r) => r.skipped)).toEqual([]);
    const full = report.results.filter((r) => r.method === 'full');
    expect(full.map((r) => r.task)).toEqual(['niah_single_2', 'vt']);
    // every answer token appears in every prediction (the trained bases' full KV scores 62% / 20% here)
    for (const row of full) expect(row.accuracy).toBe(1);
    const speckv = report.results.find((r) => r.method === 'speckv' && r.task === 'niah_single_2')!;
    expect(speckv.accuracy).toBeGreaterThanOrEqual(2 / 3);
  });
});
