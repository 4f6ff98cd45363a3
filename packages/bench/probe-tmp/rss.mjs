// Experiment: SpecKV at 8K, two requests, RSS per stage; TRIM=1 calls malloc_trim(0) through gdb at stage points.
import { execSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createPipeline } from '@draft/core';
import { planMethod } from '@draft/methods';
import { loadBenchModels } from '../dist/index.js';
if (process.env.NOREG !== '1') await import('@draft/cuda/register');
import { heapTrimStats } from '@draft/core';
const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]) >> 10;
const hwm = () => Number(/VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]) >> 10;
const trim = (label) => {
  if (process.env.TRIM !== '1') return;
  const before = rss();
  execSync(`gdb -p ${process.pid} -batch -ex 'call (int)malloc_trim(0)' >/dev/null 2>&1`);
  console.log(`  trim at ${label}: ${before} -> ${rss()} MiB`);
};
const method = process.env.METHOD ?? 'speckv';
const plan = planMethod(method, { budget: method === 'full' ? undefined : 256 });
const { loadModel } = await import('@draft/runtime');
const tRel = process.env.TREL ? { releaseMemoryWhenIdleMs: Number(process.env.TREL) } : {};
const models = { target: await loadModel('../../models/perf', { threads: 2, ...tRel }), draft: plan.needsDraft ? await loadModel('../../models/perf-draft', { threads: 2, releaseMemoryWhenIdleMs: 100, ...(process.env.DBUDGET ? { prefillScoreBudgetBytes: Number(process.env.DBUDGET) } : {}) }) : undefined };
models.dispose = async () => { await models.target.dispose(); await models.draft?.dispose(); };
let seed = 7;
const ids = Array.from({ length: 8192 }, () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), 8 + (seed % 480)));
const pipeline = createPipeline({ target: models.target, draft: plan.needsDraft ? models.draft : undefined, ...plan.stages });
console.log('loaded', rss());
await createPipeline({ target: models.target }).generate({ inputIds: [1, 2, 3, 4, 5, 6, 7, 8] }, { maxNewTokens: 2 });
if (models.draft) await models.draft.generate({ inputIds: [1, 2, 3, 4, 5, 6, 7, 8] }, { maxNewTokens: 2 });
let stageNow = 'idle'; let t00 = performance.now();
if (process.env.TL) setInterval(() => console.log(`      t=${((performance.now() - t00) / 1000).toFixed(1)}s ${stageNow} rss ${rss()}`), 500).unref();
for (let r = 0; r < 2; r++) {
  let last = '';
  const t0 = performance.now();
  const res = await pipeline.generate({ inputIds: ids }, { maxNewTokens: 32, onProgress: (p) => { stageNow = p.stage; if (p.stage !== last) { if (process.env.TRIM_STAGE === "1") trim(p.stage); console.log(`  ${p.stage} starts: rss ${rss()} hwm ${hwm()}`); last = p.stage; } } });
  console.log(`request ${r}: ${(performance.now() - t0).toFixed(0)} ms ttft ${res.timings?.ttftMs?.toFixed?.(0)}, rss ${rss()} hwm ${hwm()}, tokens ${res.tokens.slice(0, 6).join(',')}`);
  await new Promise((r) => setTimeout(r, 300));
  if (process.env.GCT && globalThis.gc) { const b = rss(); globalThis.gc(); const { trimNativeHeap } = await import('@draft/core'); trimNativeHeap(); console.log(`  gc+trim after request ${r}: ${b} -> ${rss()}`); }
  trim(`after request ${r}`);
}
console.log('final hwm', hwm(), JSON.stringify(heapTrimStats()), JSON.stringify(await models.target.sessionMemoryStats()), models.draft ? JSON.stringify(await models.draft.sessionMemoryStats()) : '');
await models.dispose();
