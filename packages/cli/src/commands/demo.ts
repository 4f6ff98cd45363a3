import type { GenerationResultV1 } from '@draft/core';
import { loadModel } from '@draft/runtime';
import { scorePrediction } from '../bench/metrics.js';
import { generateSample } from '../bench/ruler-tasks.js';
import { readTaskFormat } from '../bench/task-format.js';
import { type MethodOptionMap, methodLabel, parseMethodOptions, withMethodOptions } from '../method-options.js';
import { planMethod } from '../methods.js';
import { resolveModelDir } from '../model-dirs.js';
import { runPlan } from './generate.js';

/** The demo's methods, in table order. */
const DEMO_METHODS = ['full', 'draft-only', 'speckv', 'snapkv', 'streamingllm', 'specpc'];

interface DemoRow {
  method: string;
  methodOptions?: MethodOptionMap;
  budget: string;
  result: GenerationResultV1;
  correct: boolean;
}

/**
 * `draft demo`: one long needle prompt through full KV, the draft alone, SpecKV, SnapKV, StreamingLLM and
 * SpecPC on the bundled pair, printing correctness, kept KV, memory, time and agreement with full KV.
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
  const kvBudget = 64;
  const pcBudget = 128;
  const budgets: Record<string, number | undefined> = { speckv: kvBudget, snapkv: kvBudget, streamingllm: kvBudget, specpc: pcBudget };
  // Plan everything first: a bad --method-option fails before the models load.
  const plans = DEMO_METHODS.map((method) =>
    planMethod(method, { budget: budgets[method], windowSize: method === 'specpc' ? 16 : 8, options: methodOptions[method] }),
  );
  const targetDir = resolveModelDir('target', options.target);
  const draftDir = resolveModelDir('draft', options.draft);
  const target = await loadModel(targetDir);
  const draft = await loadModel(draftDir);
  try {
    // A RULER multi-key needle in the pair's own task format (natural-language templates otherwise).
    const format = readTaskFormat(targetDir);
    const sample = generateSample({
      task: format ? 'niah_multikey_1' : 'niah_single_1',
      length: 1024,
      seed: 7,
      index: 0,
      tokenizer: target.tokenizer,
      format,
    });
    const prompt = sample.input;
    const n = target.tokenizer.encode(prompt).length;
    log(`target ${target.name} (${target.info.numLayers} layers, ${target.info.numHeads}/${target.info.numKvHeads} heads), draft ${draft.name} (${draft.info.numLayers} layers)`);
    log(`prompt: ${n} tokens, ${sample.task} (${format ? 'the pair\'s symbolic task format' : 'natural templates'}); expected answer ${JSON.stringify(sample.answers.join(' '))}`);
    log(`KV budget C=${kvBudget} per layer and KV head (${((100 * kvBudget) / n).toFixed(1)}% of the prompt), prompt budget ${pcBudget} tokens\n`);
    const generation = { maxNewTokens: sample.maxNewTokens, stopStrings: sample.stopStrings };
    const rows: DemoRow[] = [];
    for (const plan of plans) {
      const { method } = plan;
      const budget = budgets[method];
      const result = await runPlan(plan, { target, draft: plan.needsDraft ? draft : undefined }, prompt, {
        ...generation,
        maxNewTokens: options.maxNewTokens ?? generation.maxNewTokens,
      });
      const correct = scorePrediction(sample.metric, result.text, sample.answers) === 1;
      rows.push({ method, ...withMethodOptions(plan.methodOptions), budget: budget === undefined ? '-' : String(budget), result, correct });
    }
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
    log(`\nKV bytes are the target's cache after prefill; draft-only shows the draft's own. 'same tokens' counts the prefix equal to full KV.`);
    return rows;
  } finally {
    await Promise.all([target.dispose(), draft.dispose()]);
  }
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
