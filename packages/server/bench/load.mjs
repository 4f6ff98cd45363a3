#!/usr/bin/env node
// Load and memory benchmark for @draft/server (prints numbers; not a pass/fail test). Run from the repository
// root after `pnpm build`, with --expose-gc so RSS is read after a full collection:
//   node --expose-gc packages/server/bench/load.mjs [--concurrent 200] [--sequential 500] [--long 50] [--long-tokens 2000]
// Phases: (1) N concurrent requests against maxConcurrent 1 / maxQueue 16: only 200 or 429, never 5xx;
// (2) N sequential small requests, RSS every 50; (3) N sequential long generations, RSS after 1, 5, 10, then every 10.
import { request } from 'node:http';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { createDraftServer } from '../dist/index.js';
import { loadModel } from '@draft/runtime';

const { values } = parseArgs({
  options: {
    concurrent: { type: 'string', default: '200' },
    sequential: { type: 'string', default: '500' },
    long: { type: 'string', default: '50' },
    'long-tokens': { type: 'string', default: '2000' },
    models: { type: 'string', default: fileURLToPath(new URL('../../../models/', import.meta.url)) },
  },
});
const gc = globalThis.gc ?? (() => {});
if (!globalThis.gc) console.log('(run with --expose-gc for RSS after a full collection)');
const mib = (b) => (b / 2 ** 20).toFixed(1);
const memory = () => {
  gc();
  const m = process.memoryUsage();
  return `rss ${mib(m.rss)} MiB, heap ${mib(m.heapUsed)} MiB, external ${mib(m.external)} MiB`;
};

const target = await loadModel(`${values.models}target`, { threads: 1, raggedCache: true });
const draft = await loadModel(`${values.models}draft`, { threads: 1 });
const server = createDraftServer({ target, draft, maxConcurrent: 1, maxQueue: 16 });
const { port } = await server.listen({ port: 0 });

/** One POST over a fresh connection (no client-side pooling to muddy the server's numbers). */
function post(path, body) {
  return new Promise((resolve, reject) => {
    const text = JSON.stringify(body);
    const req = request({ host: '127.0.0.1', port, path, method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) } }, (res) => {
      let data = '';
      res.on('data', (d) => (data += d));
      res.on('end', () => resolve({ status: res.statusCode, data }));
    });
    req.on('error', reject);
    req.end(text);
  });
}

const prompt = Array.from({ length: 30 }, (_, i) => `Line ${i}: the keeper wrote a note about the tide.`).join(' ');
const methods = ['full', 'specpc', 'streamingllm', 'snapkv', 'speckv'];
const small = (i) => ({ prompt: `${prompt} #${i}`, max_tokens: 8, stream: i % 2 === 0, draft: { method: methods[i % methods.length], budget: 64, window: 8 } });

console.log(`start: ${memory()}`);
const concurrent = Number(values.concurrent);
if (concurrent > 0) {
  const t = performance.now();
  const results = await Promise.allSettled(Array.from({ length: concurrent }, (_, i) => post('/v1/completions', small(i))));
  const counts = {};
  for (const r of results) {
    const key = r.status === 'fulfilled' ? r.value.status : `error ${r.reason?.code ?? r.reason}`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  const bad = Object.keys(counts).filter((k) => k !== '200' && k !== '429');
  console.log(`${concurrent} concurrent requests in ${((performance.now() - t) / 1000).toFixed(1)} s: ${JSON.stringify(counts)}${bad.length ? `  UNEXPECTED: ${bad}` : ' (only 200 / 429)'}`);
}
const sequential = Number(values.sequential);
for (let i = 0; i < sequential; i++) {
  const { status } = await post('/v1/completions', small(i));
  if (status !== 200) console.log(`request ${i}: status ${status}`);
  if ((i + 1) % 50 === 0) console.log(`after ${i + 1} sequential requests: ${memory()}`);
}
const long = Number(values.long);
const checkpoints = new Set([1, 5, 10]);
for (let i = 0; i < long; i++) {
  const { status, data } = await post('/v1/completions', { prompt: `${prompt} #${i}`, max_tokens: Number(values['long-tokens']) });
  if (status !== 200) console.log(`long request ${i}: status ${status} ${data.slice(0, 200)}`);
  if (checkpoints.has(i + 1) || (i + 1) % 10 === 0) console.log(`after ${i + 1} × ${values['long-tokens']}-token requests: ${memory()} (completion ${JSON.parse(data).usage?.completion_tokens})`);
}
console.log(`served ${server.stats.served}`);
await server.close();
