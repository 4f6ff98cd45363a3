import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { InvalidArgumentError, UnsupportedCapabilityError } from '@draft/core';
import type { ModelDtype } from '@draft/runtime';
import { dtypeOption, intOption } from '../options.js';

export interface ServeFlags {
  host?: string;
  port?: string;
  target?: string;
  draft?: string;
  dtype?: string;
  'draft-dtype'?: string;
  'max-concurrent'?: string;
  'max-queue'?: string;
}

/** What `draft serve` needs from `@draft/example-server` (typed here so the CLI does not depend on it). */
interface ServerModule {
  startServer(options: {
    host?: string;
    port?: number;
    target?: string;
    draft?: string;
    dtype?: ModelDtype;
    draftDtype?: ModelDtype;
    maxConcurrent?: number;
    maxQueue?: number;
    log?: (line: string) => void;
    handleSignals?: boolean;
  }): Promise<{ url: string; port: number; closed: Promise<void>; close(): Promise<void> }>;
}

const SERVER_PACKAGE = '@draft/example-server';

/**
 * The server lives in the private example package `examples/server` (it imports this CLI for `planMethod`, so
 * the CLI cannot depend on it, and a published package cannot depend on a private one). Found as an installed
 * package first, else in the repository checkout this CLI runs from.
 */
async function loadServerModule(): Promise<ServerModule> {
  const specifier: string = SERVER_PACKAGE;
  try {
    return (await import(specifier)) as ServerModule;
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code !== 'ERR_MODULE_NOT_FOUND' || !String((error as Error).message).includes(SERVER_PACKAGE)) throw error;
  }
  for (const start of [dirname(fileURLToPath(import.meta.url)), process.cwd()]) {
    for (let dir = start; ; dir = dirname(dir)) {
      const entry = join(dir, 'examples', 'server', 'dist', 'index.js');
      if (existsSync(join(dir, 'examples', 'server', 'package.json')) && existsSync(entry)) return (await import(pathToFileURL(entry).href)) as ServerModule;
      if (dirname(dir) === dir) break;
    }
  }
  throw new UnsupportedCapabilityError({
    capability: 'server',
    component: 'draft serve',
    message: `draft serve needs ${SERVER_PACKAGE} (examples/server in the repository): install it, or build it with \`pnpm --filter ${SERVER_PACKAGE} build\`.`,
  });
}

/**
 * `draft serve`: loads the models once, serves the OpenAI-compatible API, prints the base URL on stdout (one
 * line; `--port 0` picks a free port) and resolves with exit code 0 after a graceful shutdown (SIGTERM/SIGINT).
 */
export async function runServe(flags: ServeFlags, io: { stdout: (text: string) => void; stderr: (text: string) => void }): Promise<number> {
  const port = intOption('port', flags.port, 0) ?? 8080;
  if (port > 65535) throw new InvalidArgumentError({ argument: '--port', value: flags.port, expected: 'an integer in [0, 65535]' });
  const maxConcurrent = intOption('max-concurrent', flags['max-concurrent'], 1);
  const maxQueue = intOption('max-queue', flags['max-queue'], 0);
  const dtype = dtypeOption('dtype', flags.dtype);
  const draftDtype = dtypeOption('draft-dtype', flags['draft-dtype']);
  const { startServer } = await loadServerModule();
  const server = await startServer({
    host: flags.host ?? '127.0.0.1',
    port,
    target: flags.target,
    draft: flags.draft,
    dtype,
    draftDtype,
    maxConcurrent,
    maxQueue,
    log: (line) => io.stderr(`${line}\n`),
  });
  io.stdout(`${server.url}\n`);
  await server.closed;
  return 0;
}
