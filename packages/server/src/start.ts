import { DraftError } from '@draft/core';
import { type LoadModelOptions, loadModel, type ModelDtype, type OrtCausalLM } from '@draft/runtime';
import { createDraftServer, type DraftServer, type DraftServerOptions } from './server.js';

/** Options of `startServer`: where to listen, which model folders to load, and the server's own options. */
export interface StartServerOptions extends Omit<DraftServerOptions, 'target' | 'draft' | 'disposeModels'> {
  /** Default '127.0.0.1'. */
  host?: string;
  /** Default 8080; 0 picks a free port. */
  port?: number;
  /** Target model folder (`draft serve` defaults it to the bundled target). */
  target: string;
  /** Draft model folder; absent for none. */
  draft?: string;
  /** Weight file of the target (transformers.js dtype: fp32, fp16, q8, int8, uint8, q4, q4f16, bnb4). */
  dtype?: ModelDtype;
  /** Weight file of the draft. */
  draftDtype?: ModelDtype;
  /** ORT intra-op threads per model. */
  threads?: number;
  /**
   * Who runs single-token decode steps of the target and the draft (the runtime's `decodeEngine`): 'ort' or
   * 'native', the decode engine registered with @draft/core (`import '@draft/cuda/register'`; `draft serve`
   * registers it). A model 'native' cannot decode rejects with UnsupportedCapabilityError (capability
   * 'nativeDecode'). Default 'ort'.
   */
  decodeEngine?: LoadModelOptions['decodeEngine'];
  /**
   * Who runs prefills of the target and the draft (the runtime's `prefillEngine`): 'ort' or 'native' (needs
   * `decodeEngine: 'native'`; the ORT sessions are then released). Default 'ort'.
   */
  prefillEngine?: LoadModelOptions['prefillEngine'];
  /** Element type of the target's and draft's caches (the runtime's `kvStorage`; 'float16' needs both engines 'native'). Default 'float32'. */
  kvStorage?: LoadModelOptions['kvStorage'];
  /**
   * Release the draft's ORT session after it idled this many milliseconds (the runtime's
   * `releaseMemoryWhenIdleMs`): a draft runs once per request, and its prefill's activations would otherwise stay
   * resident through the target's prefill and between requests. Each release costs a session creation (the
   * perf draft: tens of milliseconds) in the draft's worker, off the target's path. Default: never.
   */
  draftReleaseIdleMs?: number;
  /**
   * Load the target with a ragged cache so per-head / per-layer budgets (AdaKV, PyramidKV) can be served too;
   * costs one elementwise Add over the attention scores per layer. Falls back to a plain cache when the graph
   * cannot take it (fused GroupQueryAttention). Default true.
   */
  raggedCache?: boolean;
  /** Close gracefully on SIGTERM / SIGINT (default true). */
  handleSignals?: boolean;
}

export interface RunningServer extends DraftServer {
  /** Base URL, e.g. 'http://127.0.0.1:8080' (the OpenAI base URL is this + '/v1'). */
  readonly url: string;
  readonly port: number;
  /** Resolves once the server has closed (after `close()` or a signal). */
  readonly closed: Promise<void>;
}

/**
 * Loads the models once, starts the server, and (by default) shuts it down gracefully on SIGTERM/SIGINT
 * (stop accepting, finish in-flight requests within `shutdownTimeoutMs`, dispose the models). Never calls
 * `process.exit`: with the models disposed and the socket closed the event loop drains and the process exits 0.
 */
export async function startServer(options: StartServerOptions): Promise<RunningServer> {
  const { host = '127.0.0.1', port = 8080, threads, handleSignals = true, raggedCache = true, target: targetDir, draft: draftDir, dtype, draftDtype, decodeEngine, prefillEngine, kvStorage, draftReleaseIdleMs, ...serverOptions } = options;
  const models: OrtCausalLM[] = [];
  // As many sequences decode in one batch as may run at once (a bad maxConcurrent is the server's error to report).
  const concurrent = serverOptions.maxConcurrent;
  const maxDecodeBatch = Number.isInteger(concurrent) ? Math.min(256, Math.max(1, concurrent as number)) : 8;
  let server: DraftServer;
  try {
    const targetPath = targetDir;
    let target: OrtCausalLM;
    try {
      target = await loadModel(targetPath, { threads, raggedCache, dtype, maxDecodeBatch, decodeEngine, prefillEngine, kvStorage });
    } catch (error) {
      if (!raggedCache || !DraftError.isInstance(error) || error.code !== 'UNSUPPORTED_CAPABILITY') throw error;
      // The native decoder's refusal is not the ragged cache's: loading without one would fail the same way.
      if (error.details.capability === 'nativeDecode' || error.details.capability === 'nativePrefill') throw error;
      serverOptions.log?.(`draft server: ${error.message} Serving without a ragged cache (no AdaKV / PyramidKV).`);
      target = await loadModel(targetPath, { threads, dtype, maxDecodeBatch, decodeEngine, prefillEngine, kvStorage });
    }
    models.push(target);
    const draft = draftDir === undefined ? undefined : await loadModel(draftDir, { threads, dtype: draftDtype, maxDecodeBatch, releaseMemoryWhenIdleMs: draftReleaseIdleMs, decodeEngine, prefillEngine, kvStorage });
    if (draft) models.push(draft);
    server = createDraftServer({ ...serverOptions, target, draft });
  } catch (error) {
    await Promise.all(models.map((m) => m.dispose()));
    throw error;
  }
  let listening: { url: string; port: number };
  try {
    listening = await server.listen({ host, port });
  } catch (error) {
    // Not listening: close quietly (no "shutting down" line before the real reason, e.g. ADDRESS_IN_USE).
    await server.close();
    throw error;
  }
  let resolveClosed: () => void = () => {};
  const closed = new Promise<void>((resolve) => {
    resolveClosed = resolve;
  });
  const onSignal = (signal: NodeJS.Signals) => {
    serverOptions.log?.(`draft server: ${signal}`);
    void close();
  };
  const close = async () => {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    await server.close();
    resolveClosed();
  };
  if (handleSignals) {
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  }
  return {
    http: server.http,
    get stats() {
      return server.stats;
    },
    listen: server.listen,
    close,
    url: listening.url,
    port: listening.port,
    closed,
  };
}
