import type { PipelineOptions } from '@draft/core';
import { inspectModel, type ModelInspection } from '@draft/runtime';
import { knownMethods, planMethod } from '../methods.js';

/**
 * `draft inspect DIR`: what a model folder is and which methods will run on it, without creating an ORT
 * session. The methods are the CLI's (`knownMethods()`, plugins included), each checked by core's
 * `createPipeline` with the stages `draft generate --method NAME` would use.
 */
export function runInspect(dir: string): ModelInspection {
  const methods: Record<string, Omit<PipelineOptions, 'target' | 'draft'>> = {};
  const unplannable: { method: string; reason: string }[] = [];
  for (const method of knownMethods()) {
    try {
      methods[method] = planMethod(method, {}).stages;
    } catch (error) {
      unplannable.push({ method, reason: error instanceof Error ? error.message : String(error) });
    }
  }
  const inspection = inspectModel(dir, { methods });
  for (const { method, reason } of unplannable) inspection.methods.push({ method, runs: false, reason, code: 'INVALID_ARGUMENT' });
  return inspection;
}

const yes = (b: boolean) => (b ? 'yes' : 'no');

function bytes(n: number): string {
  if (n >= 1 << 30) return `${(n / (1 << 30)).toFixed(2)} GiB`;
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(1)} KiB`;
  return `${n} B`;
}

function table(rows: string[][], indent: string): string[] {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) => `${indent}${r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]))).join('  ')}`.trimEnd());
}

function ropeText(x: ModelInspection): string {
  const r = x.architecture.rope;
  const parts = [`${r.type}, theta ${r.theta}, rotary dim ${r.rotaryDim}`];
  if (r.factor !== undefined) parts.push(`factor ${Number(r.factor.toFixed(6))}`);
  if (r.lowFreqFactor !== undefined) parts.push(`low/high freq factor ${r.lowFreqFactor}/${r.highFreqFactor}`);
  if (r.originalMaxPositions !== undefined) parts.push(`original max positions ${r.originalMaxPositions}`);
  if (r.attentionFactor !== undefined) parts.push(`attention factor ${r.attentionFactor}`);
  return parts.join(', ');
}

function styleText(l: ModelInspection['attention']['layers'][number]): string {
  switch (l.style) {
    case 'decomposed':
      return 'decomposed (MatMul → Softmax)';
    case 'gqa':
    case 'gqa-packed-qkv': {
      const positions =
        l.positionIds === 'none' ? 'rotary before the op' : l.positionIds === 'rewired' ? 'position_ids not wired: wired in at load' : 'position_ids wired';
      const notes = [l.style === 'gqa' ? 'separate Q/K/V' : 'packed QKV', positions];
      if (l.rotaryCache === 'initializer') notes.push('cos/sin cache');
      else if (l.rotaryCache === 'computed') notes.push('cos/sin not readable: runtime RoPE tables');
      if (l.localWindowSize !== undefined) notes.push(`local window ${l.localWindowSize}`);
      return `GroupQueryAttention (${notes.join(', ')})`;
    }
    case 'mha':
      return 'MultiHeadAttention (rotary before the op)';
    case 'attention':
      return 'Attention, ONNX opset 23 (rotary before the op)';
    default:
      return `${l.op} (unsupported)`;
  }
}

/** Human-readable report (the `--json` output is the `ModelInspection` object itself). */
export function formatInspection(x: ModelInspection): string {
  const a = x.architecture;
  const lines: string[] = [];
  const field = (name: string, value: string) => lines.push(`${name.padEnd(13)}${value}`);
  field('model', x.name);
  field('architecture', `${x.info.architecture}${a.known ? '' : ' (unknown model_type, read as Llama-compatible)'}${a.modelType !== x.info.architecture ? ` (model_type ${a.modelType})` : ''}`);
  field('layers', `${a.numLayers}, hidden ${a.hiddenSize}, heads ${a.numHeads} / KV heads ${a.numKvHeads}, head dim ${a.headDim}${a.qkNorm ? ', q/k norm' : ''}`);
  field('vocab', `${a.vocabSize}, max positions ${a.maxPositions}`);
  field('rope', ropeText(x));
  field('attention', `scale ${Number(a.attentionScale.toPrecision(6))}${a.attentionLogitSoftcapping ? `, logit softcap ${a.attentionLogitSoftcapping}` : ''}${a.finalLogitSoftcapping ? `, final logit softcap ${a.finalLogitSoftcapping}` : ''}`);
  field('sliding', a.slidingWindow === undefined ? 'none' : `window ${a.slidingWindow} on layers ${(x.info.slidingWindowLayers ?? [...Array(a.numLayers).keys()]).join(', ')}`);
  lines.push('files');
  lines.push(
    ...table(
      [
        ['path', 'dtype', 'size', 'external data', 'loaded'],
        ...x.files.map((f) => [f.path, f.dtype, bytes(f.bytes), f.externalData.length ? f.externalData.map((e) => `${e.path} (${bytes(e.bytes)})`).join(', ') : '-', f.loaded ? 'yes' : '']),
      ],
      '  ',
    ),
  );
  field('graph', `KV ${x.graph.kvDtype ?? '?'}, logits ${x.graph.logitsDtype ?? '?'}, opsets ${Object.entries(x.graph.opsets).map(([d, v]) => `${d} ${v}`).join(', ')}`);
  field('per layer', `attention pattern ${x.attention.pattern}`);
  lines.push(...table([['layer', 'style', 'node'], ...x.attention.layers.map((l) => [String(l.layer), styleText(l), l.node])], '  '));
  field('loads', x.loadable ? 'yes' : `no: ${x.loadError?.message}`);
  const c = x.capabilities;
  field(
    'capabilities',
    `query capture ${yes(c.queryCapture)}, all-query capture ${yes(c.allQueryCapture)}, explicit positions ${yes(c.positionIds)}, ` +
      `KV selection ${yes(c.kvSelection)}, ragged caches ${c.raggedKvHeads ? 'yes (raggedCache: true)' : 'no'}`,
  );
  lines.push('methods');
  lines.push(...table([['method', 'runs', 'why not'], ...x.methods.map((m) => [m.method, yes(m.runs), m.reason ?? ''])], '  '));
  for (const w of x.warnings) lines.push(`warning: ${w}`);
  return `${lines.join('\n')}\n`;
}
