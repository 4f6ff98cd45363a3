import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvalidArgumentError } from '@draft/core';

/**
 * Where the bundled default models live: `$DRAFT_MODELS_DIR`, else the nearest `models/` folder holding
 * `target/config.json` above the working directory or above this package (the repository checkout).
 */
export function bundledModelsDir(): string | undefined {
  const fromEnv = process.env.DRAFT_MODELS_DIR;
  if (fromEnv) return resolve(fromEnv);
  for (const start of [process.cwd(), dirname(fileURLToPath(import.meta.url))]) {
    let dir = start;
    for (;;) {
      const candidate = join(dir, 'models');
      if (existsSync(join(candidate, 'target', 'config.json'))) return candidate;
      const parent = dirname(dir);
      if (parent === dir) break;
      dir = parent;
    }
  }
  return undefined;
}

/** The model folder to use for a role: the user's flag, else the bundled default. */
export function resolveModelDir(role: 'target' | 'draft', given: string | undefined): string {
  if (given) return resolve(given);
  const bundled = bundledModelsDir();
  if (!bundled) {
    throw new InvalidArgumentError({
      argument: `--${role}`,
      value: undefined,
      expected: `a model folder (no bundled models were found; set DRAFT_MODELS_DIR or pass --${role} DIR)`,
    });
  }
  return join(bundled, role);
}
