import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { readJson } from './common.js';

/**
 * What a bench run's results were computed from: a sha256 per model folder (`sha256:<hex>`); `draft` is null
 * when the run's method does not use the draft (so retraining the draft does not rerun full-KV baselines).
 */
export interface ModelFingerprint {
  target: string;
  draft: string | null;
}

/** The key under which a run's metrics.json records the fingerprint of the models that produced it. */
export const MODEL_FINGERPRINT_KEY = 'modelFingerprint';

/**
 * The files of a model folder that decide its outputs: weights and graph (everything under `onnx/`, external
 * data included), architecture, stop tokens, tokenizer and, for the target, the bench's task format.
 */
const MODEL_FILES = Object.freeze(['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'task_format.json']);

/** sha256 over the name, size and bytes of each file of a model folder that decides its outputs (read in 1 MiB chunks). */
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

/**
 * The fingerprint for a run of one bench invocation: each folder is hashed at most once, and only when a run
 * asks for it (a bench whose methods never use the draft never reads the draft's weights).
 */
export function modelFingerprinter(dirs: { targetDir: string; draftDir: string }): (options: { needsDraft: boolean }) => ModelFingerprint {
  let target: string | undefined;
  let draft: string | undefined;
  return ({ needsDraft }) => {
    target ??= hashModelDir(dirs.targetDir);
    if (needsDraft) draft ??= hashModelDir(dirs.draftDir);
    return { target, draft: needsDraft ? (draft as string) : null };
  };
}

/** Whether a run folder's results can be reused: none yet, reusable (the metrics, fingerprint removed), or stale (why). */
export type ResumeState<T> = { kind: 'new' } | { kind: 'resume'; metrics: T } | { kind: 'stale'; reason: string };

/**
 * Reads a run's metrics.json for resuming: reusable only when it records the same model fingerprint as this
 * invocation's; results of other models (retrained weights, another folder) or of a version that recorded no
 * fingerprint are stale and must be run again.
 */
export function resumeState<T>(metricsPath: string, fingerprint: ModelFingerprint): ResumeState<T> {
  if (!existsSync(metricsPath)) return { kind: 'new' };
  const { [MODEL_FINGERPRINT_KEY]: recorded, ...metrics } = readJson<Record<string, unknown>>(metricsPath);
  const previous = recorded as Partial<ModelFingerprint> | undefined;
  if (!previous || typeof previous.target !== 'string') return { kind: 'stale', reason: 'no model fingerprint recorded' };
  const changed = [previous.target !== fingerprint.target ? 'target' : '', (previous.draft ?? null) !== fingerprint.draft ? 'draft' : ''].filter(Boolean);
  if (changed.length > 0) return { kind: 'stale', reason: `${changed.join(' and ')} model${changed.length > 1 ? 's' : ''} changed` };
  return { kind: 'resume', metrics: metrics as T };
}

/** The metrics to write (atomically, in one file) with the fingerprint of the models that produced them. */
export function withModelFingerprint<T extends object>(metrics: T, fingerprint: ModelFingerprint): T & { [MODEL_FINGERPRINT_KEY]: ModelFingerprint } {
  return { ...metrics, [MODEL_FINGERPRINT_KEY]: fingerprint };
}

/** The progress outcome of a run that replaced stale results: `stale (draft model changed), rerun: <outcome>`. */
export function staleOutcome(state: ResumeState<unknown>, outcome: string): string {
  return state.kind === 'stale' ? `stale (${state.reason}), rerun: ${outcome}` : outcome;
}
