import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { cli } from './helpers.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const cliDir = join(root, 'packages/cli');
const serverDir = join(root, 'packages/server');
const bin = join(cliDir, 'dist/bin.js');
const plugin = join(root, 'examples/third-party-policy/dist/index.js');

function newest(dir: string): number {
  let t = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    t = Math.max(t, entry.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

// `draft serve` imports @draft/server's dist and the spawned CLI runs dist/bin.js: build them when missing or
// stale (the root `pnpm test` has built everything already).
beforeAll(() => {
  for (const dir of [serverDir, cliDir]) {
    const entry = join(dir, 'dist/index.js');
    if (!existsSync(entry) || statSync(entry).mtimeMs < newest(join(dir, 'src'))) execFileSync('pnpm', ['run', 'build'], { cwd: dir, stdio: 'ignore' });
  }
}, 120_000);

describe('draft serve: flags', () => {
  for (const [args, argument] of [
    [['--port', 'abc'], '--port'],
    [['--port', '70000'], '--port'],
    [['--max-concurrent', '0'], '--max-concurrent'],
    [['--max-queue', '-1'], '--max-queue'],
  ] as const) {
    it(`${args.join(' ')} is a usage error naming ${argument}`, async () => {
      const { code, stderr } = await cli(['serve', ...args]);
      expect(code).toBe(2);
      expect(stderr).toContain('INVALID_ARGUMENT');
      expect(stderr).toContain(argument);
    });
  }

  it('an unknown flag is a usage error; the usage lists serve', async () => {
    expect((await cli(['serve', '--bogus'])).code).toBe(2);
    expect((await cli(['help'])).stdout).toContain('draft serve [--host 127.0.0.1] [--port N]');
  });

  it('a missing target folder fails before listening with MODEL_LAYOUT', async () => {
    const { code, stdout, stderr } = await cli(['serve', '--port', '0', '--target', 'no/such/folder']);
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toContain('MODEL_LAYOUT');
  });
});

function firstLine(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stderr?.on('data', (d) => (err += d));
    child.stdout?.on('data', (d) => {
      out += d;
      if (out.includes('\n')) resolve(out.split('\n')[0]);
    });
    child.once('exit', (code) => reject(new Error(`draft serve exited (${code}) before printing its URL: ${err}`)));
  });
}

describe('draft serve: a real process', () => {
  it('--port 0 prints the URL; serves chat with a per-request method; SIGTERM finishes the in-flight request and exits 0', async () => {
    const models = ['--target', 'models/fixtures/random-target', '--draft', 'models/fixtures/random-draft'];
    const child = spawn(process.execPath, [bin, 'serve', '--port', '0', '--max-concurrent', '1', '--max-queue', '4', '--plugin', plugin, ...models], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const url = await firstLine(child);
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(Number(new URL(url).port)).toBeGreaterThan(0);
      expect((await (await fetch(`${url}/health`)).json()) as object).toMatchObject({ status: 'ok', model: 'random-target', draft: 'random-draft' });
      const prompt = Array.from({ length: 40 }, (_, i) => `Line ${i}: the keeper wrote a note about the tide.`).join(' ');
      const chat = await fetch(`${url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'random-target', messages: [{ role: 'user', content: prompt }], max_tokens: 3, draft: { method: 'specpc', budget: 32, window: 8 } }),
      });
      expect(chat.status).toBe(200);
      const body = (await chat.json()) as { usage: { draft: Record<string, unknown> } };
      expect(body.usage.draft).toMatchObject({ method: 'specpc', compressedPromptTokens: 32 });
      // the served target has a ragged cache: AdaKV keeps C entries per layer on average, split unevenly over heads
      const ada = await fetch(`${url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt, max_tokens: 2, draft: { method: 'adakv', budget: 48, window: 8 } }) });
      expect(ada.status).toBe(200);
      const kept = ((await ada.json()) as { usage: { draft: { keptKvTokens: { min: number; max: number; mean: number } } } }).usage.draft.keptKvTokens;
      expect(kept.mean).toBe(48);
      expect(kept.max).toBeGreaterThan(kept.min);

      // a policy registered by --plugin is served per request, as `generate --plugin` runs it
      const keynorm = await fetch(`${url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt, max_tokens: 2, draft: { method: 'keynorm', budget: 40 } }) });
      expect(keynorm.status).toBe(200);
      expect(((await keynorm.json()) as { usage: { draft: { keptKvTokens: { max: number } } } }).usage.draft.keptKvTokens.max).toBe(40);
      // a second server on the same port: a typed error and exit code 1, not a "shutting down" line
      const busy = await cli(['serve', '--port', new URL(url).port, ...models.map((m) => (m.startsWith('models/') ? join(root, m) : m))]);
      expect(busy.code).toBe(1);
      expect(busy.stderr).toContain('[ADDRESS_IN_USE]');
      expect(busy.stderr).not.toContain('shutting down');

      const inflight = fetch(`${url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt, max_tokens: 300 }) }).then((r) => r.json() as Promise<{ usage: { completion_tokens: number } }>);
      for (let i = 0; i < 500 && ((await (await fetch(`${url}/health`)).json()) as { active: number }).active === 0; i++) await new Promise((r) => setTimeout(r, 10));
      child.kill('SIGTERM');
      const done = await inflight;
      expect(done.usage.completion_tokens).toBe(300);
      expect(await exited).toBe(0);
      expect(stderr).toContain('shutting down');
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }, 120_000);
});
