import { execFileSync } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readJson } from './run-files.js';

function findPackageJson(start: string): string | undefined {
  let dir = start;
  for (let i = 0; i < 8; i++) {
    const candidate = join(dir, 'package.json');
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return undefined;
}

/** The package folder of a dependency of this package, or undefined. */
function packageDirOf(specifier: string): string | undefined {
  try {
    const resolve = (import.meta as { resolve?: (s: string) => string }).resolve;
    const pkg = resolve ? findPackageJson(dirname(fileURLToPath(resolve(specifier)))) : undefined;
    return pkg ? dirname(pkg) : undefined;
  } catch {
    return undefined;
  }
}

function versionAt(dir: string | undefined): string {
  const path = dir && join(dir, 'package.json');
  return path && existsSync(path) ? (readJson<{ version?: string }>(path).version ?? 'unknown') : 'unknown';
}

/** A package that `from` depends on, found the way Node resolves it: in node_modules above `from`'s realpath. */
function versionBeside(name: string, from: string | undefined): string {
  let dir = from && realpathSync(from);
  while (dir) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return versionAt(candidate);
    const parent = dirname(dir);
    dir = parent === dir ? undefined : parent;
  }
  return 'unknown';
}

let cachedGit: string | null | undefined;
/** The git revision of this code (`git rev-parse HEAD`, `-dirty` when tracked files are modified), or null outside a checkout. */
export function gitRevision(): string | null {
  if (cachedGit !== undefined) return cachedGit;
  try {
    const here = dirname(fileURLToPath(import.meta.url));
    const rev = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: here, stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 }).toString().trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: here, stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 }).toString().trim();
    cachedGit = dirty ? `${rev}-dirty` : rev;
  } catch {
    cachedGit = null;
  }
  return cachedGit;
}

/**
 * run_meta.json: what produced a run (versions, git revision, hardware, seeds). `packages` adds versions of the
 * caller (the CLI records its own: the harness cannot resolve a package that depends on it).
 */
export function runMeta(extra: Record<string, unknown>, packages: Readonly<Record<string, string>> = {}): Record<string, unknown> {
  const own = findPackageJson(dirname(fileURLToPath(import.meta.url)));
  // The method packages are dependencies of @draft/methods, not of this package.
  const methods = packageDirOf('@draft/methods');
  return {
    createdAt: new Date().toISOString(),
    packages: {
      ...packages,
      '@draft/bench': versionAt(own && dirname(own)),
      '@draft/core': versionAt(packageDirOf('@draft/core')),
      '@draft/runtime': versionAt(packageDirOf('@draft/runtime')),
      '@draft/methods': versionAt(methods),
      '@draft/speckv': versionBeside('@draft/speckv', methods),
      '@draft/specpc': versionBeside('@draft/specpc', methods),
      '@draft/baselines': versionBeside('@draft/baselines', methods),
    },
    git: gitRevision(),
    hardware: {
      cpuModel: cpus()[0]?.model ?? 'unknown',
      cpuCount: cpus().length,
      memoryBytes: totalmem(),
      platform: `${process.platform}-${process.arch}`,
    },
    node: process.version,
    ...extra,
  };
}

/**
 * Whether a method's selection looks at the question (the prompt's last tokens: window queries, draft or
 * target lookahead). The harness is always query-aware in RULER's sense: the question ends the prompt that
 * gets compressed; query-agnostic methods (StreamingLLM, random/recency, self-information) ignore it.
 */
export function scoresWithQuery(method: string): boolean | null {
  if (method === 'full' || method === 'draft-only') return null;
  return !['streamingllm', 'random-pc', 'recency-pc', 'selfinfo'].includes(method);
}
