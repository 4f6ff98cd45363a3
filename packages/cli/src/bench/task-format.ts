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
}

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
  const bad = (what: string): never => {
    throw new InvalidArgumentError({ argument: source, value: what, expected: 'a task_format.json of version 1 (see docs/benchmarks.md)' });
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
  return f as TaskFormatV1;
}

/** Substitutes `{name}` placeholders. */
export function fillTemplate(template: string, values: Record<string, string>): string {
  return template.replace(/\{(\w+)\}/g, (whole, name: string) => values[name] ?? whole);
}
