import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadModel } from '@draft/runtime';
import { describe, expect, it } from 'vitest';
import { writeDtypeFixtures } from '../../../models/src/dtype-fixtures.js';
import type { GenerateJson } from '../src/index.js';
import { cli } from './helpers.js';

const tinyLlama = fileURLToPath(new URL('../../../models/fixtures/tiny-llama', import.meta.url));
const { dtypes } = writeDtypeFixtures(tinyLlama, dirname(tinyLlama), 'tiny-llama');

describe('--dtype / --draft-dtype', () => {
  it('an unknown dtype is INVALID_ARGUMENT naming the flag, before any model loads', async () => {
    // The folders do not exist: a load would fail with MODEL_LAYOUT first.
    const commands = { generate: ['generate', '--json', '--prompt', 'hi'], serve: ['serve', '--port', '0'], bench: ['bench', 'fidelity', '--json', '--out', 'no/such/out'] };
    for (const [command, flag] of [
      ['generate', '--dtype'],
      ['generate', '--draft-dtype'],
      ['serve', '--dtype'],
      ['serve', '--draft-dtype'],
      ['bench', '--dtype'],
      ['bench', '--draft-dtype'],
    ] as const) {
      const args = commands[command];
      const { code, stderr } = await cli([...args, '--target', 'no/such/folder', '--draft', 'no/such/folder', flag, 'q3']);
      expect(code).toBe(2);
      if (command !== 'serve') {
        const { error } = JSON.parse(stderr);
        expect(error.code).toBe('INVALID_ARGUMENT');
        expect(error.details).toMatchObject({ argument: flag, value: 'q3' });
      } else expect(stderr).toMatch(new RegExp(`INVALID_ARGUMENT.*Invalid ${flag}: got "q3"`));
    }
  });

  it('generate --dtype q4 runs the q4 file', async () => {
    const { code, stdout } = await cli(['generate', '--json', '--target', dtypes, '--dtype', 'q4', '--prompt', 'the keeper wrote a note', '--max-new-tokens', '6']);
    expect(code).toBe(0);
    const out = JSON.parse(stdout) as GenerateJson;
    const model = await loadModel(dtypes, { dtype: 'q4', threads: 1 });
    try {
      expect(out.tokens).toEqual((await model.generate('the keeper wrote a note', { maxNewTokens: 6 })).tokens);
    } finally {
      await model.dispose();
    }
  });
});
