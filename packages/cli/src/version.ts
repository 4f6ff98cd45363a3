import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

/** This package's version (from the nearest package.json above this module, in src/ or dist/). */
export function cliVersion(): string {
  if (cached !== undefined) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8 && cached === undefined; i++) {
    const path = join(dir, 'package.json');
    if (existsSync(path)) cached = (JSON.parse(readFileSync(path, 'utf8')) as { version?: string }).version ?? 'unknown';
    dir = dirname(dir);
  }
  cached ??= 'unknown';
  return cached;
}

/** What bench runs record of the CLI in run_meta.json's `packages` (as they did before the harness moved). */
export function cliPackages(): Record<string, string> {
  return { '@draft/cli': cliVersion() };
}
