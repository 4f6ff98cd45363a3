import { fileURLToPath } from 'node:url';
import { loadModel } from '@draft/runtime';
import { createDraftServer } from '@draft/server';
import { describe, expect, it } from 'vitest';
import { cli } from './helpers.js';

// Node's timers fire a delay above 2^31 − 1 ms (≈ 24.8 days) after 1 ms: a huge --shutdown-timeout used to
// abort every in-flight request at once instead of waiting.
const MAX_MS = 2 ** 31 - 1;

describe('serve timeouts beyond what a Node timer can hold', () => {
  for (const [flag, value] of [
    ['--shutdown-timeout', '1e7'],
    ['--body-timeout', '2147484'],
    ['--draft-release-idle', '2147484'],
  ] as const) {
    it(`${flag} ${value} is a usage error naming the longest accepted value`, async () => {
      const { code, stdout, stderr } = await cli(['serve', '--port', '0', flag, value]);
      expect(code).toBe(2);
      expect(stdout).toBe('');
      expect(stderr).toContain(`Invalid ${flag}: got "${value}", expected a number of seconds in [`);
      expect(stderr).toContain(`, ${Math.floor(MAX_MS / 1000)}]`);
    });
  }

  it('--draft-release-idle must be a number of seconds ≥ 0', async () => {
    const { code, stderr } = await cli(['serve', '--port', '0', '--draft-release-idle', 'soon']);
    expect(code).toBe(2);
    expect(stderr).toContain('Invalid --draft-release-idle: got "soon"');
  });

  it("startServer hands draftReleaseIdleMs to the draft's loadModel (a bad value is the runtime's typed error)", async () => {
    const { startServer } = await import('@draft/server');
    const models = fileURLToPath(new URL('../../../models/fixtures/', import.meta.url));
    await expect(
      startServer({ port: 0, target: `${models}random-target`, draft: `${models}random-draft`, threads: 1, handleSignals: false, draftReleaseIdleMs: 0.5 }),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', details: { argument: 'releaseMemoryWhenIdleMs', value: 0.5 } });
  });

  it('createDraftServer refuses shutdownTimeoutMs / bodyTimeoutMs above 2^31 − 1 and accepts the limit', async () => {
    const target = await loadModel(fileURLToPath(new URL('../../../models/fixtures/random-target', import.meta.url)), { threads: 1 });
    try {
      expect(() => createDraftServer({ target, disposeModels: false, shutdownTimeoutMs: MAX_MS + 1 })).toThrow(`shutdownTimeoutMs must be at most ${MAX_MS}`);
      expect(() => createDraftServer({ target, disposeModels: false, bodyTimeoutMs: MAX_MS + 1 })).toThrow(`bodyTimeoutMs must be at most ${MAX_MS}`);
      const server = createDraftServer({ target, disposeModels: false, shutdownTimeoutMs: MAX_MS });
      await server.close();
    } finally {
      await target.dispose();
    }
  });
});
