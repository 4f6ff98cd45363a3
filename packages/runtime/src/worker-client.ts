import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { AbortError, DisposedError, DraftError, type DraftErrorCode, GraphPatternError, ModelLayoutError, UnsupportedCapabilityError } from '@draft/core';
import type { SerializedError, WorkerReply, WorkerRequest } from './worker-protocol.js';
import { ortWorkerStackSizeMb } from './worker-stack.js';

type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;
export type RequestBody = DistributiveOmit<WorkerRequest, 'id'>;

/**
 * The worker script: `worker.js` next to this module in the published build (a separate tsup entry); when
 * this module runs from sources (tests), the built `dist/worker.js`.
 */
export function workerUrl(): URL {
  const beside = new URL('./worker.js', import.meta.url);
  if (existsSync(fileURLToPath(beside))) return beside;
  const built = new URL('../dist/worker.js', import.meta.url);
  if (existsSync(fileURLToPath(built))) return built;
  throw new DraftError('INTERNAL', `Cannot find the @draft/runtime worker script (${fileURLToPath(beside)}); build the package first.`);
}

function revive(error: SerializedError): DraftError {
  let result: DraftError;
  if (error.code === 'GRAPH_PATTERN') result = new GraphPatternError(error.message, { details: error.details });
  else if (error.code === 'MODEL_LAYOUT') result = new ModelLayoutError(error.message, { path: error.details?.path as string | undefined, details: error.details });
  else if (error.code === 'ABORTED') result = new AbortError({});
  else if (error.code === 'UNSUPPORTED_CAPABILITY') {
    result = new UnsupportedCapabilityError({
      capability: String(error.details?.capability),
      component: String(error.details?.component),
      backend: error.details?.backend as string | undefined,
      message: error.message,
    });
  }
  else if (error.code === 'DISPOSED') result = new DisposedError(String(error.details?.resource ?? 'KvCache'));
  else {
    const known = error.code as DraftErrorCode;
    result = new DraftError(known, `${error.name}: ${error.message}`, { details: error.details });
  }
  return result;
}

/** Request/reply RPC over one worker thread. */
export class WorkerClient {
  private readonly worker: Worker;
  private nextId = 1;
  private readonly pending = new Map<
    number,
    {
      resolve: (value: unknown) => void;
      reject: (error: unknown) => void;
      onProgress?: (reply: Extract<WorkerReply, { type: 'progress' }>) => void;
      onLayer?: (reply: Extract<WorkerReply, { type: 'layer' }>) => void;
    }
  >();
  private dead: DraftError | undefined;
  private terminated = false;

  /** `onHeapFreed`: the worker's unsolicited 'heapFreed' notices (see heap-trim.ts). */
  constructor(private readonly onHeapFreed?: () => void) {
    // A stack sized for the command line: ORT's first session creation parses /proc/self/cmdline recursively
    // and overflowed the default 4 MB worker stack with a long `--prompt` (see worker-stack.ts).
    const stackSizeMb = ortWorkerStackSizeMb();
    this.worker = new Worker(workerUrl(), stackSizeMb === undefined ? {} : { resourceLimits: { stackSizeMb } });
    this.worker.on('message', (reply: WorkerReply) => {
      if (reply.type === 'heapFreed') {
        this.onHeapFreed?.();
        return;
      }
      const entry = this.pending.get(reply.id);
      if (!entry) return;
      if (reply.type === 'progress') {
        entry.onProgress?.(reply);
        return;
      }
      if (reply.type === 'layer') {
        entry.onLayer?.(reply);
        return;
      }
      this.pending.delete(reply.id);
      if (reply.type === 'result') entry.resolve(reply.result);
      else entry.reject(revive(reply.error));
    });
    const fail = (error: DraftError) => {
      this.dead = error;
      for (const entry of this.pending.values()) entry.reject(error);
      this.pending.clear();
    };
    this.worker.on('error', (cause) => fail(new DraftError('INTERNAL', `The ORT worker crashed: ${(cause as Error).message}`, { cause })));
    this.worker.on('exit', (code) => {
      if (!this.terminated) fail(new DraftError('INTERNAL', `The ORT worker exited with code ${code}.`));
    });
  }

  /** Sends a request; `onProgress` receives progress replies; returns the new request id through `onId`. */
  request<T>(
    body: RequestBody,
    options: {
      transfer?: ArrayBuffer[];
      onProgress?: (reply: Extract<WorkerReply, { type: 'progress' }>) => void;
      /** Intermediate per-layer replies of a 'prefillSelect'. */
      onLayer?: (reply: Extract<WorkerReply, { type: 'layer' }>) => void;
      onId?: (id: number) => void;
    } = {},
  ): Promise<T> {
    if (this.terminated) return Promise.reject(new DisposedError('OrtCausalLM'));
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    options.onId?.(id);
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject, onProgress: options.onProgress, onLayer: options.onLayer });
      this.worker.postMessage({ ...body, id }, options.transfer ?? []);
    });
  }

  /** Fire-and-forget message (release, cancel). */
  send(body: RequestBody): void {
    if (this.terminated || this.dead) return;
    this.worker.postMessage({ ...body, id: 0 });
  }

  async terminate(): Promise<void> {
    if (this.terminated) return;
    this.terminated = true;
    for (const entry of this.pending.values()) entry.reject(new DisposedError('OrtCausalLM'));
    this.pending.clear();
    await this.worker.terminate();
  }
}
