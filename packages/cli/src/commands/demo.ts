import { generateSample, readTaskFormat, runPlan, scorePrediction } from '@draft/bench';
import type { GenerationResultV1 } from '@draft/core';
import { loadModel } from '@draft/runtime';
import { type MethodOptionMap, methodLabel, parseMethodOptions, withMethodOptions } from '../method-options.js';
import { type MethodPlan, planMethod } from '../methods.js';
import { resolveModelDir } from '../model-dirs.js';

/** The demo's methods, in table order. */
const DEMO_METHODS = ['full', 'draft-only', 'speckv', 'snapkv', 'streamingllm', 'specpc'];

interface DemoRow {
  method: string;
  methodOptions?: MethodOptionMap;
  budget: string;
  result: GenerationResultV1;
  correct: boolean;
}

/** One demo prompt: a RULER task in the pair's format, its KV budget and how many extra samples to tally. */
interface DemoCase {
  task: string;
  kvBudget: number;
  /** Pooling kernel of the KV methods: 3 at C = 32 (a fact is 2 tokens; the default 7 is sized for C ≥ 256). */
  kvKernel?: number;
  /** SpecPC scaled to the pair like the README results (W = k = N = 8; the defaults 64 are sized for C ≥ 1024). */
  scaledSpecPC?: boolean;
  /** Further samples (seeds after the shown one) whose correct answers are counted per method. */
  tally: number;
  why: string;
}

/**
 * `draft demo`: long prompts through full KV, the draft alone, SpecKV, SnapKV, StreamingLLM and SpecPC on the
 * bundled pair, printing correctness, kept KV, memory, time and agreement with full KV. Two cases: a multi-key
 * needle (the question points at it) and a variable-tracking chain (only the answer points at the later hops).
 */
export async function runDemo(
  options: {
    target?: string;
    draft?: string;
    maxNewTokens?: number;
    /** `--method-option` texts (`specpc.kernelSize=8`) for the demo's methods. */
    methodOptions?: readonly string[];
    log?: (line: string) => void;
  } = {},
) {
  const log = options.log ?? ((line: string) => console.log(line));
  const methodOptions = parseMethodOptions(options.methodOptions, DEMO_METHODS);
  const pcBudget = 128;
  const planFor = (c: DemoCase) =>
    DEMO_METHODS.map((method) => {
      const budget = method === 'specpc' ? pcBudget : method === 'full' || method === 'draft-only' ? undefined : c.kvBudget;
      const pooled: MethodOptionMap = c.kvKernel !== undefined && (method === 'speckv' || method === 'snapkv') ? { kernelSize: c.kvKernel } : {};
      const scaled: MethodOptionMap = c.scaledSpecPC && method === 'specpc' ? { kernelSize: 8, neighbourTokens: 8 } : {};
      const merged = { ...pooled, ...scaled, ...methodOptions[method] };
      const windowSize = method === 'specpc' && !c.scaledSpecPC ? 16 : 8;
      const plan = planMethod(method, { budget, windowSize, options: Object.keys(merged).length > 0 ? merged : undefined });
      return { plan, budget };
    });
  const targetDir = resolveModelDir('target', options.target);
  const draftDir = resolveModelDir('draft', options.draft);
  const format = readTaskFormat(targetDir);
  const cases: DemoCase[] = format
    ? [
        { task: 'niah_multikey_1', kvBudget: 64, scaledSpecPC: true, tally: 0, why: 'a needle among distractors: the question names the key' },
        { task: 'vt', kvBudget: 32, kvKernel: 3, scaledSpecPC: true, tally: 9, why: 'a chain value → x1 → … → x5: the question names only the value, the answer names every hop' },
      ]
    : [{ task: 'niah_single_1', kvBudget: 64, tally: 0, why: 'a needle in an essay' }];
  // Plan everything first: a bad --method-option fails before the models load.
  const plans = cases.map(planFor);
  const target = await loadModel(targetDir);
  const draft = await loadModel(draftDir);
  const rows: DemoRow[] = [];
  try {
    log(`target ${target.name} (${target.info.numLayers} layers, ${target.info.numHeads}/${target.info.numKvHeads} heads), draft ${draft.name} (${draft.info.numLayers} layers)`);
    for (const [ci, c] of cases.entries()) {
      const sampleAt = (seed: number) => generateSample({ task: c.task, length: 1024, seed, index: 0, tokenizer: target.tokenizer, format });
      const sample = sampleAt(7);
      const n = target.tokenizer.encode(sample.input).length;
      log(`\n[${ci + 1}/${cases.length}] ${sample.task}: ${c.why}`);
      log(`prompt: ${n} tokens (${format ? "the pair's symbolic task format" : 'natural templates'}); expected answer ${JSON.stringify(sample.answers.join(' '))}`);
      log(`KV budget C=${c.kvBudget} per layer and KV head (${((100 * c.kvBudget) / n).toFixed(1)}% of the prompt${c.kvKernel ? `, pooling kernel ${c.kvKernel}` : ''}), prompt budget ${pcBudget} tokens\n`);
      const run = async (plan: MethodPlan, s: typeof sample) => {
        const result = await runPlan(plan, { target, draft: plan.needsDraft ? draft : undefined }, s.input, {
          maxNewTokens: options.maxNewTokens ?? s.maxNewTokens,
          stopStrings: s.stopStrings,
        });
        return { result, correct: scorePrediction(s.metric, result.text, s.answers) === 1 };
      };
      const caseRows: DemoRow[] = [];
      for (const { plan, budget } of plans[ci]) {
        const { result, correct } = await run(plan, sample);
        caseRows.push({ method: plan.method, ...withMethodOptions(plan.methodOptions), budget: budget === undefined ? '-' : String(budget), result, correct });
      }
      printRows(log, caseRows);
      if (c.tally > 0) {
        const extra = Array.from({ length: c.tally }, (_, i) => sampleAt(8 + i));
        const counts: string[] = [];
        for (const [mi, { plan }] of plans[ci].entries()) {
          let right = caseRows[mi].correct ? 1 : 0;
          for (const s of extra) if ((await run(plan, s)).correct) right++;
          counts.push(`${plan.method} ${right}/${c.tally + 1}`);
        }
        log(`\nall answers right over ${c.tally + 1} ${c.task} prompts (seeds 7–${7 + c.tally}): ${counts.join(', ')}`);
      }
      rows.push(...caseRows);
    }
    log(`\nKV bytes are the target's cache after prefill; draft-only shows the draft's own. 'same tokens' counts the prefix equal to full KV.`);
    log("SpecKV's TTFT includes the draft writing an answer and the target prefilling it as lookahead: on this tiny 1K-token pair that costs more than the cut cache saves.");
    log('For where the cut cache pays off (faster decode, less KV memory at 2K–8K tokens on a perf-shaped model), run pnpm bench:methods.');
    return rows;
  } finally {
    await Promise.all([target.dispose(), draft.dispose()]);
  }
}

function printRows(log: (line: string) => void, rows: DemoRow[]): void {
  const full = rows[0].result;
  const header = ['method', 'budget', 'target prompt', 'kept KV/head', 'KV bytes', 'TTFT ms', 'total ms', 'same tokens', 'correct', 'answer'];
  const table = rows.map(({ method, methodOptions, budget, result, correct }) => [
    methodLabel(method, methodOptions),
    budget,
    String(result.usage.compressedPromptTokens),
    String(result.usage.keptKvTokens[0]?.[0] ?? '-'),
    `${result.kvBytes.afterPrefill} (${((100 * result.kvBytes.afterPrefill) / full.kvBytes.afterPrefill).toFixed(0)}%)`,
    result.timings.ttftMs.toFixed(0),
    result.timings.totalMs.toFixed(0),
    `${agreement(full.tokens, result.tokens)}/${full.tokens.length}`,
    correct ? 'yes' : 'no',
    JSON.stringify(result.text.slice(0, 32)),
  ]);
  printTable(log, header, table);
}

function agreement(a: readonly number[], b: readonly number[]): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

function printTable(log: (line: string) => void, header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join('  ');
  log(line(header));
  log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) log(line(r));
}
