import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidArgumentError } from '@draft/core';

/**
 * `task_format.json` (version 1) in a model folder: the model was trained on a symbolic RULER-style format, so
 * `draft bench ruler` generates samples in that format instead of natural-language templates.
 * Semantics (binding): a sample's text is `haystack-with-inserted-facts + join + question`, tokens separated
 * by single spaces; the expected output is the answer followed by `answer_end`.
 */
export interface TaskFormatV1 {
  version: 1;
  style: 'symbolic';
  vocabulary: { filler: string[]; key: string[]; value: string[] };
  templates: {
    needle: string;
    question: string;
    answer: string;
    vt_assign: string;
    vt_chain: string;
    vt_question: string;
    cwe_question: string;
    fwe_question: string;
  };
  join: string;
  answer_end: string;
  tasks: string[];
  notes?: string;
  /**
   * Machine-readable task parameters (what `notes` says in words). Each one present overrides the generator's
   * default for that aspect only; without `params` the generator keeps its built-in layout. Keys not listed
   * here are allowed and ignored.
   */
  params?: TaskFormatParams;
}

/** `task_format.json` `params` (all optional; unknown keys allowed and ignored). */
export interface TaskFormatParams {
  /** Distractor needles per multikey task (`niah_multikey_1/2/3`), clamped to the key vocabulary. */
  niah_multikey_distractors?: Record<string, number>;
  /** Haystack kind per single-needle task (`niah_single_1/2/3`): see {@link HaystackKind}. */
  niah_single_haystack?: Record<string, string>;
  /** Haystack kind of `niah_multikey_3`. */
  niah_multikey_3_haystack?: string;
  /** Values of the one key in `niah_multivalue`. */
  multivalue_values?: number;
  /** Keys asked together in `niah_multiquery`. */
  multiquery_queries?: number;
  /** Variables in the `vt` chain. */
  vt_vars?: number;
  [other: string]: unknown;
}

/**
 * A haystack kind: `pattern<N>` a random N-word filler pattern (drawn from the sample's filler seed) repeated
 * cyclically; `iid` i.i.d. uniform filler; `noisy_values_<p>` / `noisy_keys_<p>` i.i.d. filler with each word
 * replaced with probability p by a value-class word that is not one of the sample's needle values / a
 * key-class word that is not one of the sample's keys.
 */
export type HaystackKind = { kind: 'pattern'; length: number } | { kind: 'iid' } | { kind: 'noisy'; noise: 'value' | 'key'; p: number };

export const HAYSTACK_KINDS = "'iid', 'pattern<N>' (N a positive integer), 'noisy_values_<p>' or 'noisy_keys_<p>' (0 ≤ p ≤ 1)";

/** Parses a haystack kind (see {@link HaystackKind}); undefined when the text is not one. */
export function parseHaystackKind(text: unknown): HaystackKind | undefined {
  if (typeof text !== 'string') return undefined;
  if (text === 'iid') return { kind: 'iid' };
  const pattern = /^pattern([1-9]\d*)$/.exec(text);
  if (pattern) return { kind: 'pattern', length: Number(pattern[1]) };
  const noisy = /^noisy_(values|keys)_(\d+(?:\.\d+)?|\.\d+)$/.exec(text);
  if (noisy) {
    const p = Number(noisy[2]);
    if (p >= 0 && p <= 1) return { kind: 'noisy', noise: noisy[1] === 'values' ? 'value' : 'key', p };
  }
  return undefined;
}

const MULTIKEY_TASKS = ['niah_multikey_1', 'niah_multikey_2', 'niah_multikey_3'];
const SINGLE_TASKS = ['niah_single_1', 'niah_single_2', 'niah_single_3'];

const TEMPLATE_NAMES = ['needle', 'question', 'answer', 'vt_assign', 'vt_chain', 'vt_question', 'cwe_question', 'fwe_question'] as const;

/** Reads and validates `<dir>/task_format.json`; undefined when the folder has none. */
export function readTaskFormat(dir: string): TaskFormatV1 | undefined {
  const path = join(dir, 'task_format.json');
  if (!existsSync(path)) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (cause) {
    throw new InvalidArgumentError({ argument: 'task_format.json', value: path, expected: 'valid JSON', cause });
  }
  return validateTaskFormat(parsed, path);
}

export function validateTaskFormat(value: unknown, source = 'task_format'): TaskFormatV1 {
  const bad = (what: string, expected = 'a task_format.json of version 1 (see docs/benchmarks.md)'): never => {
    throw new InvalidArgumentError({ argument: source, value: what, expected });
  };
  const f = value as Partial<TaskFormatV1>;
  if (!f || typeof f !== 'object') bad('not an object');
  if (f.version !== 1) bad(`version ${String(f.version)}`);
  if (f.style !== 'symbolic') bad(`style ${String(f.style)}`);
  for (const cls of ['filler', 'key', 'value'] as const) {
    const list = f.vocabulary?.[cls];
    if (!Array.isArray(list) || list.length === 0 || list.some((w) => typeof w !== 'string' || w.length === 0)) bad(`vocabulary.${cls}`);
  }
  for (const name of TEMPLATE_NAMES) if (typeof f.templates?.[name] !== 'string') bad(`templates.${name}`);
  if (typeof f.join !== 'string') bad('join');
  if (typeof f.answer_end !== 'string') bad('answer_end');
  if (!Array.isArray(f.tasks)) bad('tasks');
  if (f.params !== undefined) validateParams(f.params, bad);
  return f as TaskFormatV1;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function validateParams(params: unknown, bad: (what: string, expected?: string) => never): void {
  if (!isRecord(params)) bad(`params ${JSON.stringify(params)}`, 'params as an object (see docs/benchmarks.md)');
  const p = params as Record<string, unknown>;
  const show = (name: string, v: unknown) => `params.${name} ${typeof v === 'string' ? `'${v}'` : JSON.stringify(v)}`;
  const perTask = (name: string, tasks: string[], check: (v: unknown) => boolean, expected: string) => {
    const table = p[name];
    if (table === undefined) return;
    if (!isRecord(table)) bad(show(name, table), `an object of ${tasks.join(', ')} to ${expected}`);
    for (const [task, v] of Object.entries(table as Record<string, unknown>)) {
      if (!tasks.includes(task)) bad(show(`${name}.${task}`, v), `keys among ${tasks.join(', ')}`);
      if (!check(v)) bad(show(`${name}.${task}`, v), expected);
    }
  };
  const count = (v: unknown, min: number) => typeof v === 'number' && Number.isInteger(v) && v >= min;
  perTask('niah_multikey_distractors', MULTIKEY_TASKS, (v) => count(v, 0), 'a whole number of distractor needles ≥ 0');
  perTask('niah_single_haystack', SINGLE_TASKS, (v) => parseHaystackKind(v) !== undefined, `a haystack kind: ${HAYSTACK_KINDS}`);
  const hay = p.niah_multikey_3_haystack;
  if (hay !== undefined && parseHaystackKind(hay) === undefined) bad(show('niah_multikey_3_haystack', hay), `a haystack kind: ${HAYSTACK_KINDS}`);
  for (const name of ['multivalue_values', 'multiquery_queries', 'vt_vars']) {
    const v = p[name];
    if (v !== undefined && !count(v, 1)) bad(show(name, v), 'a whole number ≥ 1');
  }
}

/** Substitutes `{name}` placeholders. */
export function fillTemplate(template: string, values: Record<string, string>): string {
  return template.replace(/\{(\w+)\}/g, (whole, name: string) => values[name] ?? whole);
}
