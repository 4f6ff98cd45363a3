import { comparisonLine, headlineComparisons } from '@draft/bench';
import { InvalidArgumentError } from '@draft/core';
import { methodLabel } from '../method-options.js';
import { parseFlags } from '../options.js';
import { REMOTE_TARGET_OPTIONS, REMOTE_TARGET_USAGE } from '../remote-target.js';
import { type BenchFidelityFlags, runBenchFidelity } from './bench-fidelity.js';
import { type BenchPerfFlags, runBenchPerf } from './bench-perf.js';
import { type BenchIo, type BenchRulerFlags, runBenchRuler } from './bench-ruler.js';

export const BENCH_USAGE = `  draft bench ruler [--target DIR] [--draft DIR] [--methods a,b] [--budgets N,…|1/32,…] [--lengths N,…]
                    [--tasks a,b] [--samples N] [--seed N] [--window N] [--method-option M.NAME=V]...
                    [--max-new-tokens N] [--compare A:B,…] [--out DIR] [--json]
                    ${REMOTE_TARGET_USAGE}
  draft bench fidelity [--target DIR] [--draft DIR] [--methods a,b] [--budgets …] [--lengths N,…]
                    [--prompt-file PATH]... [--steps N] [--window N] [--method-option M.NAME=V]... [--out DIR] [--json]
  draft bench perf [--target DIR] [--draft DIR] [--methods a,b] [--budget N] [--lengths 1K,2K,…]
                    [--new-tokens N] [--repeats N] [--window N] [--method-option M.NAME=V]... [--no-transformers]
                    [--peers transformers.js,llama.cpp] [--gguf FILE]
                    [--out DIR] [--json]
  every bench also takes [--dtype D] [--draft-dtype D] [--threads N]`;

const common = {
  target: { type: 'string' },
  draft: { type: 'string' },
  dtype: { type: 'string' },
  'draft-dtype': { type: 'string' },
  methods: { type: 'string' },
  lengths: { type: 'string' },
  window: { type: 'string' },
  'method-option': { type: 'string', multiple: true },
  threads: { type: 'string' },
  out: { type: 'string' },
  json: { type: 'boolean' },
} as const;

/**
 * `draft bench ruler|fidelity|perf`: parses the flags, runs the benchmark (Ctrl-C aborts between steps;
 * finished runs stay on disk and are skipped next time), prints one JSON object with `--json`, else where
 * the results went. Exit code 1 when the fidelity self-check fails.
 */
export async function runBenchCommand(
  what: string | undefined,
  args: readonly string[],
  io: { stdout: (t: string) => void; stderr: (t: string) => void },
  tty: boolean,
): Promise<number> {
  const controller = new AbortController();
  const onSigint = () => controller.abort(new Error('interrupted'));
  process.once('SIGINT', onSigint);
  const benchIo: BenchIo = { stderr: io.stderr, tty, signal: controller.signal };
  try {
    switch (what) {
      case 'ruler': {
        const { values } = parseFlags({
          args: [...args],
          strict: true,
          options: {
            ...common,
            ...REMOTE_TARGET_OPTIONS,
            budgets: { type: 'string' },
            tasks: { type: 'string' },
            samples: { type: 'string' },
            seed: { type: 'string' },
            'max-new-tokens': { type: 'string' },
            compare: { type: 'string' },
          },
        });
        const report = await runBenchRuler(values as BenchRulerFlags, benchIo);
        if (values.json) io.stdout(`${JSON.stringify(report)}\n`);
        else {
          const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
          for (const s of report.summary) {
            const ci = s.interval ? ` (95% ${pct(s.interval.low)}–${pct(s.interval.high)})` : '';
            io.stdout(`${methodLabel(s.method, s.methodOptions).padEnd(14)} budget ${String(s.budget ?? '–').padStart(6)}  length ${String(s.length).padStart(6)}  accuracy ${pct(s.accuracy)}${ci}\n`);
          }
          for (const c of headlineComparisons(report.comparisons)) io.stdout(`${comparisonLine(c)}\n`);
          io.stdout(`results in ${values.out ?? 'bench-results/ruler'} (summary.md, accuracy-vs-budget.svg)\n`);
        }
        return 0;
      }
      case 'fidelity': {
        const { values } = parseFlags({
          args: [...args],
          strict: true,
          options: { ...common, budgets: { type: 'string' }, 'prompt-file': { type: 'string', multiple: true }, steps: { type: 'string' }, seed: { type: 'string' } },
        });
        const report = await runBenchFidelity(values as BenchFidelityFlags, benchIo);
        if (values.json) io.stdout(`${JSON.stringify(report)}\n`);
        else {
          for (const s of report.summary) {
            io.stdout(
              `${methodLabel(s.method, s.methodOptions).padEnd(14)} budget ${String(s.budgetSpec ?? '–').padStart(6)}  agreement ${s.agreementPrefix.toFixed(3)} (prefix) ${s.agreement.toFixed(3)} (all)  KL ${s.meanKl.toExponential(2)}  KV ${(100 * s.kvBytesRatio).toFixed(1)}%\n`,
            );
          }
          io.stdout(`self-check (budget ≥ prompt ⇒ agreement 1, KL 0): ${report.selfCheck.passed ? 'passed' : `FAILED\n  ${report.selfCheck.failures.join('\n  ')}`}\n`);
          io.stdout(`results in ${values.out ?? 'bench-results/fidelity'} (summary.md, kl-vs-budget.svg)\n`);
        }
        return report.selfCheck.passed ? 0 : 1;
      }
      case 'perf': {
        const { values } = parseFlags({
          args: [...args],
          strict: true,
          options: { ...common, budget: { type: 'string' }, 'new-tokens': { type: 'string' }, repeats: { type: 'string' }, 'no-transformers': { type: 'boolean' }, peers: { type: 'string' }, gguf: { type: 'string' } },
        });
        const flags: BenchPerfFlags = { ...values, transformers: !values['no-transformers'] };
        const report = await runBenchPerf(flags, benchIo);
        if (values.json) io.stdout(`${JSON.stringify(report)}\n`);
        else {
          for (const r of report.results) {
            io.stdout(
              r.skipped
                ? `${methodLabel(r.method, r.methodOptions).padEnd(16)} L${String(r.length).padEnd(6)} skipped: ${r.skipped}\n`
                : `${methodLabel(r.method, r.methodOptions).padEnd(16)} L${String(r.length).padEnd(6)} TTFT ${(r.ttftMs ?? 0).toFixed(0).padStart(6)} ms (${r.vsFull?.ttft.toFixed(2) ?? '–'}×)  ${(r.decodeTokensPerSecond ?? 0).toFixed(1).padStart(7)} tok/s (${r.vsFull?.decodeTokensPerSecond.toFixed(2) ?? '–'}×)  KV ${(r.kvBytes ?? 0) / 2 ** 20 < 0.1 ? `${r.kvBytes} B` : `${((r.kvBytes ?? 0) / 2 ** 20).toFixed(1)} MiB`}  draft ${(100 * (r.draftShare ?? 0)).toFixed(0)}%\n`,
            );
          }
          io.stdout(`results in ${values.out ?? 'bench-results/perf'} (summary.md, latency-vs-length.svg, memory-vs-length.svg)\n`);
        }
        return 0;
      }
      default:
        throw new InvalidArgumentError({ argument: 'bench', value: what, expected: "'kernels', 'ruler', 'fidelity' or 'perf'" });
    }
  } finally {
    process.off('SIGINT', onSigint);
  }
}
