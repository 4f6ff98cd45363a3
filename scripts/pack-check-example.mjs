// A minimal program run against the packed tarballs (see pack-check.mjs): argv[2] is the repo's models/ folder.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { topK } from '@draft/core';
import { loadModel } from '@draft/runtime';
import { speckv } from '@draft/speckv';
import { snapkv } from '@draft/baselines';
import { specPC } from '@draft/specpc';
import { nativeInfo } from '@draft/cuda';
import { runCli } from '@draft/cli';
import { createDraft } from '@draft/ai-sdk';
import { runRuler, wilsonInterval } from '@draft/bench';

const assert = (ok, what) => {
  if (!ok) throw new Error(`pack-check example: ${what}`);
};
assert(Array.from(topK([0.1, 0.9, 0.9, 0.2], 2)).join() === '1,2', 'topK');
assert(speckv({ budget: 64, windowSize: 8 }).type === 'speckv', 'speckv policy');
assert(snapkv({ budget: 64, windowSize: 8 }).type === 'snapkv', 'snapkv policy');
assert(typeof specPC === 'function', 'specPC factory');
const native = nativeInfo();
console.log('native kernels:', JSON.stringify(native));
const hasCmake = (await import('node:child_process')).spawnSync('cmake', ['--version']).status === 0;
assert(!hasCmake || native.native, `cmake exists but the installed @draft/cuda built no addon: ${native.reason}`);
// The AI SDK provider from its tarball, called the way `ai` calls a LanguageModelV3 (ai itself is not a dependency).
const provider = createDraft({ target: join(process.argv[2], 'fixtures', 'tiny-llama') });
try {
  const languageModel = provider('full');
  assert(languageModel.specificationVersion === 'v3', 'ai-sdk: LanguageModelV3');
  const generated = await languageModel.doGenerate({ prompt: [{ role: 'user', content: [{ type: 'text', text: 'the quick brown fox' }] }], maxOutputTokens: 3 });
  assert(generated.usage.outputTokens.total === 3, `ai-sdk: generated ${generated.usage.outputTokens.total} tokens`);
  console.log(`the installed @draft/ai-sdk generated ${JSON.stringify(generated.content[0]?.text ?? '')}`);
} finally {
  await provider.dispose();
}
const model = await loadModel(join(process.argv[2], 'fixtures', 'tiny-llama'));
try {
  const result = await model.generate('the quick brown fox', { maxNewTokens: 4 });
  assert(result.tokens.length === 4, `generated ${result.tokens.length} tokens`);
  console.log(`generated ${JSON.stringify(result.text)} from the installed @draft/runtime`);
} finally {
  await model.dispose();
}
// The benchmark harness from its tarball: a one-run ruler sweep on the random-weight pair, into a temporary folder.
const benchOut = mkdtempSync(join(tmpdir(), 'draft-pack-check-bench-'));
try {
  assert(Math.abs(wilsonInterval(8, 10).low - 0.4902) < 1e-3, 'bench: wilsonInterval');
  const fixtures = join(process.argv[2], 'fixtures');
  const ruler = await runRuler({ target: join(fixtures, 'random-target'), draft: join(fixtures, 'random-draft'), methods: ['full'], lengths: [256], tasks: ['niah_single_1'], samples: 1, maxNewTokens: 2, out: benchOut });
  assert(ruler.results.length === 1 && ruler.results[0].samples === 1 && ruler.results[0].interval?.method === 'wilson', `bench: runRuler gave ${JSON.stringify(ruler.results)}`);
  console.log('the installed @draft/bench ran a ruler sweep:', JSON.stringify(ruler.summary[0]));
} finally {
  rmSync(benchOut, { recursive: true, force: true });
}
let out = '';
const code = await runCli(['methods', '--json'], { stdout: (t) => (out += t), stderr: () => {} });
assert(code === 0 && JSON.parse(out).methods.includes('speckv'), 'draft methods --json');
console.log('the installed @draft/cli lists', JSON.parse(out).methods.length, 'methods');
