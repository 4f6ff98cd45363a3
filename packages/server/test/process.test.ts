import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { JSON_HEADERS, LONG_PROMPT, MODELS } from './helpers.js';

const script = fileURLToPath(new URL('./fixtures/serve.mjs', import.meta.url));
const dist = fileURLToPath(new URL('../dist/index.js', import.meta.url));

function serve(env: Record<string, string>): { child: ChildProcess; url: Promise<string>; exited: Promise<number | null>; stderr: () => string } {
  const child = spawn(process.execPath, [script], { env: { ...process.env, SERVE_TARGET: `${MODELS}fixtures/random-target`, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr?.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d) => {
      out += d;
      if (out.includes('\n')) resolve(out.split('\n')[0]);
    });
    void exited.then((code) => reject(new Error(`server exited (${code}) before printing its URL: ${err}`)));
  });
  url.catch(() => {}); // awaited only by tests that expect a URL
  return { child, url, exited, stderr: () => err };
}

function stalledUpload(port: number): Promise<Socket> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(`POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"pro`);
      resolve(socket);
    });
    socket.on('error', () => {});
  });
}

describe.runIf(existsSync(dist))('the server as a process', () => {
  it('SIGTERM with stalled uploads and a long generation exits 0 within the shutdown deadline', async () => {
    const server = serve({ SERVE_SHUTDOWN_MS: '1000', SERVE_BODY_MS: '60000' });
    try {
      const url = await server.url;
      const port = Number(new URL(url).port);
      const sockets = await Promise.all(Array.from({ length: 5 }, () => stalledUpload(port)));
      const long = fetch(`${url}/v1/completions`, { method: 'POST', headers: JSON_HEADERS, body: JSON.stringify({ prompt: LONG_PROMPT, max_tokens: 2000, stream: true }) });
      const reader = ((await long).body as ReadableStream<Uint8Array>).getReader();
      await reader.read(); // generating
      const started = Date.now();
      server.child.kill('SIGTERM');
      expect(await server.exited).toBe(0);
      expect(Date.now() - started).toBeLessThan(5_000); // deadline 1 s + abort + disposing the model
      expect(server.stderr()).toContain('shutdown deadline passed');
      for (const s of sockets) s.destroy();
    } finally {
      if (server.child.exitCode === null) server.child.kill('SIGKILL');
    }
  }, 60_000);

  it('a busy port exits 1 with [ADDRESS_IN_USE] and no "shutting down" line', async () => {
    const first = serve({});
    try {
      const port = new URL(await first.url).port;
      const second = serve({ SERVE_PORT: port });
      expect(await second.exited).toBe(1);
      expect(second.stderr()).toContain('[ADDRESS_IN_USE]');
      expect(second.stderr()).not.toContain('shutting down');
      first.child.kill('SIGTERM');
      expect(await first.exited).toBe(0);
    } finally {
      if (first.child.exitCode === null) first.child.kill('SIGKILL');
    }
  }, 60_000);
});
