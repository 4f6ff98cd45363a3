import type { GenerationResultV1 } from '@draft/core';
import { loadModel } from '@draft/runtime';
import { planMethod } from '../methods.js';
import { resolveModelDir } from '../model-dirs.js';
import { runPlan } from './generate.js';

const FILLER = [
  'The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.',
  'A quiet river ran past the old mill, and the miller counted sacks of grain before the winter came.',
  'Merchants from the coast brought salt and copper; the market stayed open until the lamps were lit.',
];

/** A long document with one fact hidden in the middle, and a question about it. */
export function needlePrompt(words: number, seed = 7): { prompt: string; answer: string } {
  const answer = String(1000 + ((seed * 7919) % 9000));
  const parts: string[] = [];
  let count = 0;
  for (let i = 0; count < words; i++) {
    const sentence = FILLER[i % FILLER.length];
    parts.push(sentence);
    count += sentence.split(' ').length;
    if (i === 20) parts.push(`The special magic number for the lighthouse is ${answer}. Remember it.`);
  }
  return { prompt: `${parts.join(' ')}\nQuestion: What is the special magic number for the lighthouse?\nAnswer:`, answer };
}

interface DemoRow {
  method: string;
  budget: string;
  result: GenerationResultV1;
}

/**
 * `draft demo`: one long prompt through full KV, SpecKV, SnapKV, StreamingLLM and SpecPC on the bundled pair,
 * printing kept KV, memory, time and agreement with full KV side by side.
 */
export async function runDemo(options: { target?: string; draft?: string; maxNewTokens?: number; log?: (line: string) => void } = {}) {
  const log = options.log ?? ((line: string) => console.log(line));
  const targetDir = resolveModelDir('target', options.target);
  const draftDir = resolveModelDir('draft', options.draft);
  const target = await loadModel(targetDir);
  const draft = await loadModel(draftDir);
  try {
    const { prompt, answer } = needlePrompt(900);
    const n = target.tokenizer.encode(prompt).length;
    const kvBudget = 64;
    const pcBudget = 128;
    log(`target ${target.name} (${target.info.numLayers} layers, ${target.info.numHeads}/${target.info.numKvHeads} heads), draft ${draft.name}`);
    log(`prompt: ${n} tokens with a needle (answer ${answer}); KV budget C=${kvBudget} per layer and KV head, prompt budget ${pcBudget} tokens\n`);
    const generation = { maxNewTokens: 16 };
    const rows: DemoRow[] = [];
    const runs: [string, number | undefined][] = [
      ['full', undefined],
      ['speckv', kvBudget],
      ['snapkv', kvBudget],
      ['streamingllm', kvBudget],
      ['specpc', pcBudget],
    ];
    for (const [method, budget] of runs) {
      const plan = planMethod(method, { budget, windowSize: method === 'specpc' ? 16 : 8 });
      const result = await runPlan(plan, { target, draft: plan.needsDraft ? draft : undefined }, prompt, {
        ...generation,
        maxNewTokens: options.maxNewTokens ?? generation.maxNewTokens,
      });
      rows.push({ method, budget: budget === undefined ? '-' : String(budget), result });
    }
    const full = rows[0].result;
    const header = ['method', 'budget', 'target prompt', 'kept KV/head', 'KV bytes', 'TTFT ms', 'total ms', 'same tokens', 'answer'];
    const table = rows.map(({ method, budget, result }) => [
      method,
      budget,
      String(result.usage.compressedPromptTokens),
      String(result.usage.keptKvTokens[0]?.[0] ?? '-'),
      `${result.kvBytes.afterPrefill} (${((100 * result.kvBytes.afterPrefill) / full.kvBytes.afterPrefill).toFixed(0)}%)`,
      result.timings.ttftMs.toFixed(0),
      result.timings.totalMs.toFixed(0),
      `${agreement(full.tokens, result.tokens)}/${full.tokens.length}`,
      JSON.stringify(result.text.slice(0, 24)),
    ]);
    printTable(log, header, table);
    log('\nThe bundled pair has random weights until the trained pair lands: compare memory, time and agreement, not answers.');
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
