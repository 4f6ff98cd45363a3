import { runPlan } from '@draft/bench';
import { type GenerationResultV1, InvalidArgumentError, type PipelineInput } from '@draft/core';
import { validateMethodSettings } from '@draft/methods';
import { type DocumentCache, loadModel, type OrtCausalLM, openDocumentCache, readModelFolder } from '@draft/runtime';
import { type MethodOptionMap, parseMethodOptions } from '../method-options.js';
import { type MethodPlan, planMethod } from '../methods.js';
import { resolveModelDir } from '../model-dirs.js';
import { decodeEngineOption, dtypeOption, intOption, kvStorageOption, numberOption, prefillEngineOption } from '../options.js';
import { DEFAULT_MAX_PROMPT_BYTES, readPromptFile } from '../prompt-file.js';
import { checkPlanForTextTarget, needsDraft, type RemoteTargetFlags, remoteTargetFromFlags } from '../remote-target.js';

export interface GenerateFlags extends RemoteTargetFlags {
  target?: string;
  draft?: string;
  /** Weight file of the target (`onnx/model_<suffix>.onnx`, transformers.js dtype names). */
  dtype?: string;
  /** Weight file of the draft. */
  'draft-dtype'?: string;
  /** Who runs single-token decode steps of the target and draft: 'ort' (default) or 'native'. */
  'decode-engine'?: string;
  'prefill-engine'?: string;
  'kv-storage'?: string;
  method?: string;
  budget?: string;
  window?: string;
  /** Repeated `<method>.<name>=<value>` (`--method-option`). */
  'method-option'?: string[];
  'max-new-tokens'?: string;
  temperature?: string;
  'top-k'?: string;
  'top-p'?: string;
  seed?: string;
  prompt?: string;
  'prompt-file'?: string;
  /** Cap on the bytes read from `--prompt-file` (default 64 MiB). */
  'max-prompt-bytes'?: string;
  /** A document cache (`draft cache build`): the prompt is then the question asked of that document. */
  cache?: string;
  json?: boolean;
}

/** The `--json` output of `draft generate`: exactly one object. */
export interface GenerateJson {
  text: string;
  tokens: number[];
  finishReason: string;
  method: string;
  budget: number | null;
  /** The `--method-option`s the method ran with (`{}` for none). */
  methodOptions: MethodOptionMap;
  usage: GenerationResultV1['usage'];
  timings: GenerationResultV1['timings'];
  kvBytes: GenerationResultV1['kvBytes'];
  /** With `--target-url`: the endpoint and model the prompt went to. */
  remote?: { url: string; model: string; endpoint: 'chat' | 'completions' };
}

export interface GenerateRun {
  method: string;
  budget: number | undefined;
  methodOptions?: MethodOptionMap;
  result: GenerationResultV1;
  remote?: GenerateJson['remote'];
}

/** Loads the models a method needs, runs it once, and disposes everything. */
export async function runGenerate(flags: GenerateFlags, io: { signal?: AbortSignal; onText?: (piece: string) => void } = {}): Promise<GenerateRun> {
  const method = flags.method ?? 'full';
  const dtype = dtypeOption('dtype', flags.dtype);
  const draftDtype = dtypeOption('draft-dtype', flags['draft-dtype']);
  const decodeEngine = decodeEngineOption('decode-engine', flags['decode-engine']);
  const prefillEngine = prefillEngineOption('prefill-engine', flags['prefill-engine'], decodeEngine);
  const kvStorage = kvStorageOption('kv-storage', flags['kv-storage'], prefillEngine);
  const budget = intOption('budget', flags.budget, 1);
  const windowSize = intOption('window', flags.window, 1);
  const maxNewTokens = intOption('max-new-tokens', flags['max-new-tokens'], 1) ?? 32;
  const temperature = numberOption('temperature', flags.temperature, 0) ?? 0;
  const topK = intOption('top-k', flags['top-k'], 0);
  // Nucleus mass in (0, 1], as the sampler requires: refused here, naming the flag, before any model loads.
  const topP = flags['top-p'] === undefined ? undefined : Number(flags['top-p']);
  if (topP !== undefined && !(topP > 0 && topP <= 1)) throw new InvalidArgumentError({ argument: '--top-p', value: flags['top-p'], expected: 'a number in (0, 1]' });
  // Above 2^53 − 1 two different seeds would be the same number (the server refuses them too).
  const seed = intOption('seed', flags.seed, 0, Number.MAX_SAFE_INTEGER);
  const methodOptions = parseMethodOptions(flags['method-option'], [method])[method] ?? {};
  const prompt = await readPrompt(flags);
  const plan = planMethod(method, { budget, windowSize, options: methodOptions });
  // The server's checks, before any model loads: budget and window within the target's positions (read from its
  // config.json; a remote target's are unknown here), and a KV method's window below its budget.
  const maxBudget = flags['target-url'] === undefined ? readModelFolder(resolveModelDir('target', flags.target), { dtype }).info.maxPositions : undefined;
  validateMethodSettings(plan, { budget, windowSize }, { maxBudget, names: { budget: '--budget', windowSize: '--window' } });
  if (flags.cache !== undefined) checkCachePlan(plan, flags);
  const remote = await remoteTargetFromFlags(flags, io.signal);
  // A KV method cannot run behind an HTTP endpoint: refused with the pipeline's error before any model loads.
  if (remote) checkPlanForTextTarget(plan, remote.target);
  const models: OrtCausalLM[] = [];
  let cache: DocumentCache | undefined;
  try {
    const target = remote ? remote.target : await loadModel(resolveModelDir('target', flags.target), { raggedCache: plan.needsRaggedCache, dtype, decodeEngine, prefillEngine, kvStorage });
    if (!remote) models.push(target as OrtCausalLM);
    const draft = needsDraft(plan, remote !== undefined) ? await loadModel(resolveModelDir('draft', flags.draft), { dtype: draftDtype, decodeEngine, prefillEngine, kvStorage }) : undefined;
    if (draft) models.push(draft);
    const generation = {
      maxNewTokens,
      temperature,
      topK,
      topP,
      seed,
      signal: io.signal,
    };
    let input: PipelineInput = prompt;
    if (flags.cache !== undefined) {
      // Verified and matched to the loaded models before anything runs; the prompt is document ++ question.
      cache = await openDocumentCache(flags.cache, { target: target as OrtCausalLM, draft, signal: io.signal });
      input = { inputIds: cache.promptIds(prompt) };
    }
    const result = await runPlan(plan, { target, draft }, input, cache ? { ...generation, prefix: cache.prefix } : generation, io.onText);
    return { method, budget, methodOptions, result, ...(remote ? { remote: { url: remote.url, model: remote.model, endpoint: remote.endpoint } } : {}) };
  } finally {
    cache?.dispose();
    await Promise.all(models.map((m) => m.dispose()));
  }
}

/** `--cache` serves in-process KV methods and full; refused before any model loads otherwise. */
function checkCachePlan(plan: MethodPlan, flags: GenerateFlags): void {
  if (flags['target-url'] !== undefined) {
    throw new InvalidArgumentError({ argument: '--cache', value: flags.cache, expected: 'a local target (--target-url sends text; there is no KV to reuse)' });
  }
  if (plan.draftOnly || plan.stages.compressor !== undefined) {
    throw new InvalidArgumentError({
      argument: '--cache',
      value: plan.method,
      expected: 'full or a KV method (prompt compressors rewrite the prompt and draft-only never runs the target, so a stored target KV cannot serve them)',
    });
  }
}

export function toJson(run: GenerateRun): GenerateJson {
  const { result } = run;
  return {
    text: result.text,
    tokens: result.tokens,
    finishReason: result.finishReason,
    method: run.method,
    budget: run.budget ?? null,
    methodOptions: run.methodOptions ?? {},
    usage: result.usage,
    timings: result.timings,
    kvBytes: result.kvBytes,
    ...(run.remote ? { remote: run.remote } : {}),
  };
}

// Running a plan moved to @draft/bench with the harness (ruler runs it per sample); re-exported for the CLI's users.
export { runPlan };

/** The text of `--prompt` or `--prompt-file` (exactly one; the file read up to `--max-prompt-bytes`). */
export async function readPrompt(flags: Pick<GenerateFlags, 'prompt' | 'prompt-file' | 'max-prompt-bytes'>): Promise<string> {
  if (flags.prompt !== undefined && flags['prompt-file'] !== undefined) {
    throw new InvalidArgumentError({ argument: '--prompt', value: '--prompt and --prompt-file', expected: 'exactly one of them' });
  }
  const maxBytes = intOption('max-prompt-bytes', flags['max-prompt-bytes'], 1) ?? DEFAULT_MAX_PROMPT_BYTES;
  if (flags['prompt-file'] !== undefined) return readPromptFile(flags['prompt-file'], { maxBytes });
  if (flags.prompt === undefined || flags.prompt.length === 0) {
    throw new InvalidArgumentError({ argument: '--prompt', value: flags.prompt, expected: 'a non-empty prompt (--prompt TEXT or --prompt-file PATH)' });
  }
  return flags.prompt;
}
