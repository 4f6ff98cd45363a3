import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** Writes JSON atomically (temp file + rename), so a killed run never leaves a half-written metrics.json. */
export function writeJson(path: string, value: unknown): void {
  writeText(path, `${JSON.stringify(value, null, 2)}\n`);
}

/** Writes text atomically (temp file + rename). */
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
