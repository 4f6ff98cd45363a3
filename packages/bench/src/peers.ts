import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

/** A benchmark peer imported on demand: the module, or why it is unavailable. */
export interface ImportedPeer<M> {
  module?: M;
  /** Which package's dependencies it was resolved from. */
  via?: string;
  reason?: string;
}

/**
 * Imports an optional benchmark peer (`@huggingface/transformers`, `node-llama-cpp`) that is not a dependency of
 * this package: from here when installed beside it; inside this monorepo, from `fallbackFrom`'s dependencies (a
 * devDependency of a workspace package; the row notes it).
 */
export async function importOptionalPeer<M>(name: string, fallbackFrom?: string): Promise<ImportedPeer<M>> {
  try {
    return { module: (await import(name)) as M, via: '@draft/bench' };
  } catch {}
  if (!fallbackFrom) return { reason: `${name} is not installed (optional peer of @draft/bench)` };
  try {
    const resolveFrom = (import.meta as { resolve?: (s: string) => string }).resolve;
    if (!resolveFrom) throw new Error('import.meta.resolve unavailable');
    const entry = createRequire(new URL(resolveFrom(fallbackFrom))).resolve(name);
    return { module: (await import(pathToFileURL(entry).href)) as M, via: `${fallbackFrom} (devDependency, monorepo only)` };
  } catch (error) {
    return { reason: `${name} is not resolvable from @draft/bench (${(error as Error).message.split('\n')[0]})` };
  }
}

/** Peak resident set size of this process so far (VmHWM; `maxRSS` where /proc is absent), in bytes. */
export function processPeakRssBytes(): number {
  try {
    const status = readFileSync('/proc/self/status', 'utf8');
    const kib = /VmHWM:\s+(\d+)\s+kB/.exec(status)?.[1];
    if (kib) return Number(kib) * 1024;
  } catch {}
  return process.resourceUsage().maxRSS * 1024;
}

/** Samples process RSS every 5 ms while `fn` runs (the ORT worker shares the process, so this covers it). */
export async function withPeakRss<T>(fn: () => Promise<T>): Promise<{ value: T; peak: number }> {
  let peak = process.memoryUsage.rss();
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, 5);
  try {
    const value = await fn();
    peak = Math.max(peak, process.memoryUsage.rss());
    return { value, peak };
  } finally {
    clearInterval(timer);
  }
}
