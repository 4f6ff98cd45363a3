// What a perf run writes for readers: summary.md and the two plots.
import { methodLabel } from '@draft/methods';
import { markdownTable } from './markdown.js';
import type { PerfRow } from './perf.js';
import { lineChart } from './svg.js';

/** summary.md of a perf run. */
export function perfMarkdown(rows: PerfRow[], info: { newTokens: number; budget: number; repeats: number; target: string }): string {
  const mib = (b: number | null) => (b === null ? '–' : (b / 2 ** 20).toFixed(1));
  const x = (v: number | undefined) => (v === undefined ? '–' : `${v.toFixed(2)}×`);
  const table = markdownTable(
    ['method', 'length', 'budget', 'TTFT ms', 'vs full', 'total ms', 'vs full', 'decode tok/s', 'vs full', 'draft share', 'KV MiB', 'vs full', 'peak KV MiB', 'peak RSS MiB'],
    rows.map((r) =>
      r.skipped
        ? [methodLabel(r.method, r.methodOptions), r.length, r.budget ?? '–', `skipped: ${r.skipped}`, '', '', '', '', '', '', '', '', '', '']
        : [
            methodLabel(r.method, r.methodOptions),
            r.length,
            r.budget ?? '–',
            (r.ttftMs ?? 0).toFixed(1),
            x(r.vsFull?.ttft),
            (r.totalMs ?? 0).toFixed(1),
            x(r.vsFull?.totalTime),
            (r.decodeTokensPerSecond ?? 0).toFixed(1),
            x(r.vsFull?.decodeTokensPerSecond),
            `${(100 * (r.draftShare ?? 0)).toFixed(1)}%`,
            mib(r.kvBytes),
            x(r.vsFull?.kvBytes),
            mib(r.peakKvBytes ?? null),
            mib(r.peakRssBytes),
          ],
    ),
  );
  return `# Performance\n\nTarget ${info.target}; budget C = ${info.budget}; ${info.newTokens} new tokens, greedy; median of ${info.repeats}; ratios are to full KV at the same length, measured in the same process run. Peak RSS is the whole process (sampled every 5 ms), so it also holds the models and earlier allocations; peak KV is the target worker's KV allocator peak during the run (prefill chunks, compressed caches, decode steps)${rows.some((r) => r.method.startsWith('llama.cpp')) ? '; llama.cpp rows (node-llama-cpp on a GGUF of the same weights, full KV: `llama.cpp` its default f16 cache, `llama.cpp-f32kv` f32) ran alone in a child process, so their peak RSS is their own. Peer decode tok/s = (tokens − 1) / (last − first token time)' : ''}.\n\n${table}\n`;
}

/** latency-vs-length.svg or memory-vs-length.svg of a perf run. */
export function perfChart(rows: PerfRow[], kind: 'latency' | 'memory'): string {
  const ok = rows.filter((r) => !r.skipped);
  const methods = [...new Set(ok.map((r) => r.method))];
  const series = (pick: (r: PerfRow) => number | null) =>
    methods.map((m) => ({ name: methodLabel(m, ok.find((r) => r.method === m)?.methodOptions), points: ok.filter((r) => r.method === m && pick(r) !== null).map((r) => [r.length, pick(r) as number] as [number, number]) }));
  if (kind === 'latency') {
    return lineChart({
      title: 'Latency vs context length',
      xLabel: 'context length (tokens, log scale)',
      yLabel: 'ms',
      xLog: true,
      panels: [
        { title: 'time to first token (ms)', series: series((r) => r.ttftMs) },
        { title: 'total time (ms)', series: series((r) => r.totalMs) },
      ],
    });
  }
  return lineChart({
    title: 'Memory vs context length',
    xLabel: 'context length (tokens, log scale)',
    yLabel: 'MiB',
    xLog: true,
    panels: [
      { title: 'kept KV after prefill (MiB)', series: series((r) => (r.kvBytes === null ? null : r.kvBytes / 2 ** 20)) },
      { title: 'peak process RSS (MiB)', series: series((r) => (r.peakRssBytes === null ? null : r.peakRssBytes / 2 ** 20)) },
    ],
  });
}
