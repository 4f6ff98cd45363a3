import { fileURLToPath } from 'node:url';
import { InvalidArgumentError } from '@draft/core';
import type { HfTokenizer } from '@draft/runtime';
import { beforeAll, describe, expect, it } from 'vitest';
import { generateSample, RULER_TASKS, type RulerSample, readTaskFormat, type TaskFormatV1, validateTaskFormat } from '../src/index.js';
import { fixtureTokenizer, symbolicTaskFormat } from './bench-fixtures.js';

// `params` in task_format.json: each declared parameter overrides the symbolic generator's default for that
// aspect. Expectations below follow the definitions in docs/benchmarks.md (the fixture's word classes are
// told apart by their first letter: filler f*, key k*, value v*).

let tokenizer: HfTokenizer;

beforeAll(async () => {
  tokenizer = await fixtureTokenizer();
});

const SYMBOLIC_TASKS = RULER_TASKS.filter((t) => t !== 'qa');

/** The trained pair's declared params (models/target/task_format.json). */
const PARAMS = {
  niah_multikey_distractors: { niah_multikey_1: 3, niah_multikey_2: 15, niah_multikey_3: 31 },
  niah_single_haystack: { niah_single_1: 'pattern16', niah_single_2: 'iid', niah_single_3: 'noisy_values_0.1' },
  niah_multikey_3_haystack: 'noisy_values_0.1',
  multivalue_values: 4,
  multiquery_queries: 4,
  vt_vars: 5,
  // not interpreted by the generator: allowed and ignored
  vt_chains: 1,
  cwe_shares: [0.15, 0.1, 0.06],
  bos: false,
};

/** 40 filler, 40 key, 40 value words (enough keys for 1 + 31 multikey_3 needles). */
const VOCABULARY = {
  filler: Array.from({ length: 40 }, (_, i) => `f${i}`),
  key: Array.from({ length: 40 }, (_, i) => `k${i}`),
  value: Array.from({ length: 40 }, (_, i) => `v${i}`),
};

const format = (extra: Record<string, unknown>): TaskFormatV1 => validateTaskFormat(symbolicTaskFormat(SYMBOLIC_TASKS, extra));
const WITH_PARAMS = format({ vocabulary: VOCABULARY, params: PARAMS });

const gen = (task: string, f: TaskFormatV1, seed = 7, length = 600, index = 0) => generateSample({ task, length, seed, index, tokenizer, format: f });
const words = (s: RulerSample) => s.haystack.split(' ');
const isKey = (w: string) => /^k\d+$/.test(w);
const isValue = (w: string) => /^v\d+$/.test(w);
const isFiller = (w: string) => /^f\d+$/.test(w);

/** Needles (`{key} {value}`) in a haystack where key-class words occur only in needles. */
function needles(s: RulerSample): [string, string][] {
  const w = words(s);
  return w.flatMap((x, i) => (isKey(x) ? [[x, w[i + 1]] as [string, string]] : []));
}

describe('task_format.json params: validation', () => {
  it('accepts the declared params, unknown keys included, and the shipped model folders', () => {
    expect(WITH_PARAMS.params?.niah_multikey_distractors?.niah_multikey_3).toBe(31);
    expect(format({ params: {} }).params).toEqual({});
    for (const dir of ['target', 'draft']) {
      const folder = fileURLToPath(new URL(`../../../models/${dir}`, import.meta.url));
      expect(() => readTaskFormat(folder)).not.toThrow();
    }
  });

  const invalid: [string, Record<string, unknown>, string][] = [
    ['params not an object', { params: [1] }, '[1]'],
    ['pattern of zero words', { params: { niah_single_haystack: { niah_single_1: 'pattern0' } } }, "'pattern0'"],
    ['noise probability above 1', { params: { niah_single_haystack: { niah_single_3: 'noisy_values_1.5' } } }, "'noisy_values_1.5'"],
    ['unknown noise class', { params: { niah_single_haystack: { niah_single_3: 'noisy_fillers_0.1' } } }, "'noisy_fillers_0.1'"],
    ['haystack for a task that has none', { params: { niah_single_haystack: { niah_multikey_1: 'iid' } } }, 'niah_multikey_1'],
    ['unknown multikey_3 haystack', { params: { niah_multikey_3_haystack: 'noise' } }, "'noise'"],
    ['negative distractors', { params: { niah_multikey_distractors: { niah_multikey_2: -1 } } }, '-1'],
    ['fractional distractors', { params: { niah_multikey_distractors: { niah_multikey_2: 2.5 } } }, '2.5'],
    ['distractors for a non-multikey task', { params: { niah_multikey_distractors: { niah_single_1: 3 } } }, 'niah_single_1'],
    ['distractors not a table', { params: { niah_multikey_distractors: 15 } }, '15'],
    ['zero vt variables', { params: { vt_vars: 0 } }, 'vt_vars 0'],
    ['values as a string', { params: { multivalue_values: '4' } }, "'4'"],
    ['queries not whole', { params: { multiquery_queries: 1.5 } }, '1.5'],
  ];
  for (const [name, extra, shown] of invalid) {
    it(`rejects ${name} with a typed error naming the value and what is valid`, () => {
      let error: unknown;
      try {
        validateTaskFormat(symbolicTaskFormat(SYMBOLIC_TASKS, extra));
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(InvalidArgumentError);
      const e = error as InvalidArgumentError;
      expect(String(e.value)).toContain(shown);
      expect(e.message).toContain(shown);
      expect(e.expected).not.toMatch(/^a task_format\.json of version 1/); // says what is valid for this field
    });
  }
});

describe('task_format.json params: the symbolic generator follows them', () => {
  it('no params, or empty params: the built-in layout, sample for sample', () => {
    const plain = format({});
    const empty = format({ params: {} });
    for (const task of SYMBOLIC_TASKS) expect(gen(task, empty, 3, 400)).toEqual(gen(task, plain, 3, 400));
  });

  it('multikey_1/2/3: 1 + 3, 1 + 15 and 1 + 31 needles, each a key followed by a value, the asked one answered', () => {
    for (const [task, distractors] of [
      ['niah_multikey_1', 3],
      ['niah_multikey_2', 15],
      ['niah_multikey_3', 31],
    ] as const) {
      for (const seed of [1, 2, 3]) {
        const s = gen(task, WITH_PARAMS, seed, 700);
        const found = needles(s);
        expect(found, `${task} seed ${seed}`).toHaveLength(1 + distractors);
        expect(found.every(([, v]) => isValue(v))).toBe(true);
        expect(new Set(found.map(([k]) => k)).size).toBe(1 + distractors); // distinct keys
        expect(new Set(found.map(([, v]) => v)).size).toBe(1 + distractors); // distinct values: no ambiguous answer
        const asked = s.question.split(' ')[1];
        expect(found.filter(([k]) => k === asked)).toEqual([[asked, s.answers[0]]]);
        expect(s.insertions).toHaveLength(1);
      }
    }
  });

  it('distractors are clamped to the key vocabulary; a count it cannot hold at all is an error', () => {
    // 30 keys: multikey_3 can have 1 asked + 29 distractor keys, not 31.
    const small = format({ params: PARAMS });
    expect(needles(gen('niah_multikey_3', small, 4, 700))).toHaveLength(30);
    const tooMany = format({ params: { multiquery_queries: 31 } });
    expect(() => gen('niah_multiquery', tooMany)).toThrow(InvalidArgumentError);
  });

  it('niah_single_3 noisy_values_0.1: noise words are value-class, never the needle value, about 10% of the filler', () => {
    for (const seed of [1, 2, 3]) {
      const s = gen('niah_single_3', WITH_PARAMS, seed, 2000);
      const w = words(s);
      const keyAt = w.findIndex(isKey);
      expect(w.filter(isKey)).toEqual([s.question.split(' ')[1]]); // the needle's key, and no key-class noise
      expect(w[keyAt + 1]).toBe(s.answers[0]);
      const haystackWords = w.filter((_, i) => i !== keyAt && i !== keyAt + 1);
      const noise = haystackWords.filter((x) => !isFiller(x));
      expect(noise.every(isValue)).toBe(true);
      expect(noise).not.toContain(s.answers[0]);
      // Binomial(n, 0.1) with n ≈ 1000+: 10% ± 4 standard deviations
      const n = haystackWords.length;
      const sd = Math.sqrt(n * 0.1 * 0.9);
      expect(Math.abs(noise.length - 0.1 * n), `${noise.length} of ${n}`).toBeLessThan(4 * sd);
    }
  });

  it('niah_multikey_3 noisy_values_0.1: noise words avoid every needle value (asked and distractor)', () => {
    const s = gen('niah_multikey_3', WITH_PARAMS, 5, 1500);
    const w = words(s);
    const needleAt = new Set(w.flatMap((x, i) => (isKey(x) ? [i, i + 1] : [])));
    const needleValues = new Set(needles(s).map(([, v]) => v));
    const noise = w.filter((x, i) => !needleAt.has(i) && !isFiller(x));
    expect(noise.length).toBeGreaterThan(0);
    expect(noise.every((x) => isValue(x) && !needleValues.has(x))).toBe(true);
  });

  it('noisy_keys_<p>: key-class noise that is never the sample key, at rate p', () => {
    const f = format({ vocabulary: VOCABULARY, params: { niah_single_haystack: { niah_single_3: 'noisy_keys_0.3' } } });
    const s = gen('niah_single_3', f, 11, 2000);
    const w = words(s);
    const key = s.question.split(' ')[1];
    expect(w.filter(isValue)).toEqual([s.answers[0]]); // only the needle's value
    expect(w.filter((x) => x === key)).toHaveLength(1);
    const noise = w.filter((x) => isKey(x) && x !== key);
    const n = w.length - 2;
    expect(Math.abs(noise.length - 0.3 * n)).toBeLessThan(4 * Math.sqrt(n * 0.3 * 0.7));
  });

  it('niah_single_1 pattern16: a 16-word filler pattern repeated with period 16, drawn per sample', () => {
    const patterns = new Set<string>();
    for (const seed of [1, 2, 3]) {
      const s = gen('niah_single_1', WITH_PARAMS, seed, 600);
      const f = words(s).filter(isFiller);
      expect(f.length).toBeGreaterThan(64);
      expect(words(s).filter((x) => !isFiller(x))).toHaveLength(2); // only the needle
      for (let i = 16; i < f.length; i++) expect(f[i]).toBe(f[i - 16]);
      // the period is 16, not a divisor of it (a random pattern of 40 words is not periodic)
      for (const p of [1, 2, 4, 8]) expect(f.slice(0, 16).every((x, i) => x === f[i % p])).toBe(false);
      patterns.add(f.slice(0, 16).join(' '));
    }
    expect(patterns.size).toBe(3);
    // pattern<N> for other N, and iid for niah_single_2
    const f5 = format({ params: { niah_single_haystack: { niah_single_1: 'pattern5' } } });
    const five = words(gen('niah_single_1', f5)).filter(isFiller);
    for (let i = 5; i < five.length; i++) expect(five[i]).toBe(five[i - 5]);
    const iid = words(gen('niah_single_2', WITH_PARAMS, 1, 600)).filter(isFiller);
    expect(iid.slice(16).every((x, i) => x === iid[i])).toBe(false);
  });

  it('multivalue_values, multiquery_queries and vt_vars set the number of values, keys asked and chain variables', () => {
    const f = format({ params: { multivalue_values: 3, multiquery_queries: 2, vt_vars: 7 } });
    const mv = gen('niah_multivalue', f);
    const key = mv.question.split(' ')[1];
    const mw = words(mv);
    expect(mw.flatMap((x, i) => (x === key ? [mw[i + 1]] : []))).toEqual(mv.answers); // haystack order
    expect(mv.answers).toHaveLength(3);
    const mq = gen('niah_multiquery', f);
    const asked = mq.question.split(' ').slice(1, -1);
    expect(asked).toHaveLength(2);
    const qw = words(mq);
    expect(asked.map((k) => qw[qw.indexOf(k) + 1])).toEqual(mq.answers);
    const vt = gen('vt', f);
    expect(vt.answers).toHaveLength(7);
    const vw = words(vt);
    expect(vw[vw.indexOf(vt.answers[0]) + 1]).toBe(vt.question.split(' ')[1]);
    for (let i = 1; i < 7; i++) expect(vw[vw.indexOf(vt.answers[i]) + 1]).toBe(vt.answers[i - 1]);
  });
});
