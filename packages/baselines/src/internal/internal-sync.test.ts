import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// Method packages import only @draft/core, so @draft/speckv and @draft/baselines each carry a copy of the
// shared window-selection internals. This keeps the copies identical (skipped outside the monorepo).
const here = dirname(fileURLToPath(import.meta.url));
const sibling = join(here, '../../../speckv/src/internal');
const shared = ['validate.ts', 'drive.ts', 'window-selection.ts', 'context.ts', 'config.ts', 'greedy.ts'];

describe.runIf(existsSync(sibling))('internal copies shared with @draft/speckv', () => {
  it.each(shared)('%s is identical in both packages', (file) => {
    expect(readFileSync(join(here, file), 'utf8')).toBe(readFileSync(join(sibling, file), 'utf8'));
  });
});
