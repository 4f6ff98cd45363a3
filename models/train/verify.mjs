// Check the exported trained models through onnxruntime-node and @huggingface/tokenizers 0.2.0:
//   node models/train/verify.mjs [draft target]
// For every golden.json case (one prompt per task at 256 and 1024 tokens): the tokenizer encodes the prompt
// text to `length` ids without <unk> and decodes back to the text; the ORT prefill logits match torch
// (tolerance in golden.json); the ORT greedy continuation with a KV cache loop equals torch's greedy ids.
// Also reports the ONNX answers' string_match_all / exact vs the task reference (a subset check of accuracy).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const modelsDir = join(here, '..');
const require = createRequire(join(modelsDir, 'package.json'));
const ort = require('onnxruntime-node');
const { Tokenizer } = await import(join(modelsDir, 'node_modules', '@huggingface', 'tokenizers', 'dist', 'tokenizers.mjs'));

const names = process.argv.slice(2).length ? process.argv.slice(2) : ['draft', 'target'];
let failures = 0;
const check = (ok, msg) => {
  if (!ok) console.log(`FAIL ${msg}`);
  if (!ok) failures++;
};
const i64 = (a) => new ort.Tensor('int64', BigInt64Array.from(a.map(BigInt)), [1, a.length]);
const argmax = (row) => {
  let b = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[b]) b = i;
  return b;
};

for (const name of names) {
  const dir = join(modelsDir, name);
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  const golden = JSON.parse(readFileSync(join(dir, 'golden.json'), 'utf8'));
  const tok = new Tokenizer(JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')), JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8')));
  const session = await ort.InferenceSession.create(join(dir, 'onnx', 'model.onnx'), { intraOpNumThreads: 1, interOpNumThreads: 1 });
  const L = config.num_hidden_layers, KV = config.num_key_value_heads, HD = config.head_dim, V = config.vocab_size;
  const eos = golden.eos;
  async function step(ids, past, pos0) {
    const P = past[0].dims[2];
    const feeds = { input_ids: i64(ids), attention_mask: i64(new Array(P + ids.length).fill(1)), position_ids: i64(ids.map((_, j) => pos0 + j)) };
    for (let i = 0; i < L; i++) {
      feeds[`past_key_values.${i}.key`] = past[2 * i];
      feeds[`past_key_values.${i}.value`] = past[2 * i + 1];
    }
    const out = await session.run(feeds);
    const S = ids.length;
    const present = [];
    for (let i = 0; i < L; i++) present.push(out[`present.${i}.key`], out[`present.${i}.value`]);
    return { last: out.logits.data.subarray((S - 1) * V, S * V), present };
  }
  let same = 0, ex = 0, part = 0, maxd = 0, nf = 0, exf = 0;
  const rows = [];
  const t0 = Date.now();
  for (const c of golden.cases) {
    const enc = tok.encode(c.text).ids;
    check(enc.length === c.length && !enc.includes(0), `${name} ${c.task}@${c.length}: tokenizer gives ${enc.length} ids (unk: ${enc.includes(0)})`);
    check(tok.decode(enc.slice(0, 50), { skip_special_tokens: true }) === c.text.split(' ').slice(0, 50).join(' '), `${name} ${c.task}: decode round trip`);
    const empty = [];
    for (let i = 0; i < 2 * L; i++) empty.push(new ort.Tensor('float32', new Float32Array(0), [1, KV, 0, HD]));
    let r = await step(enc, empty, 0);
    const d = Math.max(...c.prefill_last_logits_first16.map((x, i) => Math.abs(x - r.last[i])));
    maxd = Math.max(maxd, d);
    check(d <= golden.tolerance, `${name} ${c.task}@${c.length}: prefill logits max|diff| ${d.toExponential(2)}`);
    const gen = [];
    let nxt = argmax(r.last);
    for (let t = 0; t < golden.max_new_tokens; t++) {
      gen.push(nxt);
      if (nxt === eos || t === golden.max_new_tokens - 1) break;
      r = await step([nxt], r.present, c.length + t);
      nxt = argmax(r.last);
    }
    const ok = JSON.stringify(gen) === JSON.stringify(c.greedy);
    check(ok, `${name} ${c.task}@${c.length}: ORT greedy ${JSON.stringify(gen)} vs torch ${JSON.stringify(c.greedy)}`);
    if (ok) same++;
    const body = gen.filter((x) => x !== eos);
    const text = body.length ? tok.decode(body, { skip_special_tokens: true }) : ''; // decode([]) throws in 0.2.0
    const refs = c.answer.split(' ');
    const words = new Set(text.split(' '));
    part += refs.filter((w) => words.has(w)).length / refs.length;
    // niah_multivalue is a set (RULER scores it order-free): any order of the values is exact
    const sorted = (s) => s.split(' ').sort().join(' ');
    const exact = c.task === 'niah_multivalue' ? sorted(text) === sorted(c.answer) : text === c.answer;
    ex += exact ? 1 : 0;
    if (c.task.startsWith('niah')) { nf++; exf += exact ? 1 : 0; }
    rows.push(`${c.task}@${c.length}:${exact ? 'ok' : 'x'}`);
  }
  const n = golden.cases.length;
  console.log(`${name}: ${same}/${n} ORT greedy == torch greedy, prefill max|dlogits| ${maxd.toExponential(2)}; ONNX answers: exact ${(100 * ex / n).toFixed(0)}%, string_match_all ${(100 * part / n).toFixed(0)}% over ${n} cases; niah family exact ${exf}/${nf} (${Date.now() - t0} ms)`);
  console.log(`  ${rows.join(' ')}`);
}
console.log(failures === 0 ? 'ALL OK' : `${failures} FAILURE(S)`);
process.exit(failures === 0 ? 0 : 1);
