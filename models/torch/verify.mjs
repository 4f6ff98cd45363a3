// Check that the torch-exported fixture (models/fixtures/torch-llama) reproduces golden.json
// through onnxruntime-node, and that tokenizer.json loads in @huggingface/tokenizers.
// Not a test: run by hand with `node models/torch/verify.mjs`. Exits non-zero on mismatch.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const fixture = join(here, "..", "fixtures", "torch-llama");
const require = createRequire(join(here, "..", "package.json"));
const ort = require("onnxruntime-node");
const { Tokenizer } = await import(join(here, "..", "node_modules", "@huggingface", "tokenizers", "dist", "tokenizers.mjs"));

const config = JSON.parse(readFileSync(join(fixture, "config.json"), "utf8"));
const golden = JSON.parse(readFileSync(join(fixture, "golden.json"), "utf8"));
const L = config.num_hidden_layers;
const KV = config.num_key_value_heads;
const HD = config.head_dim;
const V = config.vocab_size;
const TOL = golden.tolerance.logits_abs;

let failures = 0;
const check = (ok, msg) => {
  console.log(`${ok ? "ok  " : "FAIL"} ${msg}`);
  if (!ok) failures++;
};

// ---------------- tokenizer
const tokenizer = new Tokenizer(
  JSON.parse(readFileSync(join(fixture, "tokenizer.json"), "utf8")),
  JSON.parse(readFileSync(join(fixture, "tokenizer_config.json"), "utf8")),
);
for (const c of golden.cases) {
  const enc = tokenizer.encode(c.text);
  check(JSON.stringify(enc.ids) === JSON.stringify(c.prompt), `tokenizer.encode(case n=${c.prompt_length}) ids match golden prompt`);
}
{
  const ids = tokenizer.encode("The old man said: where is the water?").ids;
  const text = tokenizer.decode(ids, { skip_special_tokens: true });
  console.log(`     encode -> ${JSON.stringify(ids)}\n     decode -> ${JSON.stringify(text)}`);
  check(text === "the old man said : where is the water?" || text.startsWith("the old man said"), "tokenizer decode round trip");
}

// ---------------- model
const session = await ort.InferenceSession.create(join(fixture, "onnx", "model.onnx"), {
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
});
console.log(`     inputs:  ${session.inputNames.join(", ")}\n     outputs: ${session.outputNames.join(", ")}`);

const i64 = (a) => new ort.Tensor("int64", BigInt64Array.from(a.map(BigInt)), [1, a.length]);
const emptyPast = () => {
  const p = [];
  for (let i = 0; i < 2 * L; i++) p.push(new ort.Tensor("float32", new Float32Array(0), [1, KV, 0, HD]));
  return p;
};

async function step(ids, past, positions, mask) {
  const P = past[0].dims[2];
  const feeds = {
    input_ids: i64(ids),
    attention_mask: i64(mask ?? new Array(P + ids.length).fill(1)),
    position_ids: i64(positions),
  };
  for (let i = 0; i < L; i++) {
    feeds[`past_key_values.${i}.key`] = past[2 * i];
    feeds[`past_key_values.${i}.value`] = past[2 * i + 1];
  }
  const out = await session.run(feeds);
  const S = ids.length;
  const logits = out.logits.data;
  const last = logits.subarray((S - 1) * V, S * V);
  const present = [];
  for (let i = 0; i < L; i++) present.push(out[`present.${i}.key`], out[`present.${i}.value`]);
  return { last, present };
}

const argmax = (row) => {
  let b = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[b]) b = i;
  return b;
};
const maxDiff = (a, b) => Math.max(...b.map((x, i) => Math.abs(a[i] - x)));

// gather cache slots along axis 2 of a [1, KV, T, HD] tensor
function gather(t, keep) {
  const T = t.dims[2];
  const src = t.data;
  const dst = new Float32Array(KV * keep.length * HD);
  for (let h = 0; h < KV; h++)
    keep.forEach((slot, j) => dst.set(src.subarray((h * T + slot) * HD, (h * T + slot + 1) * HD), (h * keep.length + j) * HD));
  return new ort.Tensor("float32", dst, [1, KV, keep.length, HD]);
}

for (const c of golden.cases) {
  const n = c.prompt.length;
  const pre = await step(c.prompt, emptyPast(), [...Array(n).keys()]);
  const d = maxDiff(pre.last, c.prefill_last_logits_first16);
  check(d <= TOL, `n=${n} prefill logits[:16] max|diff| = ${d.toExponential(2)} (tol ${TOL})`);
  check(argmax(pre.last) === c.prefill_last_argmax, `n=${n} prefill argmax ${argmax(pre.last)} == ${c.prefill_last_argmax}`);

  const toks = [argmax(pre.last)];
  let past = pre.present;
  for (let i = 1; i < c.greedy.length; i++) {
    const r = await step([toks[i - 1]], past, [n + i - 1]);
    past = r.present;
    toks.push(argmax(r.last));
  }
  check(JSON.stringify(toks) === JSON.stringify(c.greedy), `n=${n} full-cache greedy ${JSON.stringify(toks)}`);

  const cc = c.compacted;
  const cpast = pre.present.map((t) => gather(t, cc.kept_past_indices));
  const r0 = await step([cc.next_token], cpast, [cc.next_position]);
  const dc = maxDiff(r0.last, cc.logits_first16);
  check(dc <= TOL, `n=${n} compacted logits[:16] max|diff| = ${dc.toExponential(2)}`);
  check(argmax(r0.last) === cc.argmax, `n=${n} compacted argmax ${argmax(r0.last)} == ${cc.argmax}`);
  const ctoks = [argmax(r0.last)];
  past = r0.present;
  for (let i = 1; i < cc.greedy.length; i++) {
    const r = await step([ctoks[i - 1]], past, [n + i]);
    past = r.present;
    ctoks.push(argmax(r.last));
  }
  check(JSON.stringify(ctoks) === JSON.stringify(cc.greedy), `n=${n} compacted greedy ${JSON.stringify(ctoks)}`);

  // same eviction via attention_mask zeros on the full prefill cache
  const mask = [...Array(n).keys()].map((t) => (cc.kept_past_indices.includes(t) ? 1 : 0)).concat([1]);
  const rm = await step([cc.next_token], pre.present, [cc.next_position], mask);
  const dm = maxDiff(rm.last, r0.last);
  check(dm <= TOL, `n=${n} mask-based eviction == gathered cache, max|diff| over vocab = ${dm.toExponential(2)}`);

  // multi-token chunk with a non-empty past (exercises the j-dependent causal part)
  const half = Math.floor(n / 2);
  const a = await step(c.prompt.slice(0, half), emptyPast(), [...Array(half).keys()]);
  const b = await step(c.prompt.slice(half), a.present, [...Array(n - half).keys()].map((k) => k + half));
  const dchunk = maxDiff(b.last, pre.last);
  check(dchunk <= TOL, `n=${n} chunked prefill (${half}+${n - half}) == single prefill, max|diff| = ${dchunk.toExponential(2)}`);
}

console.log(failures === 0 ? "ALL OK" : `${failures} FAILURE(S)`);
process.exit(failures === 0 ? 0 : 1);
