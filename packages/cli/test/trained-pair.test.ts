import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli, runDemo } from '../src/index.js';

// CI smoke for the shipped trained pair (models/draft, models/target): its full-KV accuracy on RULER-style
// needles and on variable tracking must stay far above what a random model reaches. A needle's value is one of
// 96 value tokens and a vt answer is 5 of 96 key tokens in chain order, so guessing scores about 1%; the trained
// target scores ~95–100% on these tasks (models/MODEL_CARD.md).
const out = mkdtempSync(join(tmpdir(), 'draft-trained-pair-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('the bundled trained pair', () => {
  it('full KV answers RULER-style needles far above chance (the weights and the harness are real)', async () => {
    let stdout = '';
    const code = await runCli(
      ['bench', 'ruler', '--json', '--methods', 'full', '--tasks', 'niah_single_2,niah_multikey_1,vt', '--lengths', '512', '--samples', '6', '--out', out],
      { stdout: (t) => (stdout += t), stderr: () => {} },
    );
    expect(code).toBe(0);
    const { summary } = JSON.parse(stdout) as { summary: { method: string; accuracy: number }[] };
    const full = summary.find((row) => row.method === 'full');
    expect(full?.accuracy).toBeGreaterThanOrEqual(0.75);
  }, 120_000);

  it('the quick-start demo answers both of its prompts with full KV and prints the vt tally', async () => {
    const lines: string[] = [];
    const rows = await runDemo({ log: (line) => lines.push(line) });
    const full = rows.filter((row) => row.method === 'full');
    expect(full.map((row) => row.correct)).toEqual([true, true]);
    expect(rows.filter((row) => row.method === 'streamingllm').every((row) => row.result.usage.keptKvTokens[0][0] <= 64)).toBe(true);
    expect(lines.some((line) => /all answers right over 10 vt prompts .*full \d+\/10/.test(line))).toBe(true);
    // the footer explains SpecKV's TTFT on this pair and where to see the cut cache pay off
    expect(lines.some((line) => line.startsWith("SpecKV's TTFT includes the draft")) && lines.some((line) => line.includes('pnpm bench:methods'))).toBe(true);
  }, 120_000);
});
