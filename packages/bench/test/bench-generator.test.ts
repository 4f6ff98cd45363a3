import type { HfTokenizer } from '@draft/runtime';
import { beforeAll, describe, expect, it } from 'vitest';
import { cutPrediction, frequencyList, generateSample, RULER_TASKS, Rng, type RulerSample, scorePrediction, type TaskFormatV1, validateTaskFormat } from '../src/index.js';
import { fixtureTokenizer, symbolicTaskFormat } from './bench-fixtures.js';

let tokenizer: HfTokenizer;

beforeAll(async () => {
  tokenizer = await fixtureTokenizer();
});

/** A symbolic format like the trained pair's: word tokens from three disjoint classes. */
const SYMBOLIC_FORMAT: TaskFormatV1 = validateTaskFormat(symbolicTaskFormat(RULER_TASKS.filter((t) => t !== 'qa'), { notes: 'test format' }));

function occurrences(haystack: string, text: string, words: boolean): number {
  if (words) return ` ${haystack} `.split(` ${text} `).length - 1;
  return haystack.split(text).length - 1;
}

function checkSample(s: RulerSample, words: boolean) {
  // length within 2% of the request, measured with the target's tokenizer
  expect(Math.abs(tokenizer.encode(s.input).length - s.length)).toBeLessThanOrEqual(s.length * 0.02);
  expect(s.tokens).toBe(tokenizer.encode(s.input).length);
  expect(s.input).toContain(s.haystack);
  expect(s.input.endsWith(s.question) || s.input.includes(`${s.question}\n`)).toBe(true);
  for (const ins of s.insertions) {
    // the fact is in the haystack, exactly where it was reported, at the requested depth
    expect(occurrences(s.haystack, ins.text, words), ins.text).toBeGreaterThanOrEqual(1);
    const unitTokens = tokenizer.encode(ins.text).length + 30;
    expect(Math.abs(ins.tokenOffset / s.haystackTokens - ins.depth), `${s.task} ${ins.text}`).toBeLessThanOrEqual(Math.max(0.02, unitTokens / s.haystackTokens));
  }
  // every reference answer is present in the haystack
  for (const a of s.answers.slice(0, s.metric === 'string_match_part' ? 1 : undefined)) {
    expect(occurrences(s.haystack, a, words), `${s.task}: ${a}`).toBeGreaterThanOrEqual(1);
  }
}

describe('RULER generator, natural style', () => {
  for (const task of RULER_TASKS) {
    it(`${task}: length ±2%, facts at their depths, answers present, seeds reproduce`, () => {
      for (const length of [600, 1500]) {
        const s = generateSample({ task, length, seed: 1, index: 0, tokenizer });
        expect(s.style).toBe('natural');
        checkSample(s, false);
        expect(generateSample({ task, length, seed: 1, index: 0, tokenizer })).toEqual(s);
        expect(generateSample({ task, length, seed: 2, index: 0, tokenizer }).input).not.toBe(s.input);
        expect(generateSample({ task, length, seed: 1, index: 1, tokenizer }).input).not.toBe(s.input);
      }
    });
  }

  it('the answer facts are the ones the question asks about', () => {
    const s = generateSample({ task: 'niah_multikey_1', length: 512, seed: 3, index: 0, tokenizer });
    expect(s.insertions).toHaveLength(1);
    expect(s.insertions[0].text).toContain(s.answers[0]);
    expect(s.question).toContain(s.insertions[0].text.split(' ')[6]);
    const mv = generateSample({ task: 'niah_multivalue', length: 512, seed: 3, index: 0, tokenizer });
    // values in haystack order
    expect(mv.answers.map((a) => mv.haystack.indexOf(a))).toEqual([...mv.answers.map((a) => mv.haystack.indexOf(a))].sort((a, b) => a - b));
  });
});

describe('RULER generator, symbolic style (task_format.json)', () => {
  for (const task of SYMBOLIC_FORMAT.tasks) {
    it(`${task}: text = haystack + join + question, expected = answer + answer_end, length ±2%, depths`, () => {
      const s = generateSample({ task, length: 300, seed: 5, index: 2, tokenizer, format: SYMBOLIC_FORMAT });
      expect(s.style).toBe('symbolic');
      expect(s.input).toBe(`${s.haystack} ${s.question}`);
      expect(s.input.split(' ').every((w) => w.length > 0)).toBe(true); // single spaces
      expect(s.expectedOutput).toBe(`${s.answers.join(' ')} <eos>`);
      expect(s.maxNewTokens).toBeLessThanOrEqual(tokenizer.encode(s.expectedOutput).length + 4);
      checkSample(s, true);
      expect(generateSample({ task, length: 300, seed: 5, index: 2, tokenizer, format: SYMBOLIC_FORMAT })).toEqual(s);
    });
  }

  it('task semantics: multivalue in haystack order, multiquery in asked order, vt chain, cwe/fwe top-3', () => {
    const g = (task: string) => generateSample({ task, length: 400, seed: 9, index: 0, tokenizer, format: SYMBOLIC_FORMAT });
    const words = (s: RulerSample) => s.haystack.split(' ');
    const mv = g('niah_multivalue');
    const key = mv.question.split(' ')[1];
    expect(mv.question).toBe(`Q ${key} A`);
    const hw = words(mv);
    const valuesInOrder = hw.flatMap((w, i) => (w === key ? [hw[i + 1]] : []));
    expect(valuesInOrder).toEqual(mv.answers);
    expect(mv.answers).toHaveLength(4);

    const mq = g('niah_multiquery');
    const asked = mq.question.split(' ').slice(1, -1);
    expect(asked).toHaveLength(4);
    const qw = words(mq);
    expect(asked.map((k) => qw[qw.indexOf(k) + 1])).toEqual(mq.answers);

    const vt = g('vt');
    const value = vt.question.split(' ')[1];
    const vw = words(vt);
    expect(vw[vw.indexOf(vt.answers[0]) + 1]).toBe(value);
    for (let i = 1; i < 5; i++) expect(vw[vw.indexOf(vt.answers[i]) + 1]).toBe(vt.answers[i - 1]);
    // scattered in chain order
    const at = vt.answers.map((v) => vw.indexOf(v));
    expect(at).toEqual([...at].sort((a, b) => a - b));

    for (const [task, cls] of [['cwe', 'k'], ['fwe', 'v']] as const) {
      const s = g(task);
      expect(words(s).every((w) => w.startsWith(cls))).toBe(true);
      const counts = new Map<string, number>();
      for (const w of words(s)) counts.set(w, (counts.get(w) ?? 0) + 1);
      const ranked = [...counts.entries()].sort((a, b) => b[1] - a[1]);
      expect(ranked.slice(0, 3).map(([w]) => w)).toEqual(s.answers);
      expect(ranked[2][1]).toBeGreaterThan(ranked[3][1]);
    }

    const one = g('niah_single_1');
    expect(one.haystack.split(' ').filter((w) => w.startsWith('f')).slice(0, 20).join(' ')).toMatch(/^f0 f1 f2 f3 f4 f5 f6 f7 f8 f9 f0/);
    const three = g('niah_single_3');
    expect(words(three).filter((w) => w.startsWith('k')).length).toBeGreaterThan(3); // noise key tokens
  });
});

describe('RULER metrics', () => {
  it('string_match_all is the fraction of references contained; string_match_part the best one', () => {
    expect(scorePrediction('string_match_all', 'The numbers are 1234567 and 7654321.', ['1234567', '7654321', '1111111', '2222222'])).toBe(0.5);
    expect(scorePrediction('string_match_all', 'ABCDE, FGHIJ', ['abcde', 'fghij'])).toBe(1);
    expect(scorePrediction('string_match_part', 'It was Ada Holm.', ['Ada Holm', 'Holm'])).toBe(1);
    expect(scorePrediction('string_match_part', 'Holm, I think', ['Ada Holm', 'Holm'])).toBe(1);
    expect(scorePrediction('string_match_part', 'nobody', ['Ada Holm', 'Holm'])).toBe(0);
    // symbolic: whole tokens only, cut at answer_end
    expect(scorePrediction('string_match_all', cutPrediction('v12 v3 <eos> v1', ['<eos>']), ['v1', 'v3'], { tokens: true })).toBe(0.5);
  });

  it('frequencyList: exact length, strictly ordered top three above the rest', () => {
    for (const units of [10, 37, 500, 3000]) {
      const { words, top } = frequencyList(new Rng(units), Array.from({ length: 60 }, (_, i) => `w${i}`), units);
      expect(words).toHaveLength(units);
      const c = (w: string) => words.filter((x) => x === w).length;
      const rest = Math.max(...[...new Set(words)].filter((w) => !top.includes(w)).map(c));
      expect(c(top[0])).toBeGreaterThan(c(top[1]));
      expect(c(top[1])).toBeGreaterThan(c(top[2]));
      expect(c(top[2])).toBeGreaterThan(rest);
    }
  });
});
