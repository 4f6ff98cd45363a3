#!/usr/bin/env node
// Proves individual npm installs work: packs every published package, checks each tarball's manifest
// (exports, types, files, no `workspace:` ranges), installs the tarballs into a scratch project outside
// the workspace with plain npm, and runs a minimal example against them.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const outDir = join(root, '.pack-check');
rmSync(outDir, { recursive: true, force: true });
mkdirSync(outDir, { recursive: true });

const packages = readdirSync(join(root, 'packages'))
  .map((name) => ({ dir: join(root, 'packages', name), manifest: JSON.parse(readFileSync(join(root, 'packages', name, 'package.json'), 'utf8')) }))
  .filter((p) => !p.manifest.private);

const failures = [];
const tarballs = {};
for (const { dir, manifest } of packages) {
  execFileSync('pnpm', ['pack', '--pack-destination', outDir], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
  const file = readdirSync(outDir).find((f) => f.startsWith(manifest.name.replace('@', '').replace('/', '-')) && f.endsWith('.tgz'));
  tarballs[manifest.name] = join(outDir, file);
  const packed = JSON.parse(execFileSync('tar', ['-xzOf', tarballs[manifest.name], 'package/package.json'], { encoding: 'utf8' }));
  const listing = execFileSync('tar', ['-tzf', tarballs[manifest.name]], { encoding: 'utf8' }).split('\n');
  const check = (ok, what) => { if (!ok) failures.push(`${manifest.name}: ${what}`); };
  const ranges = JSON.stringify({ ...packed.dependencies, ...packed.peerDependencies, ...packed.optionalDependencies });
  check(!ranges.includes('workspace:'), `workspace: range left in the tarball (${ranges})`);
  check(packed.exports?.['.']?.import && packed.exports?.['.']?.types, 'exports["."] lacks import/types');
  for (const target of [packed.exports['.'].import, packed.exports['.'].types, packed.types]) {
    check(listing.includes(`package/${target.replace(/^\.\//, '')}`), `${target} is not in the tarball`);
  }
  check(listing.includes('package/README.md'), 'README.md is not in the tarball');
  console.log(`packed ${manifest.name}@${packed.version}: ${listing.filter(Boolean).length} files`);
}

const scratch = mkdtempSync(join(tmpdir(), 'draft-pack-check-'));
const deps = Object.fromEntries(Object.entries(tarballs).map(([name, file]) => [name, `file:${file}`]));
writeFileSync(join(scratch, 'package.json'), JSON.stringify({ name: 'scratch', private: true, type: 'module', dependencies: deps, overrides: deps }, null, 2));
console.log(`installing ${Object.keys(deps).length} tarballs into a scratch project with npm …`);
// Scripts run as for a real user (@draft/cuda builds its addon from the vendored kernels when cmake exists);
// onnxruntime-node's CUDA download is skipped.
execFileSync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'], {
  cwd: scratch,
  stdio: 'inherit',
  env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip', ONNXRUNTIME_NODE_INSTALL_CUDA: 'skip' },
});
writeFileSync(join(scratch, 'example.mjs'), readFileSync(join(root, 'scripts', 'pack-check-example.mjs'), 'utf8'));
execFileSync('node', ['example.mjs', join(root, 'models')], { cwd: scratch, stdio: 'inherit' });
try {
  await serveFromTarballs(scratch);
} catch (error) {
  failures.push(`npx draft serve: ${error.message}`);
}
rmSync(scratch, { recursive: true, force: true });

/**
 * `npx draft serve` from the installed tarballs (the CLI's dependency on @draft/server included) answers a chat
 * completion over HTTP, then exits 0 on SIGTERM.
 */
async function serveFromTarballs(cwd) {
  const models = join(root, 'models');
  // Its own process group: npx does not pass SIGTERM on to the server, so the group gets it (as from a supervisor).
  const child = spawn('npx', ['--no-install', 'draft', 'serve', '--port', '0', '--target', join(models, 'target'), '--draft', join(models, 'draft')], { cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const killGroup = (signal) => {
    try {
      process.kill(-child.pid, signal);
    } catch {}
  };
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  const timer = setTimeout(() => killGroup('SIGKILL'), 120_000); // bounded, whatever happens
  try {
    const url = await new Promise((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d) => {
        out += d;
        if (out.includes('\n')) resolve(out.split('\n')[0].trim());
      });
      exited.then((code) => reject(new Error(`exited (${code}) before printing its URL: ${stderr}`)));
    });
    const response = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'Where is the key?' }], max_tokens: 8, draft: { method: 'specpc', budget: 16, window: 4 } }),
    });
    const body = await response.json();
    if (response.status !== 200 || body.object !== 'chat.completion' || typeof body.choices?.[0]?.message?.content !== 'string') {
      throw new Error(`chat completion answered ${response.status}: ${JSON.stringify(body).slice(0, 300)}`);
    }
    console.log(`npx draft serve from the tarballs answered a chat completion: ${JSON.stringify(body.choices[0].message.content)} (${body.usage.completion_tokens} tokens, method ${body.usage.draft.method})`);
    killGroup('SIGTERM');
    await exited;
    // The server (npx's child) logs its graceful end on the same stderr pipe.
    for (let i = 0; i < 300 && !stderr.includes('draft server: closed'); i++) await new Promise((r) => setTimeout(r, 100));
    if (!stderr.includes('draft server: closed')) throw new Error(`no graceful shutdown after SIGTERM: ${stderr}`);
    console.log('npx draft serve shut down gracefully on SIGTERM');
  } finally {
    clearTimeout(timer);
    killGroup('SIGKILL');
  }
}

if (failures.length) {
  console.error(`pack check failed:\n- ${failures.join('\n- ')}`);
  process.exit(1);
}
console.log('pack check: every package packs and installs; the example ran against the tarballs');
