import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { readJson } from './run-files.js';

/**
 * What a bench run's results were computed from, beyond its folder name (method, budget, length, task, method
 * options): the files of its models and the bench settings. A run resumes only when both match.
 */
export interface RunFingerprint {
  models: ModelFingerprint;
  settings: BenchSettings;
}

/**
 * A sha256 per model folder (`sha256:<hex>`); `draft` is null when the run's method does not use the draft (so
 * retraining the draft does not rerun full-KV baselines).
 */
export interface ModelFingerprint {
  target: string;
  draft: string | null;
}

/**
 * The bench settings that change a run's results, keyed by their flag. Those the bench resolves itself
 * (`samples`, `seed`, `steps`) are always the number used, given or default; those whose default is the
 * method's or the task's (`max-new-tokens`, `window`) are null when the flag was not given; `prompt-file` is
 * the sha256 of the file's content.
 */
export type BenchSettings = Readonly<Record<string, number | string | null>>;

/** The keys under which a run's metrics.json records its fingerprint. */
export const MODEL_FINGERPRINT_KEY = 'modelFingerprint';
export const BENCH_SETTINGS_KEY = 'benchSettings';

/**
 * The files of a model folder that decide its outputs: weights and graph (everything under `onnx/`, external
 * data included), architecture, stop tokens, tokenizer and, for the target, the bench's task format.
 */
const MODEL_FILES = Object.freeze(['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'task_format.json']);

/**
 * sha256 over the name, size and bytes of each file of a model folder that decides its outputs (read in 1 MiB
 * chunks). The folder's path is not hashed: an identical copy elsewhere has the same fingerprint.
 */
export function hashModelDir(dir: string): string {
  const onnxDir = join(dir, 'onnx');
  const onnxFiles = existsSync(onnxDir) ? readdirSync(onnxDir).sort().map((name) => `onnx/${name}`) : [];
  const hash = createHash('sha256');
  const chunk = Buffer.allocUnsafe(1 << 20);
  for (const name of [...MODEL_FILES, ...onnxFiles]) {
    const path = join(dir, name);
    const stat = statSync(path, { throwIfNoEntry: false });
    if (!stat?.isFile()) continue;
    hash.update(`${name}\0${stat.size}\0`);
    const fd = openSync(path, 'r');
    try {
      for (let n = readSync(fd, chunk); n > 0; n = readSync(fd, chunk)) hash.update(chunk.subarray(0, n));
    } finally {
      closeSync(fd);
    }
  }
  return `sha256:${hash.digest('hex')}`;
}

/** `sha256:<hex>` of a text (a prompt file's content as a bench setting). */
export function hashText(text: string): string {
  return `sha256:${createHash('sha256').update(text).digest('hex')}`;
}

/**
 * The model fingerprint for a run of one bench invocation: each folder is hashed at most once, and only when a
 * run asks for it (a bench whose methods never use the draft never reads the draft's weights). A remote target
 * (`remote`: its URL, API flavour and model) stands in for the target folder's hash.
 */
export function modelFingerprinter(dirs: { targetDir?: string; draftDir: string; remote?: string }): (options: { needsDraft: boolean }) => ModelFingerprint {
  let target: string | undefined = dirs.remote;
  let draft: string | undefined;
  return ({ needsDraft }) => {
    target ??= hashModelDir(dirs.targetDir as string);
    if (needsDraft) draft ??= hashModelDir(dirs.draftDir);
    return { target, draft: needsDraft ? (draft as string) : null };
  };
}

/** Whether a run folder's results can be reused: none yet, reusable (the metrics, fingerprint removed), or stale (why). */
export type ResumeState<T> = { kind: 'new' } | { kind: 'resume'; metrics: T } | { kind: 'stale'; reason: string };

/**
 * Reads a run's metrics.json for resuming: reusable only when it records the same models and settings as this
 * invocation's. Models are compared by content, so an identical copy of the model folders in another directory
 * resumes; results of other model contents (retrained weights, a changed config or tokenizer), other settings,
 * or of a version that recorded neither are stale and must be run again.
 */
export function resumeState<T>(metricsPath: string, fingerprint: RunFingerprint): ResumeState<T> {
  if (!existsSync(metricsPath)) return { kind: 'new' };
  const { [MODEL_FINGERPRINT_KEY]: models, [BENCH_SETTINGS_KEY]: settings, ...metrics } = readJson<Record<string, unknown>>(metricsPath);
  const recordedModels = typeof (models as Partial<ModelFingerprint> | undefined)?.target === 'string' ? (models as ModelFingerprint) : undefined;
  const recordedSettings = settings !== null && typeof settings === 'object' ? (settings as BenchSettings) : undefined;
  const missing = [recordedModels ? '' : 'model fingerprint', recordedSettings ? '' : 'bench settings'].filter(Boolean);
  const reasons = [
    missing.length > 0 ? `no ${missing.join(' or ')} recorded` : '',
    recordedModels ? modelsChange(recordedModels, fingerprint.models) : '',
    recordedSettings ? settingsChange(recordedSettings, fingerprint.settings) : '',
  ].filter(Boolean);
  return reasons.length > 0 ? { kind: 'stale', reason: reasons.join('; ') } : { kind: 'resume', metrics: metrics as T };
}

/** `draft model changed`, `target and draft models changed`, or '' when the same. */
function modelsChange(previous: ModelFingerprint, current: ModelFingerprint): string {
  const changed = [previous.target !== current.target ? 'target' : '', (previous.draft ?? null) !== current.draft ? 'draft' : ''].filter(Boolean);
  return changed.length > 0 ? `${changed.join(' and ')} model${changed.length > 1 ? 's' : ''} changed` : '';
}

/** `settings changed: samples 10 → 20, window default → 16`, or '' when the same. */
function settingsChange(previous: BenchSettings, current: BenchSettings): string {
  const show = (value: unknown) => (value === undefined || value === null ? 'default' : typeof value === 'string' && value.startsWith('sha256:') ? `${value.slice(0, 15)}…` : String(value));
  const names = [...new Set([...Object.keys(current), ...Object.keys(previous)])];
  const changed = names.filter((name) => (previous[name] ?? null) !== (current[name] ?? null)).map((name) => `${name} ${show(previous[name])} → ${show(current[name])}`);
  return changed.length > 0 ? `settings changed: ${changed.join(', ')}` : '';
}

/** The metrics to write (atomically, in one file) with the fingerprint of what produced them. */
export function withRunFingerprint<T extends object>(metrics: T, fingerprint: RunFingerprint): T & { [MODEL_FINGERPRINT_KEY]: ModelFingerprint; [BENCH_SETTINGS_KEY]: BenchSettings } {
  return { ...metrics, [MODEL_FINGERPRINT_KEY]: fingerprint.models, [BENCH_SETTINGS_KEY]: fingerprint.settings };
}

/** The progress outcome of a run that replaced stale results: `stale (draft model changed), rerun: <outcome>`. */
export function staleOutcome(state: ResumeState<unknown>, outcome: string): string {
  return state.kind === 'stale' ? `stale (${state.reason}), rerun: ${outcome}` : outcome;
}
