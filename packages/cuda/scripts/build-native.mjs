#!/usr/bin/env node
// Builds the @draft/cuda addon (build/Release/draft_native.node) with cmake-js.
// Never fails a machine without cmake or a C++ compiler: it prints a notice, leaves no binary and exits 0,
// and @draft/cuda reports `native: false` (callers keep the TypeScript reference kernels).
// Env: DRAFT_NATIVE=0 skip; DRAFT_NATIVE_REQUIRED=1 fail (exit 1) instead of falling back;
//      DRAFT_CUDA=0 force a CPU-only build; DRAFT_NATIVE_JOBS=<n> parallel jobs (default min(2, cores)).
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const pkgDir = dirname(dirname(fileURLToPath(import.meta.url)));
const binary = join(pkgDir, 'build', 'Release', 'draft_native.node');
const required = process.env.DRAFT_NATIVE_REQUIRED === '1';

function giveUp(reason, detail) {
  rmSync(binary, { force: true });
  const lines = [`[@draft/cuda] native addon not built: ${reason}.`];
  if (detail) lines.push(detail.trim().split('\n').slice(-15).join('\n'));
  lines.push('[@draft/cuda] @draft/cuda will report native: false; the TypeScript reference kernels stay in use.');
  console.warn(lines.join('\n'));
  process.exit(required ? 1 : 0);
}

if (process.env.DRAFT_NATIVE === '0') giveUp('skipped because DRAFT_NATIVE=0');

const cmake = spawnSync('cmake', ['--version'], { encoding: 'utf8' });
if (cmake.error || cmake.status !== 0) giveUp('cmake was not found on PATH (install cmake ≥ 3.21 and a C++17 compiler)');

const kernels = [join(pkgDir, 'kernels'), join(pkgDir, '..', '..', 'kernels')].find((d) => existsSync(join(d, 'CMakeLists.txt')));
if (!kernels) giveUp('the kernels/ sources were not found next to the package');

let cmakeJs;
try {
  const require = createRequire(import.meta.url);
  cmakeJs = join(dirname(require.resolve('cmake-js/package.json')), 'bin', 'cmake-js');
} catch (error) {
  giveUp('cmake-js is not installed', String(error));
}

const jobs = process.env.DRAFT_NATIVE_JOBS ?? String(Math.min(2, availableParallelism()));
// cmake-js: -D means "debug"; CMake variables go as --CD<NAME>=<VALUE>. napi_versions in package.json means
// no Node header download: node-addon-api + Node-API headers are used.
const common = ['--directory', pkgDir, '--out', join(pkgDir, 'build'), '--CDCMAKE_BUILD_TYPE=Release'];
common.push(`--CDDRAFT_ENABLE_CUDA=${process.env.DRAFT_CUDA === '0' ? 'OFF' : 'ON'}`);
const started = Date.now();
// configure (re-applies the --CD variables to an existing build folder), then an incremental build.
const spawn = (command) =>
  spawnSync(process.execPath, [cmakeJs, command, ...common, ...(command === 'build' ? ['--parallel', jobs] : [])], {
    cwd: pkgDir,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
const configure = spawn('configure');
const run = configure.error || configure.status !== 0 ? configure : spawn('build');
const output = `${configure.stdout ?? ''}\n${configure.stderr ?? ''}\n${run === configure ? '' : `${run.stdout ?? ''}\n${run.stderr ?? ''}`}`;
if (run.error || run.status !== 0 || !existsSync(binary)) {
  giveUp(run.error ? `cmake-js could not run (${run.error.message})` : `the native build failed (exit ${run.status})`, output);
}
const cuda = /building CUDA kernels/.test(output) ? 'CPU + CUDA' : 'CPU only (no CUDA toolkit found or DRAFT_CUDA=0)';
console.log(`[@draft/cuda] built ${binary} — ${cuda}, ${((Date.now() - started) / 1000).toFixed(1)} s`);
