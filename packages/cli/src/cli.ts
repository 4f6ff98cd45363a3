import { KERNEL_BENCH_MIN_KEYS } from '@draft/bench';
import { DraftError, InvalidArgumentError, listPolicies } from '@draft/core';
import { BENCH_CACHE_USAGE, formatBenchCache, runBenchCache } from './commands/bench-cache.js';
import { BENCH_USAGE, runBenchCommand } from './commands/bench-command.js';
import { CACHE_USAGE, formatCacheSummary, runCacheBuild, runCacheInfo } from './commands/cache.js';
import { runDemo } from './commands/demo.js';
import { runGenerate, toJson } from './commands/generate.js';
import { formatInspection, runInspect } from './commands/inspect.js';
import { benchKernels, kernelsInfo, useNativeKernels } from './commands/kernels.js';
import { runServe } from './commands/serve.js';
import { knownMethods } from './methods.js';
import { loadPlugins } from './plugins.js';
import { parseFlags, parseIntList } from './options.js';
import { REMOTE_TARGET_OPTIONS } from './remote-target.js';

export const USAGE = `draft — draft-based approximate inference for long-context LLMs

Usage:
  draft generate [--target DIR] [--draft DIR] [--dtype D] [--draft-dtype D] [--decode-engine ort|native] [--prefill-engine ort|native] [--kv-storage float32|float16]
                 [--method NAME] [--budget N] [--window N]
                 [--method-option METHOD.NAME=VALUE]... [--max-new-tokens N] [--temperature T]
                 [--top-k K] [--top-p P] [--seed N] (--prompt TEXT | --prompt-file PATH [--max-prompt-bytes N])
                 [--plugin MODULE]... [--json] [--cache FILE]
                 [--target-url URL [--target-model NAME] [--api-key-env VAR] [--target-endpoint chat|completions]
                  [--target-retries N] [--target-timeout MS]]
  draft demo [--target DIR] [--draft DIR] [--method-option METHOD.NAME=VALUE]...
  draft methods [--plugin MODULE]... [--json]
  draft inspect DIR [--plugin MODULE]... [--json]
  draft kernels [--json]
  draft bench kernels [--key-lengths N,N,...] [--json]
${BENCH_USAGE}
${BENCH_CACHE_USAGE}
${CACHE_USAGE}
  draft serve [--host 127.0.0.1] [--port N] [--target DIR] [--draft DIR] [--dtype D] [--draft-dtype D]
              [--decode-engine ort|native] [--prefill-engine ort|native] [--kv-storage float32|float16] [--draft-release-idle S] [--max-concurrent N] [--max-queue N]
              [--max-connections N] [--body-timeout S] [--shutdown-timeout S] [--api-key KEY]
              [--cors ORIGIN]... [--plugin MODULE]...

Methods: ${'{methods}'}
--budget is C, entries kept per layer and KV head (KV methods), or prompt tokens kept (prompt compressors).
--method-option METHOD.NAME=VALUE (repeatable) sets an option of that method's policy, overriding --window,
  e.g. specpc.kernelSize=8 or speckv.poolType=avg; numbers, true/false, else text. speckv-pc: its SpecPC stage.
--prompt-file reads UTF-8 text, at most --max-prompt-bytes (default 67108864 = 64 MiB); files, pipes and devices alike.
Without --target/--draft the bundled pair in models/ is used (or $DRAFT_MODELS_DIR).
--dtype / --draft-dtype pick the weight file as transformers.js does: fp32 (onnx/model.onnx), fp16, q8
  (model_quantized), int8, uint8, q4, q4f16, bnb4 (onnx/model_<dtype>.onnx); default: the folder's
  transformers.js_config.dtype, else fp32.
--decode-engine native runs the single-token decode steps of the target and draft in @draft/cuda's native
  decoder (Llama-style decomposed-attention graphs with float32 KV; others are UNSUPPORTED_CAPABILITY); default ort.
--prefill-engine native (with --decode-engine native) runs prefills there too, one layer at a time, and releases
  the ORT sessions: the models hold their weights once and no graph arena; default ort.
--kv-storage float16 (with both engines native) keeps every KV cache in half precision: half the bytes, logits
  within rounding of the float32 graph's; default float32.
--target-url sends the (compressed) prompt to an OpenAI-compatible endpoint (vLLM, TGI, llama.cpp server, OpenAI)
  instead of a local target: prompt compressors and full only; the API key is read from $VAR (--api-key-env).
--cache FILE (a document cache from \`draft cache build\`): --prompt is the question; only it is prefilled (target and,
  when stored, draft), then full or any KV method selects from the stored KV. Same tokens as a fresh run on the
  document's tokens followed by the question's. Built with --store-queries N|all (default 128): query window reach.`;

export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

const defaultIo: CliIo = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
};

/** Runs the CLI; returns the process exit code (0 ok, 1 failure, 2 bad usage). */
export async function runCli(argv: readonly string[], io: CliIo = defaultIo): Promise<number> {
  const [command, ...rest] = argv;
  const json = rest.includes('--json');
  try {
    // Scoring, pooling, top-k and gather run on the native addon when it is built.
    if (command !== undefined && ['generate', 'demo', 'serve', 'bench'].includes(command)) await useNativeKernels((line) => io.stderr(`${line}\n`));
    switch (command) {
      case 'generate': {
        const { values } = parseFlags({
          args: rest,
          strict: true,
          options: {
            target: { type: 'string' },
            draft: { type: 'string' },
            dtype: { type: 'string' },
            'draft-dtype': { type: 'string' },
            'decode-engine': { type: 'string' },
            'prefill-engine': { type: 'string' },
            'kv-storage': { type: 'string' },
            method: { type: 'string' },
            budget: { type: 'string' },
            window: { type: 'string' },
            'method-option': { type: 'string', multiple: true },
            'max-new-tokens': { type: 'string' },
            temperature: { type: 'string' },
            'top-k': { type: 'string' },
            'top-p': { type: 'string' },
            seed: { type: 'string' },
            prompt: { type: 'string' },
            'prompt-file': { type: 'string' },
            'max-prompt-bytes': { type: 'string' },
            cache: { type: 'string' },
            plugin: { type: 'string', multiple: true },
            json: { type: 'boolean' },
            ...REMOTE_TARGET_OPTIONS,
          },
        });
        await loadPlugins(values.plugin ?? []);
        const controller = new AbortController();
        const onSigint = () => controller.abort(new Error('interrupted'));
        process.once('SIGINT', onSigint);
        try {
          const run = await runGenerate(values, {
            signal: controller.signal,
            onText: values.json ? undefined : (piece) => io.stdout(piece),
          });
          if (values.json) io.stdout(`${JSON.stringify(toJson(run))}\n`);
          else {
            const r = run.result;
            io.stdout('\n');
            io.stderr(
              `[${run.method}] ${r.usage.promptTokens} prompt tokens → ${r.usage.compressedPromptTokens} to ${run.remote ? `${run.remote.model} at ${run.remote.url}` : 'the target'}, ` +
                `${r.usage.cachedPromptTokens === undefined ? '' : `${r.usage.cachedPromptTokens} from the cache, `}` +
                `kept KV/head ${r.usage.keptKvTokens[0]?.[0] ?? '-'}, KV ${r.kvBytes.afterPrefill} bytes, ` +
                `TTFT ${r.timings.ttftMs.toFixed(0)} ms, ${r.timings.decodeTokensPerSecond.toFixed(1)} tok/s, ${r.finishReason}\n`,
            );
          }
        } finally {
          process.off('SIGINT', onSigint);
        }
        return 0;
      }
      case 'demo': {
        const { values } = parseFlags({
          args: rest,
          strict: true,
          options: { target: { type: 'string' }, draft: { type: 'string' }, 'method-option': { type: 'string', multiple: true } },
        });
        await runDemo({ target: values.target, draft: values.draft, methodOptions: values['method-option'], log: (line) => io.stdout(`${line}\n`) });
        return 0;
      }
      case 'methods': {
        const { values } = parseFlags({ args: rest, strict: true, options: { plugin: { type: 'string', multiple: true }, json: { type: 'boolean' } } });
        await loadPlugins(values.plugin ?? []);
        const methods = knownMethods();
        const described = Object.fromEntries(listPolicies().map((p) => [p.type, p.description ?? '']));
        if (values.json) io.stdout(`${JSON.stringify({ methods })}\n`);
        else for (const m of methods) io.stdout(`${m.padEnd(14)} ${described[m] ?? ''}\n`);
        return 0;
      }
      case 'inspect': {
        const { values, positionals } = parseFlags({ args: rest, strict: true, allowPositionals: true, options: { plugin: { type: 'string', multiple: true }, json: { type: 'boolean' } } });
        if (positionals.length !== 1 || positionals[0] === '') throw new InvalidArgumentError({ argument: 'DIR', value: positionals.length === 1 ? positionals[0] : positionals.join(' ') || undefined, expected: 'one model folder: draft inspect DIR' });
        await loadPlugins(values.plugin ?? []);
        const inspection = runInspect(positionals[0]);
        io.stdout(values.json ? `${JSON.stringify(inspection)}\n` : formatInspection(inspection));
        return 0;
      }
      case 'kernels': {
        parseFlags({ args: rest, strict: true, options: { json: { type: 'boolean' } } });
        const info = await kernelsInfo();
        io.stdout(json ? `${JSON.stringify(info)}\n` : `native: ${info.native}, cuda: ${JSON.stringify(info.cuda)}, backend: ${info.backend}\n`);
        return 0;
      }
      case 'cache': {
        const [what, ...flags] = rest;
        if (what === 'info') {
          const { values, positionals } = parseFlags({ args: flags, strict: true, allowPositionals: true, options: { json: { type: 'boolean' } } });
          if (positionals.length > 1) throw new InvalidArgumentError({ argument: 'FILE', value: positionals.join(' '), expected: 'one cache file: draft cache info FILE' });
          const info = runCacheInfo(positionals[0]);
          io.stdout(values.json ? `${JSON.stringify(info)}\n` : formatCacheSummary(info));
          return 0;
        }
        if (what !== 'build') throw new InvalidArgumentError({ argument: 'cache', value: what, expected: "'build' or 'info'" });
        const { values } = parseFlags({
          args: flags,
          strict: true,
          options: {
            target: { type: 'string' },
            draft: { type: 'string' },
            'no-draft': { type: 'boolean' },
            dtype: { type: 'string' },
            'draft-dtype': { type: 'string' },
            prompt: { type: 'string' },
            'prompt-file': { type: 'string' },
            out: { type: 'string' },
            'store-queries': { type: 'string' },
            json: { type: 'boolean' },
          },
        });
        const built = await runCacheBuild(values);
        io.stdout(values.json ? `${JSON.stringify(built)}\n` : formatCacheSummary(built));
        return 0;
      }
      case 'bench': {
        const [what, ...flags] = rest;
        if (what === 'cache') {
          const { values } = parseFlags({
            args: flags,
            strict: true,
            options: {
              target: { type: 'string' },
              draft: { type: 'string' },
              dtype: { type: 'string' },
              'draft-dtype': { type: 'string' },
              methods: { type: 'string' },
              budget: { type: 'string' },
              window: { type: 'string' },
              length: { type: 'string' },
              questions: { type: 'string' },
              'prompt-file': { type: 'string' },
              question: { type: 'string', multiple: true },
              'max-new-tokens': { type: 'string' },
              'method-option': { type: 'string', multiple: true },
              'store-queries': { type: 'string' },
              threads: { type: 'string' },
              json: { type: 'boolean' },
            },
          });
          const result = await runBenchCache(values, { stderr: io.stderr });
          io.stdout(values.json ? `${JSON.stringify(result)}\n` : formatBenchCache(result));
          return 0;
        }
        if (what === 'ruler' || what === 'fidelity' || what === 'perf') return await runBenchCommand(what, flags, io, io === defaultIo && process.stderr.isTTY === true);
        if (what !== 'kernels') throw new InvalidArgumentError({ argument: 'bench', value: what, expected: "'kernels', 'ruler', 'fidelity', 'perf' or 'cache'" });
        const { values } = parseFlags({ args: flags, strict: true, options: { json: { type: 'boolean' }, 'key-lengths': { type: 'string' } } });
        const keyLengths = values['key-lengths'] === undefined ? undefined : parseIntList('key-lengths', values['key-lengths'], KERNEL_BENCH_MIN_KEYS);
        const result = await benchKernels({ json, keyLengths, log: (line) => io.stdout(`${line}\n`) });
        if (json) io.stdout(`${JSON.stringify(result)}\n`);
        return 0;
      }
      case 'serve': {
        const { values } = parseFlags({
          args: rest,
          strict: true,
          options: {
            host: { type: 'string' },
            port: { type: 'string' },
            target: { type: 'string' },
            draft: { type: 'string' },
            dtype: { type: 'string' },
            'draft-dtype': { type: 'string' },
            'decode-engine': { type: 'string' },
            'prefill-engine': { type: 'string' },
            'kv-storage': { type: 'string' },
            'draft-release-idle': { type: 'string' },
            'max-concurrent': { type: 'string' },
            'max-queue': { type: 'string' },
            'max-connections': { type: 'string' },
            'body-timeout': { type: 'string' },
            'shutdown-timeout': { type: 'string' },
            'api-key': { type: 'string' },
            cors: { type: 'string', multiple: true },
            plugin: { type: 'string', multiple: true },
          },
        });
        await loadPlugins(values.plugin ?? []);
        return await runServe(values, io);
      }
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        io.stdout(`${USAGE.replace('{methods}', knownMethods().join(', '))}\n`);
        return command === undefined ? 2 : 0;
      default:
        throw new InvalidArgumentError({ argument: 'command', value: command, expected: 'generate, cache, demo, methods, inspect, kernels, bench or serve' });
    }
  } catch (error) {
    return reportError(error, json, io);
  }
}

function reportError(error: unknown, json: boolean, io: CliIo): number {
  const usage = DraftError.isInstance(error)
    ? ['INVALID_ARGUMENT', 'UNKNOWN_METHOD'].includes(error.code)
    : (error as { code?: string })?.code?.startsWith('ERR_PARSE_ARGS') === true;
  const code = DraftError.isInstance(error) ? error.code : usage ? 'INVALID_ARGUMENT' : 'INTERNAL';
  const message = error instanceof Error ? error.message : String(error);
  if (json) {
    const details = DraftError.isInstance(error) ? error.details : {};
    io.stderr(`${JSON.stringify({ error: { code, message, details } })}\n`);
  } else io.stderr(`draft: error [${code}]: ${message}\n`);
  return usage ? 2 : 1;
}
