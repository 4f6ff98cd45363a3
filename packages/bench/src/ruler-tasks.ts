import { InvalidArgumentError } from '@draft/core';
import { deriveSeed, Rng } from './rng.js';
import { fillTemplate, type HaystackKind, parseHaystackKind, type TaskFormatV1 } from './task-format.js';
import { ADJECTIVES, CITIES, FIRST_NAMES, INSTITUTIONS, NOISE_SENTENCES, NOUNS, PEOPLE, SURNAMES, TIMES, VERBS } from './words.js';

/** RULER's task list (ALGORITHMS.md, Evaluation conventions). */
export const RULER_TASKS = Object.freeze([
  'niah_single_1',
  'niah_single_2',
  'niah_single_3',
  'niah_multikey_1',
  'niah_multikey_2',
  'niah_multikey_3',
  'niah_multivalue',
  'niah_multiquery',
  'vt',
  'cwe',
  'fwe',
  'qa',
]);

/**
 * Harder tasks beyond RULER's list, run only when asked for by name: `vt_hops_2..4` a variable chain of
 * 2–4 hops next to a distractor chain of the same shape with another value (the answer is the chain that
 * starts at the asked value); `qa_indirect` a question that names the answer's document only through a second
 * document (the founder of an institution "in the city where {person} lives"), so the question shares no
 * words with the answer's needle beyond the institution kind, which every distractor document shares too.
 */
export const EXTRA_TASKS = Object.freeze(['vt_hops_2', 'vt_hops_3', 'vt_hops_4', 'qa_indirect']);

/** Hops of a `vt_hops_N` task, or undefined. */
function vtHops(task: string): number | undefined {
  const m = /^vt_hops_([234])$/.exec(task);
  return m ? Number(m[1]) : undefined;
}

export type RulerMetric = 'string_match_all' | 'string_match_part';

/** Per-task generation caps of the paper (RULER): niah 128, vt 64, cwe 120, fwe 64, qa 64. */
export function taskMaxNewTokens(task: string): number {
  if (task.startsWith('niah')) return 128;
  if (task === 'cwe') return 120;
  return 64;
}

/** Anything with an `encode` (the target's tokenizer); lengths are counted in its tokens. */
export interface LengthTokenizer {
  encode(text: string): number[];
}

/** A fact placed in the haystack: its text, the depth asked for and where it landed. */
export interface Insertion {
  text: string;
  /** Requested depth, fraction of the haystack (0 = start, 1 = end). */
  depth: number;
  /** Tokens of the haystack before the fact (target tokenizer, measured). */
  tokenOffset: number;
}

export interface RulerSample {
  task: string;
  style: 'natural' | 'symbolic';
  index: number;
  /** The seed this sample was generated from (`deriveSeed(seed, task, length, index)`). */
  seed: number;
  /** Requested prompt length in target tokens. */
  length: number;
  /** Actual prompt length in target tokens. */
  tokens: number;
  /** The whole prompt. */
  input: string;
  /** The haystack with the inserted facts (a substring of `input`). */
  haystack: string;
  /** Tokens of `haystack` (measured the same way as `Insertion.tokenOffset`). */
  haystackTokens: number;
  question: string;
  /** Reference strings the metric looks for. */
  answers: string[];
  /** Symbolic: the exact expected output (answer + join + answer_end). Natural: the answers joined by ', '. */
  expectedOutput: string;
  metric: RulerMetric;
  /** Facts carrying the answer, in haystack order (empty for cwe/fwe). */
  insertions: Insertion[];
  maxNewTokens: number;
  /** Generation stops at this string (symbolic: answer_end). */
  stopStrings: string[];
}

export interface GenerateSampleOptions {
  task: string;
  /** Prompt length in target tokens (±2%). */
  length: number;
  seed: number;
  index: number;
  tokenizer: LengthTokenizer;
  /** Symbolic format (task_format.json); natural templates when absent. */
  format?: TaskFormatV1;
}

/** One placed fact: inserted before filler unit `round(depth · units)`. */
interface Fact {
  text: string;
  depth: number;
  /** Counted as an answer-carrying insertion (distractors are not). */
  record: boolean;
}

/** A task instance before length fitting: everything but the filler amount is fixed. */
interface Layout {
  /** Text before the haystack (natural instructions). */
  prefix: string;
  /** Between prefix/haystack units. */
  separator: string;
  /** Filler units for a unit count (prefix-stable), or the whole haystack for list tasks. */
  units: (count: number) => string[];
  facts: Fact[];
  /** Text after the haystack: join + question (+ answer prefix). */
  suffix: string;
  question: string;
  answers: string[];
  expectedOutput: string;
  metric: RulerMetric;
  maxNewTokens: number;
  stopStrings: string[];
  /** Fewest units the layout is valid for. */
  minUnits: number;
  /** Whether the last filler unit may be cut short (natural text) to hit the length. */
  splittable: boolean;
}

/**
 * Tasks available for a format: all of RULER's and the extra ones for natural; for symbolic the file's
 * `tasks`, plus `vt_hops_N` where it lists `vt` (they use its `vt_assign` / `vt_chain` templates).
 */
export function availableTasks(format?: TaskFormatV1): string[] {
  if (!format) return [...RULER_TASKS, ...EXTRA_TASKS];
  return [...RULER_TASKS, ...EXTRA_TASKS].filter((t) => format.tasks.includes(t) || (vtHops(t) !== undefined && format.tasks.includes('vt')));
}

/** The tasks a run uses when none are named: RULER's (the extra tasks are asked for by name). */
export function defaultTasks(format?: TaskFormatV1): string[] {
  return availableTasks(format).filter((t) => RULER_TASKS.includes(t));
}

/**
 * Generates one RULER-style sample whose prompt is `length` target tokens (±2%), reproducibly from
 * `(seed, task, length, index)`. Facts are placed at seeded depths; `insertions` report where they landed.
 */
export function generateSample(options: GenerateSampleOptions): RulerSample {
  const { task, length, index, tokenizer, format } = options;
  if (!RULER_TASKS.includes(task) && !EXTRA_TASKS.includes(task)) throw new InvalidArgumentError({ argument: 'task', value: task, expected: [...RULER_TASKS, ...EXTRA_TASKS].join(', ') });
  if (format && !availableTasks(format).includes(task)) {
    throw new InvalidArgumentError({ argument: 'task', value: task, expected: `one of the tasks in task_format.json (${format.tasks.join(', ')})` });
  }
  const seed = deriveSeed(options.seed, task, length, index);
  const layout = format ? symbolicLayout(task, seed, format, tokenizer) : naturalLayout(task, seed);
  const count = (t: string) => tokenizer.encode(t).length;
  // The filler amount is (u whole units, plus the first w characters of the next one): fit it to the length.
  const assemble = (u: number, w = 0) => assembleLayout(layout, u, w);
  const total = (u: number, w = 0) => count(assemble(u, w).input);

  // 1. proportional steps on whole units.
  let u = layout.minUnits;
  let tokens = total(u);
  const fixed = tokens;
  for (let i = 0; i < 8 && Math.abs(tokens - length) > length * 0.005; i++) {
    const perUnit = Math.max((tokens - fixed) / Math.max(u - layout.minUnits, 1), 0.5);
    const next = Math.max(layout.minUnits, Math.round(u + (length - tokens) / Math.max(perUnit, (fixed / layout.minUnits) * 0.25)));
    if (next === u) break;
    u = next;
    tokens = total(u);
  }
  // 2. the largest u not above the length.
  while (tokens > length && u > layout.minUnits) tokens = total(--u);
  for (let next = total(u + 1); next <= length; next = total(u + 1)) {
    u++;
    tokens = next;
  }
  // 3. the first w characters of the next unit (binary search: tokens grow with w).
  let best = { u, w: 0, tokens };
  let lo = 0;
  // Symbolic units are vocabulary tokens: never split one (whole units are exact there anyway).
  let hi = layout.splittable ? layout.units(u + 1)[u].length : 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (total(u, mid) <= length) lo = mid;
    else hi = mid;
  }
  for (const w of layout.splittable ? [lo, hi] : []) {
    const t = total(u, w);
    if (Math.abs(t - length) < Math.abs(best.tokens - length)) best = { u, w, tokens: t };
  }
  const whole = total(u + 1);
  if (Math.abs(whole - length) < Math.abs(best.tokens - length)) best = { u: u + 1, w: 0, tokens: whole };
  tokens = best.tokens;
  if (Math.abs(tokens - length) > length * 0.02) {
    throw new InvalidArgumentError({ argument: 'length', value: length, expected: `a length this task can reach (${task} came to ${tokens} tokens)` });
  }
  const built = assemble(best.u, best.w);
  const prefixTokens = count(layout.prefix);
  const insertions = built.facts.map((f) => ({
    text: f.text,
    depth: f.depth,
    tokenOffset: count(layout.prefix + built.haystackUnits.slice(0, f.unit).join(layout.separator) + (f.unit > 0 ? layout.separator : '')) - prefixTokens,
  }));
  return {
    task,
    style: format ? 'symbolic' : 'natural',
    index,
    seed,
    length,
    tokens,
    input: built.input,
    haystack: built.haystack,
    haystackTokens: count(layout.prefix + built.haystack) - prefixTokens,
    question: layout.question,
    answers: layout.answers,
    expectedOutput: layout.expectedOutput,
    metric: layout.metric,
    insertions,
    maxNewTokens: layout.maxNewTokens,
    stopStrings: layout.stopStrings,
  };
}

function assembleLayout(layout: Layout, u: number, w: number) {
  let filler = layout.units(u + (w > 0 ? 1 : 0));
  if (w > 0) filler = [...filler.slice(0, u), filler[u].slice(0, w)];
  // Place each fact where its depth falls in character space (characters track tokens closely), facts in
  // depth order, so that a fact's offset counts the facts before it too.
  const sep = layout.separator.length;
  const facts = layout.facts.map((f, order) => ({ ...f, order })).sort((a, b) => a.depth - b.depth || a.order - b.order);
  const totalChars = filler.reduce((a, x) => a + x.length + sep, 0) + facts.reduce((a, f) => a + f.text.length + sep, 0);
  const haystackUnits: string[] = [];
  const placed: { text: string; depth: number; unit: number }[] = [];
  let chars = 0;
  let next = 0;
  for (let i = 0; i <= filler.length; i++) {
    while (next < facts.length && (i === filler.length || chars + (filler[i].length + sep) / 2 > facts[next].depth * totalChars)) {
      const f = facts[next++];
      if (f.record) placed.push({ text: f.text, depth: f.depth, unit: haystackUnits.length });
      haystackUnits.push(f.text);
      chars += f.text.length + sep;
    }
    if (i < filler.length) {
      haystackUnits.push(filler[i]);
      chars += filler[i].length + sep;
    }
  }
  const haystack = haystackUnits.join(layout.separator);
  return { haystackUnits, haystack, facts: placed, input: layout.prefix + haystack + layout.suffix };
}

/** Sorted random depths in [lo, hi]. */
function depths(rng: Rng, count: number, lo = 0.05, hi = 0.95): number[] {
  return Array.from({ length: count }, () => lo + (hi - lo) * rng.next()).sort((a, b) => a - b);
}

/**
 * Word counts for cwe/fwe over `units` words: three frequent words with clearly ordered counts (2 : 1.5 : 1)
 * above every other word's count. Returns the shuffled list and the top three, most frequent first.
 */
export function frequencyList(rng: Rng, pool: readonly string[], units: number): { words: string[]; top: string[] } {
  const chosen = rng.shuffle(pool);
  const top = chosen.slice(0, 3);
  const rest = chosen.slice(3);
  let others = Math.max(1, Math.min(rest.length, Math.floor(units / 8)));
  let each = Math.max(1, Math.floor((0.7 * units) / others));
  let s = 0;
  for (;;) {
    s = Math.floor((units - others * each) / 4.5);
    if (s >= Math.max(each + 1, 2) || (each === 1 && others === 1)) break;
    if (each > 1) each--;
    else others--;
  }
  const counts = [0, Math.round(1.5 * s), s];
  counts[0] = units - others * each - counts[1] - counts[2];
  const words: string[] = [];
  top.forEach((w, i) => {
    for (let c = 0; c < counts[i]; c++) words.push(w);
  });
  for (let i = 0; i < others; i++) for (let c = 0; c < each; c++) words.push(rest[i]);
  return { words: rng.shuffle(words), top };
}

// ---------------------------------------------------------------------------------------------------------
// Natural-language templates (RULER's, shortened where the small models need it).

function essaySentence(rng: Rng): string {
  const a = rng.pick(ADJECTIVES);
  const n = rng.pick(NOUNS);
  const n2 = rng.pick(NOUNS);
  switch (rng.int(4)) {
    case 0:
      return `${cap(rng.pick(PEOPLE))} ${rng.pick(VERBS)} the ${a} ${n} ${rng.pick(TIMES)}.`;
    case 1:
      return `The ${n} by the ${n2} was ${a}, and nobody in the village spoke of it.`;
    case 2:
      return `${cap(rng.pick(TIMES))}, ${rng.pick(PEOPLE)} ${rng.pick(VERBS)} a ${a} ${n} near the ${n2}.`;
    default:
      return `It is said that the ${a} ${n} once stood where the ${n2} is now.`;
  }
}

function cap(text: string): string {
  return text[0].toUpperCase() + text.slice(1);
}

function naturalKey(rng: Rng): string {
  return `${rng.pick(ADJECTIVES)}-${rng.pick(NOUNS)}`;
}

function naturalNumber(rng: Rng): string {
  return String(1_000_000 + rng.int(9_000_000));
}

function uuid(rng: Rng): string {
  const hex = (n: number) => Array.from({ length: n }, () => '0123456789abcdef'[rng.int(16)]).join('');
  return `${hex(8)}-${hex(4)}-${hex(4)}-${hex(4)}-${hex(12)}`;
}

function distinct(rng: Rng, make: (r: Rng) => string, count: number): string[] {
  const out = new Set<string>();
  for (let guard = 0; out.size < count && guard < count * 100; guard++) out.add(make(rng));
  return [...out];
}

function naturalLayout(task: string, seed: number): Layout {
  const rng = new Rng(seed);
  const fillerSeed = deriveSeed(seed, 'filler');
  const essay = (count: number) => {
    const r = new Rng(fillerSeed);
    return Array.from({ length: count }, () => essaySentence(r));
  };
  const noise = (count: number) => Array.from({ length: count }, (_, i) => NOISE_SENTENCES[i % NOISE_SENTENCES.length]);
  const base = { separator: ' ', splittable: true, stopStrings: [] as string[], metric: 'string_match_all' as RulerMetric, maxNewTokens: taskMaxNewTokens(task) };

  if (task.startsWith('niah')) {
    const uuids = task === 'niah_single_3' || task === 'niah_multikey_3';
    const value = uuids ? uuid : naturalNumber;
    const kind = uuids ? 'UUID' : 'number';
    const needle = (k: string, v: string) => `One of the special magic ${kind}s for ${k} is: ${v}.`;
    const numKeys = task === 'niah_multiquery' ? 4 : 1;
    const distractorCount = task === 'niah_multikey_1' ? 3 : 0;
    const keys = distinct(rng, naturalKey, numKeys + distractorCount);
    const queried = keys.slice(0, numKeys);
    const numValues = task === 'niah_multivalue' ? 4 : 1;
    const values = distinct(rng, value, queried.length * numValues);
    const facts: Fact[] = [];
    const ds = depths(rng, values.length);
    const order = rng.shuffle(values.map((_, i) => i));
    // Multi-query needles sit at random depths in random order; multi-value values in haystack order.
    values.forEach((v, i) => {
      const keyIndex = Math.floor(i / numValues);
      facts.push({ text: needle(queried[keyIndex], v), depth: ds[order[i]], record: true });
    });
    for (let i = 0; i < distractorCount; i++) facts.push({ text: needle(keys[numKeys + i], value(rng)), depth: rng.next(), record: false });
    // Haystack of needles (RULER multikey_2/3): every filler unit is a needle with another key.
    const needleHaystack = task === 'niah_multikey_2' || task === 'niah_multikey_3';
    const needleUnits = (count: number) => {
      const r = new Rng(fillerSeed);
      const used = new Set(queried);
      return Array.from({ length: count }, () => {
        let k = naturalKey(r);
        for (let g = 0; used.has(k) && g < 100; g++) k = `${naturalKey(r)}-${r.int(1000)}`;
        used.add(k);
        return needle(k, value(r));
      });
    };
    const units = task === 'niah_single_1' ? noise : needleHaystack ? needleUnits : essay;
    // multivalue: values in haystack order; multiquery: in asked order.
    const answersInOrder =
      task === 'niah_multivalue'
        ? values
            .map((v, i) => ({ v, depth: facts[i].depth }))
            .sort((a, b) => a.depth - b.depth)
            .map((a) => a.v)
        : values;
    const question =
      task === 'niah_multivalue'
        ? `What are all the special magic ${kind}s for ${queried[0]} mentioned in the provided text?`
        : task === 'niah_multiquery'
          ? `What are all the special magic ${kind}s for ${queried.slice(0, 3).join(', ')} and ${queried[3]} mentioned in the provided text?`
          : `What is the special magic ${kind} for ${queried[0]} mentioned in the provided text?`;
    return {
      ...base,
      prefix: `Some special magic ${kind}s are hidden within the following text. Make sure to memorize it. I will quiz you about the ${kind}s afterwards.\n`,
      units,
      facts,
      suffix: `\n${question}\nAnswer:`,
      question,
      answers: answersInOrder,
      expectedOutput: answersInOrder.join(', '),
      minUnits: 4,
    };
  }
  if (task === 'vt') {
    const vars = distinct(rng, (r) => Array.from({ length: 5 }, () => 'ABCDEFGHIJKLMNOPQRSTUVWXYZ'[r.int(26)]).join(''), 5);
    const value = String(10_000 + rng.int(90_000));
    const ds = depths(rng, vars.length);
    const facts = vars.map((v, i) => ({ text: i === 0 ? `VAR ${v} = ${value}.` : `VAR ${v} = VAR ${vars[i - 1]}.`, depth: ds[i], record: true }));
    const question = `Find all variables that are assigned the value ${value} in the text above.`;
    return {
      ...base,
      prefix: 'Memorize and track the chain of variable assignments hidden in the following text.\n',
      units: noise,
      facts,
      suffix: `\nQuestion: ${question}\nAnswer: According to the chain of variable assignments in the text above, 5 variables are assigned the value ${value}, they are:`,
      question,
      answers: vars,
      expectedOutput: vars.join(' '),
      minUnits: 4,
    };
  }
  const hops = vtHops(task);
  if (hops !== undefined) {
    const letters = (r: Rng) => Array.from({ length: 5 }, () => 'ABCDEFGHIJKLMNOPQRSTUVWXYZ'[r.int(26)]).join('');
    const names = distinct(rng, letters, 2 * (hops + 1));
    const [value, other] = distinct(rng, (r) => String(10_000 + r.int(90_000)), 2);
    const chain = (vars: string[], v: string, record: boolean): Fact[] => {
      const ds = depths(rng, vars.length);
      return vars.map((x, i) => ({ text: i === 0 ? `VAR ${x} = ${v}.` : `VAR ${x} = VAR ${vars[i - 1]}.`, depth: ds[i], record }));
    };
    const vars = names.slice(0, hops + 1);
    const question = `Find all variables that are assigned the value ${value} in the text above.`;
    return {
      ...base,
      prefix: 'Memorize and track the chains of variable assignments hidden in the following text.\n',
      units: noise,
      facts: [...chain(vars, value, true), ...chain(names.slice(hops + 1), other, false)],
      suffix: `\nQuestion: ${question}\nAnswer: According to the chains of variable assignments in the text above, ${hops + 1} variables are assigned the value ${value}, they are:`,
      question,
      answers: vars,
      expectedOutput: vars.join(' '),
      minUnits: 4,
    };
  }
  if (task === 'qa_indirect') {
    // Bridge: "{person} lives in {city}." Gold: "The {institution} of {city} was founded by {founder}."
    // Distractors: the same institution kind in other cities, and other people living in other cities, so
    // neither the institution nor the person alone finds the answer.
    const [city, ...otherCities] = rng.sample(CITIES, 4);
    const institution = rng.pick(INSTITUTIONS);
    const [person, ...otherPeople] = distinct(rng, (r) => `${r.pick(FIRST_NAMES)} ${r.pick(SURNAMES)}`, 6);
    const founders = otherPeople.slice(0, 3);
    const founder = otherPeople[3];
    const [first, last] = founder.split(' ');
    const [bridgeDepth, goldDepth] = rng.shuffle(depths(rng, 2));
    const facts: Fact[] = [
      { text: `Document: ${person} has lived in ${city} for many years.`, depth: bridgeDepth, record: true },
      { text: `Document: The ${institution} of ${city} was founded by ${founder}.`, depth: goldDepth, record: true },
      ...otherCities.map((c, i) => ({ text: `Document: The ${institution} of ${c} was founded by ${founders[i]}.`, depth: rng.next(), record: false })),
      ...otherCities.map((c, i) => ({ text: `Document: ${founders[(i + 1) % founders.length]} has lived in ${c} for many years.`, depth: rng.next(), record: false })),
    ];
    const docs = (count: number) => {
      const r = new Rng(fillerSeed);
      return Array.from({ length: count }, () => `Document: ${essaySentence(r)} ${essaySentence(r)}`);
    };
    const question = `Who founded the ${institution} in the city where ${person} lives?`;
    return {
      ...base,
      separator: '\n',
      metric: 'string_match_part',
      prefix: 'Answer the question based on the given documents. Only give me the answer and do not output any other words.\n',
      units: docs,
      facts,
      suffix: `\nQuestion: ${question}\nAnswer:`,
      question,
      answers: [founder, last],
      expectedOutput: `${first} ${last}`,
      minUnits: 2,
    };
  }
  if (task === 'cwe' || task === 'fwe') {
    const pool =
      task === 'cwe'
        ? [...new Set([...NOUNS, ...ADJECTIVES, ...VERBS])]
        : distinct(rng, (r) => Array.from({ length: 3 + r.int(3) }, () => 'bcdfghjklmnpqrstvwxz'[r.int(20)] + 'aeiou'[r.int(5)]).join(''), 400);
    const listSeed = deriveSeed(seed, 'list');
    let top: string[] = [];
    const units = (count: number) => {
      const list = frequencyList(new Rng(listSeed), pool, count);
      top = list.top;
      return task === 'cwe' ? list.words.map((w, i) => `${i + 1}. ${w}`) : list.words;
    };
    units(10);
    const question =
      task === 'cwe' ? 'What are the 3 most common words in the above list?' : 'What are the three most frequently appeared words in the above coded text?';
    return {
      ...base,
      prefix:
        task === 'cwe'
          ? 'Below is a numbered list of words. In these words, some appear more often than others. Memorize the ones that appear most often.\n'
          : 'Read the following coded text and track the frequency of each coded word. Find the three most frequently appeared coded words.\n',
      units,
      facts: [],
      suffix:
        task === 'cwe'
          ? `\nQuestion: ${question}\nAnswer: The top 3 words that appear most often in the list are:`
          : `\nQuestion: Do not provide any explanation. ${question}\nAnswer: According to the coded text above, the three most frequently appeared words are:`,
      question,
      answers: top,
      expectedOutput: top.join(', '),
      minUnits: 10,
    };
  }
  // qa: documents, one of which answers the question (string_match_part over the reference names).
  const institution = rng.pick(INSTITUTIONS);
  const city = rng.pick(CITIES);
  const first = rng.pick(FIRST_NAMES);
  const last = rng.pick(SURNAMES);
  const gold = `Document: The ${institution} of ${city} was founded by ${first} ${last}, who ran it for many years. ${essaySentence(rng)}`;
  const docs = (count: number) => {
    const r = new Rng(fillerSeed);
    return Array.from({ length: count }, () => {
      let c = r.pick(CITIES);
      if (c === city) c = CITIES[(CITIES.indexOf(c) + 1) % CITIES.length];
      return `Document: The ${r.pick(INSTITUTIONS)} of ${c} was founded by ${r.pick(FIRST_NAMES)} ${r.pick(SURNAMES)}. ${essaySentence(r)}`;
    });
  };
  const question = `Who founded the ${institution} of ${city}?`;
  return {
    ...base,
    separator: '\n',
    metric: 'string_match_part',
    prefix: 'Answer the question based on the given documents. Only give me the answer and do not output any other words.\n',
    units: docs,
    facts: [{ text: gold, depth: depths(rng, 1)[0], record: true }],
    suffix: `\nQuestion: ${question}\nAnswer:`,
    question,
    answers: [`${first} ${last}`, last],
    expectedOutput: `${first} ${last}`,
    minUnits: 2,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Symbolic format (task_format.json).

/** Tokens the generator leaves in the answer budget beyond the expected output (symbolic tasks). */
export const SYMBOLIC_ANSWER_MARGIN = 4;

function symbolicLayout(task: string, seed: number, f: TaskFormatV1, tokenizer: LengthTokenizer): Layout {
  const rng = new Rng(seed);
  const { filler, key: keyVocab, value: valueVocab } = f.vocabulary;
  const t = f.templates;
  const j = f.join;
  const fillerSeed = deriveSeed(seed, 'filler');
  const needle = (k: string, v: string) => fillTemplate(t.needle, { key: k, value: v });
  const expected = (answerTokens: string[]) => {
    const answer = fillTemplate(t.answer, { values: answerTokens.join(j) });
    return { answer, output: `${answer}${j}${f.answer_end}` };
  };
  const finish = (question: string, answers: string[], facts: Fact[], units: (n: number) => string[], minUnits = 4): Layout => {
    const { output } = expected(answers);
    const outputTokens = tokenizer.encode(output).length;
    return {
      prefix: '',
      separator: ' ',
      units,
      facts,
      suffix: `${j}${question}`,
      question,
      answers,
      expectedOutput: output,
      metric: task === 'qa' ? 'string_match_part' : 'string_match_all',
      maxNewTokens: Math.min(taskMaxNewTokens(task), outputTokens + SYMBOLIC_ANSWER_MARGIN),
      stopStrings: f.answer_end ? [f.answer_end] : [],
      minUnits,
      splittable: false,
    };
  };
  const need = (cls: string, list: readonly string[], count: number) => {
    if (list.length < count) throw new InvalidArgumentError({ argument: 'task_format.json', value: `${list.length} ${cls} words`, expected: `at least ${count} for ${task}` });
  };
  const params = f.params;
  // Filler streams (prefix-stable: unit i does not depend on the count). Without `params`: _1 repeats the first
  // 10 filler words, _2 random filler, _3 random filler + 10% noise key tokens.
  const legacyPattern = filler.slice(0, Math.min(filler.length, 10));
  const cycle = (pattern: readonly string[]) => (n: number) => Array.from({ length: n }, (_, i) => pattern[i % pattern.length]);
  const random = (n: number) => {
    const r = new Rng(fillerSeed);
    return Array.from({ length: n }, () => r.pick(filler));
  };
  const noisy = (pool: readonly string[], exclude: Set<string>, p: number) => {
    const noise = pool.filter((w) => !exclude.has(w));
    return (n: number) => {
      const r = new Rng(fillerSeed);
      return Array.from({ length: n }, () => (noise.length > 0 && r.next() < p ? r.pick(noise) : r.pick(filler)));
    };
  };
  /** The filler stream of a haystack kind, for a sample whose needles use `keys` and `values`. */
  const haystack = (kind: HaystackKind, keys: string[], values: string[]) => {
    if (kind.kind === 'iid') return random;
    if (kind.kind === 'pattern') {
      const r = new Rng(fillerSeed);
      return cycle(Array.from({ length: kind.length }, () => r.pick(filler)));
    }
    return kind.noise === 'value' ? noisy(valueVocab, new Set(values), kind.p) : noisy(keyVocab, new Set(keys), kind.p);
  };
  const declaredHaystack = (name: string | undefined) => (name === undefined ? undefined : parseHaystackKind(name));

  if (task.startsWith('niah') || task === 'qa') {
    const numKeys = task === 'niah_multiquery' ? (params?.multiquery_queries ?? 4) : 1;
    const numValues = task === 'niah_multivalue' ? (params?.multivalue_values ?? 4) : 1;
    const declared = params?.niah_multikey_distractors?.[task];
    const distractors =
      declared !== undefined
        ? Math.max(0, Math.min(declared, keyVocab.length - numKeys))
        : task === 'niah_multikey_1'
          ? 3
          : task === 'niah_multikey_2' || task === 'niah_multikey_3'
            ? Math.min(keyVocab.length - numKeys, 15)
            : 0;
    need('key', keyVocab, numKeys + distractors);
    need('value', valueVocab, numKeys * numValues);
    const keys = rng.sample(keyVocab, numKeys + distractors);
    const queried = keys.slice(0, numKeys);
    const values = rng.sample(valueVocab, numKeys * numValues);
    const ds = depths(rng, values.length);
    const order = rng.shuffle(values.map((_, i) => i));
    const facts: Fact[] = values.map((v, i) => ({ text: needle(queried[Math.floor(i / numValues)], v), depth: ds[order[i]], record: true }));
    const needleValues = [...values];
    // Distractor values never repeat an asked value (that would make the answer ambiguous) and are distinct
    // while the vocabulary allows, as the trained pair's generator draws them.
    const spare = valueVocab.filter((v) => !values.includes(v));
    const pool = spare.length > 0 ? spare : valueVocab;
    const distractorValues = pool.length >= distractors ? rng.sample(pool, distractors) : Array.from({ length: distractors }, () => rng.pick(pool));
    for (let i = 0; i < distractors; i++) {
      const v = distractorValues[i];
      needleValues.push(v);
      facts.push({ text: needle(keys[numKeys + i], v), depth: rng.next(), record: false });
    }
    const kind =
      task === 'niah_multikey_3' ? declaredHaystack(params?.niah_multikey_3_haystack) : declaredHaystack(params?.niah_single_haystack?.[task]);
    const units = kind
      ? haystack(kind, keys, needleValues)
      : task === 'niah_single_1'
        ? cycle(legacyPattern)
        : task === 'niah_single_3' || task === 'niah_multikey_3'
          ? noisy(keyVocab, new Set(keys), 0.1)
          : random;
    // multivalue: values in haystack order; multiquery: values in asked (= key) order.
    const answers =
      task === 'niah_multivalue'
        ? facts
            .filter((x) => x.record)
            .map((x, i) => ({ x, v: values[i] }))
            .sort((a, b) => a.x.depth - b.x.depth)
            .map((a) => a.v)
        : values;
    return finish(fillTemplate(t.question, { keys: queried.join(j), key: queried[0] }), answers, facts, units);
  }
  const hops = vtHops(task);
  if (hops !== undefined) {
    // The chain and a distractor chain of the same length with another value (the trained pair's training
    // data had such a second chain, with 3–6 variables); each chain's facts in chain order.
    need('key', keyVocab, 2 * (hops + 1));
    need('value', valueVocab, 2);
    const names = rng.sample(keyVocab, 2 * (hops + 1));
    const [value, other] = rng.sample(valueVocab, 2);
    const chain = (vars: string[], v: string, record: boolean): Fact[] => {
      const ds = depths(rng, vars.length);
      return vars.map((x, i) => ({
        text: i === 0 ? fillTemplate(t.vt_assign, { var: x, value: v }) : fillTemplate(t.vt_chain, { var: x, prev: vars[i - 1] }),
        depth: ds[i],
        record,
      }));
    };
    const vars = names.slice(0, hops + 1);
    return finish(fillTemplate(t.vt_question, { value }), vars, [...chain(vars, value, true), ...chain(names.slice(hops + 1), other, false)], random);
  }
  if (task === 'vt') {
    const numVars = params?.vt_vars ?? 5;
    need('key', keyVocab, numVars);
    const vars = rng.sample(keyVocab, numVars);
    const value = rng.pick(valueVocab);
    const ds = depths(rng, vars.length);
    const facts = vars.map((v, i) => ({
      text: i === 0 ? fillTemplate(t.vt_assign, { var: v, value }) : fillTemplate(t.vt_chain, { var: v, prev: vars[i - 1] }),
      depth: ds[i],
      record: true,
    }));
    return finish(fillTemplate(t.vt_question, { value }), vars, facts, random);
  }
  // cwe (key-class words) / fwe (value-class words): the haystack is only the counted words.
  const pool = task === 'cwe' ? keyVocab : valueVocab;
  need(task === 'cwe' ? 'key' : 'value', pool, 4);
  const listSeed = deriveSeed(seed, 'list');
  const { top } = frequencyList(new Rng(listSeed), pool, 10);
  const units = (n: number) => frequencyList(new Rng(listSeed), pool, n).words;
  return finish(task === 'cwe' ? t.cwe_question : t.fwe_question, top, [], units, 10);
}

/**
 * Exactly `length` target token ids of haystack filler (essay sentences, or random symbolic filler), for
 * benchmarks that need a long input but no question (perf; fidelity where a task prompt would not fit).
 */
export function fillerIds(options: { length: number; seed: number; tokenizer: LengthTokenizer; format?: TaskFormatV1 }): number[] {
  const { length, tokenizer, format } = options;
  const rng = new Rng(deriveSeed(options.seed, 'filler-ids', length));
  const parts: string[] = [];
  let ids: number[] = [];
  for (let chunk = 64; ids.length < length; chunk *= 2) {
    for (let i = 0; i < chunk; i++) parts.push(format ? rng.pick(format.vocabulary.filler) : essaySentence(rng));
    ids = tokenizer.encode(parts.join(' '));
  }
  return ids.slice(0, length);
}
