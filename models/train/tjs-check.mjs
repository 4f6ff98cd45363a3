// transformers.js 4.3.1 loads the trained folders and its greedy generate() gives the same ids as torch (golden.json):
//   node models/train/tjs-check.mjs [draft target]
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const modelsDir = join(here, '..');
const req = createRequire(join(modelsDir, '..', 'packages', 'runtime', 'package.json'));
const tjs = await import(pathToFileURL(req.resolve('@huggingface/transformers')).href);
tjs.env.allowRemoteModels = false;
tjs.env.localModelPath = modelsDir + '/';
let bad = 0;
for (const name of process.argv.slice(2).length ? process.argv.slice(2) : ['draft', 'target']) {
  const golden = JSON.parse(readFileSync(join(modelsDir, name, 'golden.json'), 'utf8'));
  const tok = await tjs.AutoTokenizer.from_pretrained(name);
  const model = await tjs.AutoModelForCausalLM.from_pretrained(name, { dtype: 'fp32' });
  let same = 0;
  for (const c of golden.cases.filter((c) => c.length === 256)) {
    const enc = tok(c.text);
    const out = await model.generate({ ...enc, max_new_tokens: golden.max_new_tokens, do_sample: false });
    const ids = Array.from(out.tolist()[0].slice(c.length), Number);
    if (JSON.stringify(ids) === JSON.stringify(c.greedy)) same++;
    else { bad++; console.log(`${name} ${c.task}: transformers.js ${JSON.stringify(ids)} vs torch ${JSON.stringify(c.greedy)}`); }
  }
  console.log(`${name}: transformers.js generate == torch greedy on ${same}/${golden.cases.filter((c) => c.length === 256).length} cases`);
}
process.exit(bad ? 1 : 0);
