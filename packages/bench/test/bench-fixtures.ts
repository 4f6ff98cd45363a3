// Test-only fixtures shared by the bench tests (and imported by @draft/cli's): a symbolic task format like the
// trained pair's (models/target writes its own task_format.json), word tokens from three disjoint classes.
// Also the random-weight target's tokenizer (models/fixtures/random-target).

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HfTokenizer } from '@draft/runtime';

const targetDir = fileURLToPath(new URL('../../../models/fixtures/random-target', import.meta.url));

/** The tokenizer of the random-weight target fixture (models/fixtures/random-target). */
export async function fixtureTokenizer(): Promise<HfTokenizer> {
  return HfTokenizer.create(
    JSON.parse(readFileSync(join(targetDir, 'tokenizer.json'), 'utf8')),
    JSON.parse(readFileSync(join(targetDir, 'tokenizer_config.json'), 'utf8')),
    join(targetDir, 'tokenizer.json'),
  );
}

/** The symbolic task format as plain JSON (not validated), for `tasks`, plus any `extra` fields after them. */
export function symbolicTaskFormat(tasks: readonly string[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    version: 1,
    style: 'symbolic',
    vocabulary: {
      filler: Array.from({ length: 40 }, (_, i) => `f${i}`),
      key: Array.from({ length: 30 }, (_, i) => `k${i}`),
      value: Array.from({ length: 30 }, (_, i) => `v${i}`),
    },
    templates: {
      needle: '{key} {value}',
      question: 'Q {keys} A',
      answer: '{values}',
      vt_assign: '{var} {value}',
      vt_chain: '{var} {prev}',
      vt_question: 'V {value} A',
      cwe_question: 'C A',
      fwe_question: 'F A',
    },
    join: ' ',
    answer_end: '<eos>',
    tasks: [...tasks],
    ...extra,
  };
}
