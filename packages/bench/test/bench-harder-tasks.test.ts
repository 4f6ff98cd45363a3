import type { HfTokenizer } from '@draft/runtime';
import { beforeAll, describe, expect, it } from 'vitest';
import { availableTasks, defaultTasks, EXTRA_TASKS, generateSample, RULER_TASKS, type TaskFormatV1, validateTaskFormat } from '../src/index.js';
import { fixtureTokenizer, symbolicTaskFormat } from './bench-fixtures.js';

let tokenizer: HfTokenizer;
beforeAll(async () => {
  tokenizer = await fixtureTokenizer();
});

/** The fixture format's templates: vt_assign `{var} {value}`, vt_chain `{var} {prev}`, vt_question `V {value} A`. */
const SYMBOLIC: TaskFormatV1 = validateTaskFormat(symbolicTaskFormat(RULER_TASKS.filter((t) => t !== 'qa'), { notes: 'test format' }));

/**
 * An independent resolver of variable chains: every variable whose assignment leads, hop by hop, to `value`.
 * `edges` maps a variable to what it is assigned (a value or another variable).
 */
function resolveChain(edges: Map<string, string>, value: string): string[] {
  const out: string[] = [];
  let frontier = [value];
  while (frontier.length > 0) {
    const next = [...edges.entries()].filter(([, rhs]) => frontier.includes(rhs)).map(([v]) => v);
    out.push(...next);
    frontier = next;
  }
  return out;
}

describe('task lists', () => {
  it('the extra tasks are available but not in the default list', () => {
    expect(availableTasks()).toEqual([...RULER_TASKS, ...EXTRA_TASKS]);
    expect(defaultTasks()).toEqual([...RULER_TASKS]);
    // symbolic: vt_hops_N ride on the format's vt templates; qa_indirect needs natural text
    expect(availableTasks(SYMBOLIC)).toEqual([...RULER_TASKS.filter((t) => t !== 'qa'), 'vt_hops_2', 'vt_hops_3', 'vt_hops_4']);
    expect(() => generateSample({ task: 'qa_indirect', length: 400, seed: 0, index: 0, tokenizer, format: SYMBOLIC })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
  });
});

describe('vt_hops_N: a chain of N hops next to a distractor chain of N hops', () => {
  for (const hops of [2, 3, 4]) {
    it(`natural, ${hops} hops`, () => {
      const s = generateSample({ task: `vt_hops_${hops}`, length: 800, seed: 3, index: hops, tokenizer });
      const edges = new Map([...s.haystack.matchAll(/VAR ([A-Z]{5}) = (?:VAR )?([A-Z]{5}|\d{5})\./g)].map((m) => [m[1], m[2]]));
      // two chains of hops + 1 variables each, 2 values
      expect(edges.size).toBe(2 * (hops + 1));
      const values = [...edges.values()].filter((v) => /^\d+$/.test(v));
      expect(values).toHaveLength(2);
      const asked = /assigned the value (\d{5})/.exec(s.question)?.[1] as string;
      expect(values).toContain(asked);
      expect(resolveChain(edges, asked)).toEqual(s.answers);
      expect(s.answers).toHaveLength(hops + 1);
      // the distractor chain resolves to the other variables
      const other = values.find((v) => v !== asked) as string;
      expect(resolveChain(edges, other)).toHaveLength(hops + 1);
      expect(resolveChain(edges, other).some((v) => s.answers.includes(v))).toBe(false);
      expect(s.input).toContain(`${hops + 1} variables are assigned the value ${asked}`);
      expect(s.insertions.map((i) => i.text)).toEqual(s.answers.map((v, i) => (i === 0 ? `VAR ${v} = ${asked}.` : `VAR ${v} = VAR ${s.answers[i - 1]}.`)));
      expect(generateSample({ task: `vt_hops_${hops}`, length: 800, seed: 3, index: hops, tokenizer })).toEqual(s);
    });

    it(`symbolic, ${hops} hops`, () => {
      const s = generateSample({ task: `vt_hops_${hops}`, length: 300, seed: 1, index: 0, tokenizer, format: SYMBOLIC });
      const w = s.haystack.split(' ');
      // facts are the adjacent pairs (key var, value-or-key): with the fixture's templates `{var} {value}` / `{var} {prev}`
      const edges = new Map<string, string>();
      for (let i = 0; i + 1 < w.length; i++) if (w[i].startsWith('k') && /^[kv]\d+$/.test(w[i + 1])) edges.set(w[i], w[i + 1]);
      const asked = s.question.split(' ')[1];
      expect(s.question).toBe(`V ${asked} A`);
      expect(resolveChain(edges, asked)).toEqual(s.answers);
      expect(s.answers).toHaveLength(hops + 1);
      expect(s.expectedOutput).toBe(`${s.answers.join(' ')} <eos>`);
      const otherValues = [...edges.values()].filter((v) => v.startsWith('v') && v !== asked);
      expect(otherValues).toHaveLength(1);
      expect(resolveChain(edges, otherValues[0])).toHaveLength(hops + 1);
    });
  }

  it('hand-checked sample (symbolic, 3 hops, seed 0, 100 tokens)', () => {
    // Read by hand from the generated text "f27 f14 k0 v4 k13 k0 f23 f39 f6 k28 v8 k21 k13 f39 … k8 k28 k12 k21 k24 k8 … k26 k24 V v4 A":
    // k0 ← v4, k13 ← k0, k21 ← k13, k12 ← k21 (the asked chain); k28 ← v8, k8 ← k28, k24 ← k8, k26 ← k24 (distractor).
    const s = generateSample({ task: 'vt_hops_3', length: 100, seed: 0, index: 0, tokenizer, format: SYMBOLIC });
    expect(s.question).toBe('V v4 A');
    expect(s.answers).toEqual(['k0', 'k13', 'k21', 'k12']);
    for (const pair of ['k0 v4', 'k13 k0', 'k21 k13', 'k12 k21', 'k28 v8', 'k8 k28', 'k24 k8', 'k26 k24']) expect(` ${s.haystack} `).toContain(` ${pair} `);
  });
});

describe('qa_indirect: the answer document is named only through a bridge document', () => {
  it('resolves person → city → founder; the question names neither the city nor the founder', () => {
    for (let index = 0; index < 5; index++) {
      const s = generateSample({ task: 'qa_indirect', length: 1200, seed: 2, index, tokenizer });
      const q = /^Who founded the (.+) in the city where (.+) lives\?$/.exec(s.question);
      expect(q, s.question).not.toBeNull();
      const [, institution, person] = q as RegExpExecArray;
      const lives = [...s.haystack.matchAll(/Document: (\w+ \w+) has lived in (\w+) for many years\./g)];
      const founded = [...s.haystack.matchAll(/Document: The (.+?) of (\w+) was founded by (\w+ \w+)\./g)];
      const city = lives.filter((m) => m[1] === person).map((m) => m[2]);
      expect(city).toHaveLength(1);
      const founders = founded.filter((m) => m[1] === institution && m[2] === city[0]).map((m) => m[3]);
      expect(founders).toEqual([s.answers[0]]);
      expect(s.answers[1]).toBe(s.answers[0].split(' ')[1]);
      // indirect: the question shares neither the city nor the founder with the answer's document
      expect(s.question).not.toContain(city[0]);
      expect(s.question).not.toContain(s.answers[1]);
      // distractors: the same institution kind in other cities, other people in other cities
      expect(founded.filter((m) => m[1] === institution && m[2] !== city[0]).length).toBeGreaterThanOrEqual(3);
      expect(lives.filter((m) => m[1] !== person).length).toBeGreaterThanOrEqual(3);
      expect(s.metric).toBe('string_match_part');
    }
  });

  it('hand-checked sample (seed 0, index 0, 1200 tokens)', () => {
    // Read by hand: "Pablo Dunmore has lived in Larkfield", "The paper mill of Larkfield was founded by Irene Castell";
    // distractors "The paper mill of Fairhaven … Lorenzo Holm", "… of Eastwick … Rosa Bianchi", "… of Glenrock … Felix Quist".
    const s = generateSample({ task: 'qa_indirect', length: 1200, seed: 0, index: 0, tokenizer });
    expect(s.question).toBe('Who founded the paper mill in the city where Pablo Dunmore lives?');
    expect(s.answers).toEqual(['Irene Castell', 'Castell']);
    expect(s.haystack).toContain('Document: Pablo Dunmore has lived in Larkfield for many years.');
    expect(s.haystack).toContain('Document: The paper mill of Larkfield was founded by Irene Castell.');
    expect(s.haystack).toContain('Document: The paper mill of Fairhaven was founded by Lorenzo Holm.');
  });
});
