#!/usr/bin/env node
// Per-fact diagnostics of SpecKV vs SnapKV selection on RULER samples (issue 16): for each sample, which fact
// (needle / vt assignment) token positions each method kept per (layer, KV head), their rank under each
// method's pooled scores, what the draft's lookahead said, and whether the answer came out.
//   node packages/cli/scripts/diagnose-selection.mjs --length 2048 --task vt --samples 50 --budget 16 --window 8 --kernel 3 --out DIR
//   node packages/cli/scripts/diagnose-selection.mjs --from DIR/vt-L2048-C16.jsonl   (tables of a saved run, no models)
// Needs `pnpm -r build` (imports the built packages). Writes DIR/<task>-L<length>-C<budget>.jsonl and prints tables.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { SnapKVPolicy } from '@draft/baselines';
import { pooledCandidateScores, readWindowLayer, referenceKernelBackend, runSync, validateWindowInput } from '@draft/core';
import { loadModel } from '@draft/runtime';
import { DraftLookahead, SpecKVPolicy } from '@draft/speckv';
import { pathToFileURL } from 'node:url';

// The built CLI (DRAFT_CLI_ENTRY points elsewhere, e.g. a build next to a running benchmark's dist).
const cliEntry = process.env.DRAFT_CLI_ENTRY ? pathToFileURL(resolve(process.env.DRAFT_CLI_ENTRY)).href : new URL('../dist/index.js', import.meta.url).href;
const { cutPrediction, generateSample, planMethod, readTaskFormat, runPlan, scorePrediction } = await import(cliEntry);

const { values } = parseArgs({
  options: {
    target: { type: 'string', default: 'models/target' },
    draft: { type: 'string', default: 'models/draft' },
    length: { type: 'string', default: '2048' },
    task: { type: 'string', default: 'vt' },
    samples: { type: 'string', default: '50' },
    budget: { type: 'string', default: '16' },
    window: { type: 'string', default: '8' },
    kernel: { type: 'string', default: '3' },
    seed: { type: 'string', default: '0' },
    out: { type: 'string', default: 'bench-results/diagnose' },
    from: { type: 'string' },
  },
});
if (values.from) {
  const saved = readFileSync(values.from, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const s = saved[0].methods.speckv.settings;
  printTables(saved, { task: /([a-z_0-9]+)-L\d+/.exec(values.from)?.[1] ?? '?', length: saved[0].promptTokens, budget: s.budget, windowSize: s.windowSize, kernelSize: s.kernelSize });
  process.exit(0);
}
const length = Number(values.length);
const budget = Number(values.budget);
const windowSize = Number(values.window);
const kernelSize = Number(values.kernel);
const target = await loadModel(resolve(values.target));
const draft = await loadModel(resolve(values.draft));
const format = readTaskFormat(resolve(values.target));

// Capture: what the pipeline handed each policy and what it kept; the draft's lookahead tokens.
let capture = {};
const wrap = (proto, name) => {
  const original = proto.select;
  proto.select = async function (context) {
    const kept = await original.call(this, context);
    capture[name] = { context, kept, settings: { budget: context.budget, windowSize: this.windowSize, kernelSize: this.kernelSize, poolType: this.poolType, reduce: this.reduce ?? this.reduceOp } };
    capture[`${name}Scores`] = await scoresOf(context, capture[name].settings);
    if (name === 'speckv') {
      // The same SpecKV scoring without the lookahead queries (window W + 1 only): attributes a rank change to the lookahead.
      capture.speckvNoLookahead = await scoresOf(context, capture[name].settings, { dropLookahead: true });
      // And SpecKV with the lookahead but SnapKV's mean reduce: attributes it to the reduce op.
      capture.speckvMean = await scoresOf(context, { ...capture[name].settings, reduce: 'mean' });
    }
    return kept;
  };
};
wrap(SpecKVPolicy.prototype, 'speckv');
wrap(SnapKVPolicy.prototype, 'snapkv');
const lookahead = DraftLookahead.prototype.lookahead;
DraftLookahead.prototype.lookahead = async function (input) {
  const result = await lookahead.call(this, input);
  capture.lookahead = { tokenIds: Array.from(result.tokenIds), maxNewTokens: input.maxNewTokens };
  return result;
};

/** Pooled candidate scores per layer: (numKvHeads, m) as arrays. */
async function scoresOf(context, settings, options = {}) {
  const out = [];
  for (let layer = 0; layer < context.numLayers; layer++) {
    let input = await readWindowLayer(context, layer, settings);
    if (options.dropLookahead && context.lookaheadLength > 0) {
      const { numHeads, numKvHeads, headDim: d, promptLength: n, lookaheadLength: L } = context;
      const w = settings.windowSize + 1;
      const q = input.queries[0];
      const k = input.keys[0];
      const qs = new Float32Array(numHeads * w * d);
      for (let h = 0; h < numHeads; h++) qs.set(q.subarray(h * (w + L) * d, h * (w + L) * d + w * d), h * w * d);
      const ks = new Float32Array(numKvHeads * n * d);
      for (let h = 0; h < numKvHeads; h++) ks.set(k.subarray(h * (n + L) * d, h * (n + L) * d + n * d), h * n * d);
      input = validateWindowInput({ ...input, queries: [qs], keys: [ks], lookaheadLength: 0 });
    }
    const pooled = runSync(pooledCandidateScores(input, input.queries[0], input.keys[0], referenceKernelBackend));
    const m = input.candidates;
    out.push(Array.from({ length: context.numKvHeads }, (_, h) => pooled.subarray(h * m, (h + 1) * m)));
  }
  return out;
}

/** 1-based rank of position p among the candidate scores of a row (ties: lower position first, as top-k). */
function rank(row, p) {
  if (p >= row.length) return null; // in the kept window
  let r = 1;
  for (let i = 0; i < row.length; i++) if (row[i] > row[p] || (row[i] === row[p] && i < p)) r++;
  return r;
}

const methods = {
  speckv: planMethod('speckv', { budget, windowSize, options: { kernelSize } }),
  snapkv: planMethod('snapkv', { budget, windowSize, options: { kernelSize } }),
};
mkdirSync(resolve(values.out), { recursive: true });
const lines = [];
for (let index = 0; index < Number(values.samples); index++) {
  const sample = generateSample({ task: values.task, length, seed: Number(values.seed), index, tokenizer: target.tokenizer, format });
  const ids = target.tokenizer.encode(sample.input);
  // Fact token positions: symbolic prompts have no prefix, so a fact starts at its haystack token offset.
  const facts = sample.insertions.map((ins) => {
    const n = target.tokenizer.encode(ins.text).length;
    const positions = Array.from({ length: n }, (_, i) => ins.tokenOffset + i);
    const ok = target.tokenizer.decode(positions.map((p) => ids[p]), { skipSpecialTokens: true }).trim() === ins.text;
    return { text: ins.text, positions, located: ok };
  });
  const row = { index, seed: sample.seed, promptTokens: ids.length, expected: sample.expectedOutput, facts, methods: {} };
  for (const [name, plan] of Object.entries(methods)) {
    capture = {};
    const r = await runPlan(plan, { target, draft }, sample.input, { maxNewTokens: sample.maxNewTokens, stopStrings: sample.stopStrings, temperature: 0 });
    const prediction = cutPrediction(r.text, sample.stopStrings);
    const score = scorePrediction(sample.metric, prediction, sample.answers, { tokens: true });
    const c = capture[name];
    const scores = capture[`${name}Scores`];
    const perFact = facts.map((f) => ({
      text: f.text,
      // per layer, per KV head: kept (1/0) per fact token, and its rank under this method's scores
      kept: c.kept.map((layer) => layer.map((head) => f.positions.map((p) => (head.includes(p) ? 1 : 0)))),
      rank: scores.map((layer) => layer.map((head) => f.positions.map((p) => rank(head, p)))),
      ...(name === 'speckv'
        ? {
            rankNoLookahead: capture.speckvNoLookahead.map((layer) => layer.map((head) => f.positions.map((p) => rank(head, p)))),
            rankMeanReduce: capture.speckvMean.map((layer) => layer.map((head) => f.positions.map((p) => rank(head, p)))),
          }
        : {}),
    }));
    const m = { prediction, score, promptLength: c.context.promptLength, lookaheadLength: c.context.lookaheadLength, queryCount: c.context.queryCount, settings: c.settings, facts: perFact };
    if (name === 'speckv') {
      const text = target.tokenizer.decode(capture.lookahead.tokenIds, { skipSpecialTokens: false });
      m.lookahead = {
        tokenIds: capture.lookahead.tokenIds,
        text,
        maxNewTokens: capture.lookahead.maxNewTokens,
        draftScore: scorePrediction(sample.metric, cutPrediction(text, sample.stopStrings), sample.answers, { tokens: true }),
        draftExact: cutPrediction(text, sample.stopStrings).trim() === sample.answers.join(' '),
      };
    }
    row.methods[name] = m;
  }
  lines.push(row);
  process.stderr.write(`${values.task} L${length} #${index}: speckv ${row.methods.speckv.score.toFixed(2)} snapkv ${row.methods.snapkv.score.toFixed(2)} draft ${row.methods.speckv.lookahead.draftScore.toFixed(2)}\n`);
}
const file = join(resolve(values.out), `${values.task}-L${length}-C${budget}.jsonl`);
writeFileSync(file, `${lines.map((l) => JSON.stringify(l)).join('\n')}\n`);

printTables(lines, { task: values.task, length, budget, windowSize, kernelSize });
await target.dispose();
await draft.dispose();

function printTables(lines, { task, length, budget, windowSize, kernelSize }) {
const mean = (xs) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : Number.NaN);
const f1 = (x) => (Number.isNaN(x) ? '–' : x.toFixed(1));
const f2 = (x) => (Number.isNaN(x) ? '–' : x.toFixed(2));
const numLayers = lines[0].methods.speckv.facts[0].kept.length;
const numKvHeads = lines[0].methods.speckv.facts[0].kept[0].length;
console.log(`\n${task} L${length} C=${budget} W=${windowSize} k=${kernelSize}, ${lines.length} samples; facts located in the prompt: ${lines.every((l) => l.facts.every((f) => f.located))}`);
console.log(`accuracy: speckv ${f1(100 * mean(lines.map((l) => l.methods.speckv.score)))}  snapkv ${f1(100 * mean(lines.map((l) => l.methods.snapkv.score)))}  draft's lookahead text ${f1(100 * mean(lines.map((l) => l.methods.speckv.lookahead.draftScore)))} (exact ${f1(100 * mean(lines.map((l) => (l.methods.speckv.lookahead.draftExact ? 1 : 0))))}%)`);
const L = lines.map((l) => l.methods.speckv.lookaheadLength);
console.log(`lookahead L: ${Math.min(...L)}–${Math.max(...L)} tokens; query count (W + 1 + L): ${[...new Set(lines.map((l) => l.methods.speckv.queryCount))].join(', ')}; snapkv query count ${[...new Set(lines.map((l) => l.methods.snapkv.queryCount))].join(', ')}`);
console.log('\nfact tokens kept, % (mean over samples, facts, tokens), per layer × KV head:');
console.log(`| method | ${Array.from({ length: numLayers }, (_, l) => Array.from({ length: numKvHeads }, (_, h) => `L${l}H${h}`)).flat().join(' | ')} | all |`);
console.log(`| --- | ${Array.from({ length: numLayers * numKvHeads + 1 }, () => '---').join(' | ')} |`);
for (const name of ['speckv', 'snapkv']) {
  const cells = [];
  const all = [];
  for (let l = 0; l < numLayers; l++) {
    for (let h = 0; h < numKvHeads; h++) {
      const xs = lines.flatMap((row) => row.methods[name].facts.flatMap((f) => f.kept[l][h]));
      all.push(...xs);
      cells.push(f1(100 * mean(xs)));
    }
  }
  console.log(`| ${name} | ${cells.join(' | ')} | ${f1(100 * mean(all))} |`);
}
// Ranks: median rank of fact tokens (out of the window) under each scoring, split by outcome.
const median = (xs) => {
  const s = xs.filter((x) => x !== null).sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : Number.NaN;
};
const within = (xs, k) => mean(xs.filter((x) => x !== null).map((x) => (x <= k ? 1 : 0)));
const groups = [
  ['all samples', () => true],
  ['snapkv right, speckv wrong (score gap > 0)', (l) => l.methods.snapkv.score > l.methods.speckv.score],
  ['speckv right, snapkv wrong (score gap > 0)', (l) => l.methods.speckv.score > l.methods.snapkv.score],
];
console.log(`\nfact-token ranks among ${lines[0].promptTokens - windowSize - 1} candidates (top C − W = ${budget - windowSize} are kept): median rank / share ranked in the top ${budget - windowSize}`);
console.log('| samples | n | speckv (window + lookahead, max) | speckv without lookahead (window, max) | speckv with mean reduce | snapkv (window, mean) |');
console.log('| --- | --- | --- | --- | --- | --- |');
for (const [label, keep] of groups) {
  const rows = lines.filter(keep);
  const ranks = (get) => rows.flatMap((row) => get(row).flatMap((f) => f.flat(2)));
  const cells = [
    ranks((r) => r.methods.speckv.facts.map((f) => f.rank)),
    ranks((r) => r.methods.speckv.facts.map((f) => f.rankNoLookahead)),
    ranks((r) => r.methods.speckv.facts.map((f) => f.rankMeanReduce)),
    ranks((r) => r.methods.snapkv.facts.map((f) => f.rank)),
  ].map((xs) => `${median(xs)} / ${f1(100 * within(xs, budget - windowSize))}%`);
  console.log(`| ${label} | ${rows.length} | ${cells.join(' | ')} |`);
}
// Per-sample: answer produced vs fact tokens kept (any head of the last layer), a compact view.
console.log('\nper sample: score speckv / snapkv, draft lookahead correct, fact tokens kept (all layers × heads) speckv / snapkv');
for (const row of lines.slice(0, 12)) {
  const kept = (name) => mean(row.methods[name].facts.flatMap((f) => f.kept.flat(2)));
  console.log(`#${row.index}: ${f2(row.methods.speckv.score)} / ${f2(row.methods.snapkv.score)}  draft ${row.methods.speckv.lookahead.draftExact ? 'exact' : `"${row.methods.speckv.lookahead.text.trim()}" vs "${row.expected}"`}  kept ${f1(100 * kept('speckv'))}% / ${f1(100 * kept('snapkv'))}%`);
}
// Per fact (haystack order; vt: chain order): share of (layer, head, token) cells kept, and how often the fact's
// answer token appears in the prediction (answers are in fact order for vt and multivalue).
const numFacts = lines[0].facts.length;
console.log('\nper fact: kept % of (layer, KV head, token) cells / its answer token produced %');
console.log(`| method | ${Array.from({ length: numFacts }, (_, i) => `fact ${i}`).join(' | ')} |`);
console.log(`| --- | ${Array.from({ length: numFacts }, () => '---').join(' | ')} |`);
for (const name of ['speckv', 'snapkv']) {
  const cells = Array.from({ length: numFacts }, (_, i) => {
    const kept = lines.flatMap((row) => row.methods[name].facts[i].kept.flat(2));
    const produced = lines.map((row) => {
      const answer = row.expected.split(' ').filter((w) => w && w !== '</s>')[i];
      return answer !== undefined && row.methods[name].prediction.split(/\s+/).includes(answer) ? 1 : 0;
    });
    return `${f1(100 * mean(kept))} / ${f1(100 * mean(produced))}`;
  });
  console.log(`| ${name} | ${cells.join(' | ')} |`);
}
// Where the lookahead window ranks a fact token below SnapKV's window, per (layer, KV head).
const below = [];
for (let l = 0; l < numLayers; l++) {
  for (let h = 0; h < numKvHeads; h++) {
    const pairs = lines.flatMap((row) => row.methods.speckv.facts.flatMap((f, i) => f.rank[l][h].map((r, t) => [r, row.methods.snapkv.facts[i].rank[l][h][t]])));
    const valid = pairs.filter(([a, b]) => a !== null && b !== null);
    below.push(`L${l}H${h} ${f1(100 * mean(valid.map(([a, b]) => (a > b ? 1 : 0))))}%`);
  }
}
console.log(`\nshare of fact tokens SpecKV's window + lookahead ranks below SnapKV's window: ${below.join(', ')}`);
const exact = lines.filter((row) => row.methods.speckv.lookahead.draftExact);
console.log(`samples with an exact draft answer: ${exact.length}; on them speckv ${f1(100 * mean(exact.map((r) => r.methods.speckv.score)))}, snapkv ${f1(100 * mean(exact.map((r) => r.methods.snapkv.score)))}`);
}
