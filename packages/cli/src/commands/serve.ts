import { InvalidArgumentError } from '@draft/core';
import { resolveModelDir } from '../model-dirs.js';
import { decodeEngineOption, dtypeOption, intOption, kvStorageOption, numberOption, prefillEngineOption } from '../options.js';

export interface ServeFlags {
  host?: string;
  port?: string;
  target?: string;
  draft?: string;
  dtype?: string;
  'draft-dtype'?: string;
  'decode-engine'?: string;
  'prefill-engine'?: string;
  'kv-storage'?: string;
  'draft-release-idle'?: string;
  'max-concurrent'?: string;
  'max-queue'?: string;
  'max-connections'?: string;
  'body-timeout'?: string;
  'shutdown-timeout'?: string;
  'api-key'?: string;
  cors?: string[];
}

/** Longest timeout Node's timers keep: a larger delay fires after 1 ms instead (TimeoutOverflowWarning). */
const MAX_TIMEOUT_SECONDS = Math.floor(2_147_483_647 / 1000);

/** Seconds (as typed on the command line) to whole milliseconds, at most ~24.8 days (Node's timer limit). */
function secondsOption(name: string, raw: string | undefined, min: number): number | undefined {
  const seconds = numberOption(name, raw, min);
  if (seconds !== undefined && seconds > MAX_TIMEOUT_SECONDS) {
    throw new InvalidArgumentError({ argument: `--${name}`, value: raw, expected: `a number of seconds in [${min}, ${MAX_TIMEOUT_SECONDS}]` });
  }
  return seconds === undefined ? undefined : Math.round(seconds * 1000);
}

/**
 * `draft serve`: loads the models once, serves the OpenAI-compatible API of `@draft/server`, prints the base URL
 * on stdout (one line; `--port 0` picks a free port) and resolves with exit code 0 after a graceful shutdown
 * (SIGTERM/SIGINT). The API key may come from `$DRAFT_API_KEY` instead of `--api-key` (kept off `ps`).
 */
export async function runServe(flags: ServeFlags, io: { stdout: (text: string) => void; stderr: (text: string) => void }): Promise<number> {
  const port = intOption('port', flags.port, 0) ?? 8080;
  if (port > 65535) throw new InvalidArgumentError({ argument: '--port', value: flags.port, expected: 'an integer in [0, 65535]' });
  const maxConcurrent = intOption('max-concurrent', flags['max-concurrent'], 1);
  const maxQueue = intOption('max-queue', flags['max-queue'], 0);
  const dtype = dtypeOption('dtype', flags.dtype);
  const draftDtype = dtypeOption('draft-dtype', flags['draft-dtype']);
  const decodeEngine = decodeEngineOption('decode-engine', flags['decode-engine']);
  const prefillEngine = prefillEngineOption('prefill-engine', flags['prefill-engine'], decodeEngine);
  const kvStorage = kvStorageOption('kv-storage', flags['kv-storage'], prefillEngine);
  const maxConnections = intOption('max-connections', flags['max-connections'], 1);
  const bodyTimeoutMs = secondsOption('body-timeout', flags['body-timeout'], 0.001);
  const shutdownTimeoutMs = secondsOption('shutdown-timeout', flags['shutdown-timeout'], 0);
  const draftReleaseIdleMs = secondsOption('draft-release-idle', flags['draft-release-idle'], 0);
  const apiKey = flags['api-key'] ?? (process.env.DRAFT_API_KEY || undefined);
  if (apiKey !== undefined && apiKey.length === 0) throw new InvalidArgumentError({ argument: '--api-key', value: '', expected: 'a non-empty key' });
  const target = resolveModelDir('target', flags.target);
  const draft = resolveModelDir('draft', flags.draft);
  // Loaded on demand: the other commands do not pay for the HTTP framework.
  const { startServer } = await import('@draft/server');
  const server = await startServer({
    host: flags.host ?? '127.0.0.1',
    port,
    target,
    draft,
    dtype,
    draftDtype,
    decodeEngine,
    prefillEngine,
    kvStorage,
    draftReleaseIdleMs,
    maxConcurrent,
    maxQueue,
    maxConnections,
    bodyTimeoutMs,
    shutdownTimeoutMs,
    apiKey,
    corsOrigins: flags.cors,
    log: (line) => io.stderr(`${line}\n`),
  });
  io.stdout(`${server.url}\n`);
  await server.closed;
  return 0;
}
