import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DraftError, InvalidArgumentError } from '@draft/core';

/** A budget as given on the command line: tokens, or a fraction of the length (`1/32`, `0.125`). */
export type BudgetSpec = { kind: 'tokens'; tokens: number; text: string } | { kind: 'fraction'; fraction: number; text: string };

export function parseBudgets(raw: string | undefined, fallback: string): BudgetSpec[] {
  return parseList(raw ?? fallback).map((text) => {
    const ratio = /^(\d+)\/(\d+)$/.exec(text);
    if (ratio) {
      const fraction = Number(ratio[1]) / Number(ratio[2]);
      if (fraction > 0 && Number.isFinite(fraction)) return { kind: 'fraction', fraction, text };
    } else if (/^\d+$/.test(text) && Number(text) >= 1) {
      return { kind: 'tokens', tokens: Number(text), text };
    } else if (/^0?\.\d+$/.test(text) && Number(text) > 0) {
      return { kind: 'fraction', fraction: Number(text), text };
    }
    throw new InvalidArgumentError({ argument: '--budgets', value: text, expected: 'token counts (256) or fractions of the length (1/32, 0.125)' });
  });
}

/** Tokens for a length: fractions round to the nearest token (at least 1). */
export function resolveBudget(spec: BudgetSpec, length: number): number {
  return spec.kind === 'tokens' ? spec.tokens : Math.max(1, Math.round(spec.fraction * length));
}

export function parseList(raw: string): string[] {
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

export function parseIntList(name: string, raw: string, min = 1): number[] {
  return parseList(raw).map((text) => {
    const k = /^(\d+)[kK]$/.exec(text);
    const value = k ? Number(k[1]) * 1024 : Number(text);
    if (!Number.isInteger(value) || value < min) throw new InvalidArgumentError({ argument: `--${name}`, value: text, expected: `integers ≥ ${min} (or 1K, 2K, …)` });
    return value;
  });
}

/** Writes JSON atomically (temp file + rename), so a killed run never leaves a half-written metrics.json. */
export function writeJson(path: string, value: unknown): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`);
  renameSync(tmp, path);
}

export function writeText(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

export function readJson<T>(path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}

/**
 * A run folder name that sorts and reads well: `speckv__b256__L4096__niah_single_1`; method options add a last
 * part (`…__kernelSize-8_neighbourTokens-8`), so a run with other options is never resumed from this one.
 */
export function runName(parts: { method: string; budget: number | null; length: number | string; task: string; options?: Readonly<Record<string, unknown>> }): string {
  const safe = (s: string) => s.replace(/[^A-Za-z0-9_.-]/g, '_');
  const options = Object.entries(parts.options ?? {}).map(([name, value]) => `${name}-${String(value)}`);
  return [safe(parts.method), parts.budget === null ? 'bnone' : `b${parts.budget}`, `L${parts.length}`, safe(parts.task), ...(options.length ? [safe(options.join('_'))] : [])].join('__');
}

/** Whether an error means "this method cannot run on this backend/setting" (recorded as skipped). */
export function skipReason(error: unknown): string | undefined {
  if (!DraftError.isInstance(error)) return undefined;
  if (error.code === 'UNSUPPORTED_CAPABILITY' || error.code === 'INVALID_ARGUMENT' || error.code === 'VOCAB_MISMATCH' || error.code === 'PROMPT_TOO_LONG') return `${error.code}: ${error.message}`;
  return undefined;
}

/** Markdown table. */
export function markdownTable(header: string[], rows: (string | number)[][]): string {
  const line = (cells: (string | number)[]) => `| ${cells.map((c) => String(c).replace(/\|/g, '\\|')).join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

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

function versionOf(specifier: string): string {
  try {
    const resolve = (import.meta as { resolve?: (s: string) => string }).resolve;
    if (!resolve) return 'unknown';
    const pkg = findPackageJson(dirname(fileURLToPath(resolve(specifier))));
    return pkg ? (readJson<{ version?: string }>(pkg).version ?? 'unknown') : 'unknown';
  } catch {
    return 'unknown';
  }
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

/** run_meta.json: what produced a run (versions, git revision, hardware, seeds). */
export function runMeta(extra: Record<string, unknown>): Record<string, unknown> {
  const cliPkg = findPackageJson(dirname(fileURLToPath(import.meta.url)));
  return {
    createdAt: new Date().toISOString(),
    packages: {
      '@draft/cli': cliPkg ? readJson<{ version?: string }>(cliPkg).version : 'unknown',
      '@draft/core': versionOf('@draft/core'),
      '@draft/runtime': versionOf('@draft/runtime'),
      '@draft/speckv': versionOf('@draft/speckv'),
      '@draft/specpc': versionOf('@draft/specpc'),
      '@draft/baselines': versionOf('@draft/baselines'),
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
