// Test-only: runs the built `draft` bin in a child process, as a user's shell would.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BIN = join(ROOT, 'packages/cli/dist/bin.js');

function newest(dir: string): number {
  let t = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    t = Math.max(t, entry.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

/** Rebuilds the packages the spawned bin runs from their dist when missing or older than their sources. */
export function ensureBuilt(packages: readonly string[] = ['core', 'methods', 'runtime', 'cli']): void {
  for (const name of packages) {
    const dir = join(ROOT, 'packages', name);
    const entry = join(dir, 'dist/index.js');
    if (!existsSync(entry) || statSync(entry).mtimeMs < newest(join(dir, 'src'))) execFileSync('pnpm', ['run', 'build'], { cwd: dir, stdio: 'ignore' });
  }
}

export interface BinRun {
  /** Exit code; null when a signal ended the process. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `node dist/bin.js <args>` from the repository root (where the bundled models are found). */
export function runBin(args: readonly string[], options: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): BinRun {
  const run = spawnSync(process.execPath, [BIN, ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: options.timeoutMs ?? 120_000,
    env: options.env ?? process.env,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (run.error) throw run.error;
  return { code: run.status, signal: run.signal, stdout: run.stdout, stderr: run.stderr };
}
