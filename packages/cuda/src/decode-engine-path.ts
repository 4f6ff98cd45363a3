import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * Path of the built decode-engine module, which a runtime's worker imports (workers cannot share this thread's
 * objects): next to this file in the published build, `dist/` when running from sources (tests). Null when it
 * has not been built.
 */
export function decodeEngineModule(): string | null {
  for (const candidate of ['./decode-engine.js', '../dist/decode-engine.js']) {
    const path = fileURLToPath(new URL(candidate, import.meta.url));
    if (existsSync(path)) return path;
  }
  return null;
}
