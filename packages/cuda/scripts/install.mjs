#!/usr/bin/env node
// npm `install` hook: builds the addon when @draft/cuda is installed as a dependency. Inside the monorepo
// checkout turbo's build:native task builds it instead, so this does nothing there.
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const pkgDir = join(import.meta.dirname, '..');
if (!existsSync(join(pkgDir, '..', '..', 'pnpm-workspace.yaml'))) await import('./build-native.mjs');
