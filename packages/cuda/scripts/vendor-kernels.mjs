#!/usr/bin/env node
// prepack/postpack: copies the repository's kernels/ sources into the package so a published tarball can build
// the addon on install (CMakeLists.txt prefers ./kernels when present); `--clean` removes the copy again.
import { cpSync, existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const pkgDir = join(import.meta.dirname, '..');
const vendored = join(pkgDir, 'kernels');
rmSync(vendored, { recursive: true, force: true });
if (!process.argv.includes('--clean')) {
  const source = join(pkgDir, '..', '..', 'kernels');
  if (!existsSync(join(source, 'CMakeLists.txt'))) throw new Error(`kernels/ sources not found at ${source}`);
  cpSync(source, vendored, { recursive: true, filter: (path) => !/[\\/](build|bench-out)([\\/]|$)/.test(path.slice(source.length)) });
}
