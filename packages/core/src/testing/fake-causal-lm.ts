import type { CapabilitiesV1 } from '../spec/capabilities.js';
import { DisposedError, InvalidArgumentError, PromptTooLongError, throwIfAborted, UnsupportedCapabilityError } from '../spec/errors.js';
import type { CausalLMV1, ForwardRequestV1, ForwardResultV1, ModelInfoV1 } from '../spec/model.js';
import type { TokenizerV1 } from '../spec/tokenizer.js';
import { CacheTracker, FakeKvCache } from './fake-kv-cache.js';
import { createFakeTokenizer } from './fake-tokenizer.js';

/** What the model saw on one forward call (for assertions). */
export interface FakeForwardCall {
  inputIds: number[];
  positionIds: number[];
  /** Entries per (layer 0, head 0) of the request cache (0 without one). */
  cacheLength: number;
  cacheNextPosition: number;
  captureQueries?: number | 'all';
  logits: 'last' | 'all';
}

export interface NextTokenInput {
  /** Token whose logits are produced. */
  tokenId: number;
  position: number;
  /** Entries the token attends to (its own included), layer 0 head 0. */
  attendedPositions: Int32Array;
}

export interface FakeCausalLMOptions {
  name?: string;
  numLayers?: number;
  numHeads?: number;
  numKvHeads?: number;
  headDim?: number;
  maxPositions?: number;
  tokenizer?: TokenizerV1;
  eosTokenIds?: number[];
  /** Overrides of the default capabilities (all true except raggedKvHeads / raggedLayers). */
  capabilities?: Partial<CapabilitiesV1>;
  /**
   * The greedy next token after processing one token. Default: the letter 'a' + ((position + 1) mod 26), so the
   * output spells the positions the model believes it is at (a decode at a wrong position shows).
   */
  nextToken?: (input: NextTokenInput) => number;
  tracker?: CacheTracker;
}

/**
 * A tiny deterministic CausalLMV1 for tests, with a real in-memory KV cache (FakeKvCache). Keys, values and
 * queries are smooth functions of (token, position, layer, head) so scoring policies see structured data;
 * logits are one-hot (10 at `nextToken(...)`, 0 elsewhere). Every forward call is recorded in `calls`;
 * `tracker.live` counts caches not yet disposed.
 */
export class FakeCausalLM implements CausalLMV1 {
  readonly specificationVersion = 'v1' as const;
  readonly name: string;
  readonly info: ModelInfoV1;
  readonly capabilities: CapabilitiesV1;
  readonly tokenizer: TokenizerV1;
  readonly tracker: CacheTracker;
  readonly calls: FakeForwardCall[] = [];
  private readonly nextToken: (input: NextTokenInput) => number;
  private disposed = false;

  constructor(options: FakeCausalLMOptions = {}) {
    this.tokenizer = options.tokenizer ?? createFakeTokenizer();
    const numHeads = options.numHeads ?? 4;
    const numKvHeads = options.numKvHeads ?? 2;
    if (numHeads % numKvHeads !== 0) throw new InvalidArgumentError({ argument: 'numHeads', value: numHeads, expected: `a multiple of ${numKvHeads}` });
    this.name = options.name ?? 'fake-lm';
    this.info = {
      architecture: 'fake',
      numLayers: options.numLayers ?? 2,
      numHeads,
      numKvHeads,
      headDim: options.headDim ?? 4,
      vocabSize: this.tokenizer.vocabSize,
      maxPositions: options.maxPositions ?? 4096,
      eosTokenIds: options.eosTokenIds ?? [0],
    };
    this.capabilities = {
      tokenIds: true,
      queryCapture: true,
      allQueryCapture: true,
      kvSelection: true,
      raggedKvHeads: false,
      raggedLayers: false,
      positionIds: true,
      ...options.capabilities,
    };
    this.tracker = options.tracker ?? new CacheTracker();
    this.nextToken = options.nextToken ?? ((input) => 97 + ((input.position + 1) % 26));
  }

  /** An empty cache of this model's shape. */
  emptyCache(): FakeKvCache {
    const { numLayers, numKvHeads, headDim } = this.info;
    return new FakeKvCache({
      numLayers,
      numKvHeads,
      headDim,
      raggedKvHeads: this.capabilities.raggedKvHeads,
      raggedLayers: this.capabilities.raggedLayers,
      tracker: this.tracker,
    });
  }

  async forward(request: ForwardRequestV1): Promise<ForwardResultV1> {
    if (this.disposed) throw new DisposedError(`model '${this.name}'`);
    throwIfAborted(request.signal);
    const { numLayers, numHeads, numKvHeads, headDim: d, vocabSize, maxPositions } = this.info;
    const ids = Array.from(request.inputIds);
    const count = ids.length;
    if (count === 0) throw new InvalidArgumentError({ argument: 'inputIds', value: ids, expected: 'at least one token' });
    const past = request.cache as FakeKvCache | undefined;
    if (past !== undefined && !(past instanceof FakeKvCache)) {
      throw new InvalidArgumentError({ argument: 'cache', value: typeof past, expected: 'a FakeKvCache' });
    }
    const start = past?.nextPosition ?? 0;
    const positions = request.positionIds ? Int32Array.from(request.positionIds) : Int32Array.from({ length: count }, (_, i) => start + i);
    if (positions.length !== count) throw new InvalidArgumentError({ argument: 'positionIds.length', value: positions.length, expected: `${count}` });
    if (request.positionIds && !this.capabilities.positionIds) {
      throw new UnsupportedCapabilityError({ capability: 'positionIds', component: 'forward', backend: this.name });
    }
    const last = Math.max(...positions);
    if (last >= maxPositions) throw new PromptTooLongError({ promptTokens: last + 1, maxPositions });
    const capture = request.captureQueries;
    if (capture !== undefined) {
      const need = capture === 'all' ? 'allQueryCapture' : 'queryCapture';
      if (!this.capabilities[need]) throw new UnsupportedCapabilityError({ capability: need, component: 'forward', backend: this.name });
      if (capture !== 'all' && (!Number.isInteger(capture) || capture < 1 || capture > count)) {
        throw new InvalidArgumentError({ argument: 'captureQueries', value: capture, expected: `an integer in 1..${count}` });
      }
    }
    this.calls.push({
      inputIds: ids,
      positionIds: Array.from(positions),
      cacheLength: past ? past.lengths[0][0] : 0,
      cacheNextPosition: past ? past.nextPosition : 0,
      captureQueries: capture,
      logits: request.logits ?? 'last',
    });

    const keys: Float32Array[] = [];
    const values: Float32Array[] = [];
    for (let l = 0; l < numLayers; l++) {
      const k = new Float32Array(numKvHeads * count * d);
      const v = new Float32Array(numKvHeads * count * d);
      for (let h = 0; h < numKvHeads; h++) {
        for (let i = 0; i < count; i++) {
          for (let x = 0; x < d; x++) {
            const o = (h * count + i) * d + x;
            k[o] = fakeKey(ids[i], positions[i], l, h, x);
            v[o] = 0.5 * k[o] + ids[i] / vocabSize;
          }
        }
      }
      keys.push(k);
      values.push(v);
    }
    const base = past ?? this.emptyCache();
    const cache = base.append(positions, keys, values);
    if (!past) base.dispose();

    let queries: Float32Array[] | undefined;
    if (capture !== undefined) {
      const w = capture === 'all' ? count : capture;
      queries = [];
      for (let l = 0; l < numLayers; l++) {
        const q = new Float32Array(numHeads * w * d);
        for (let h = 0; h < numHeads; h++) {
          for (let i = 0; i < w; i++) {
            const t = count - w + i;
            for (let x = 0; x < d; x++) q[(h * w + i) * d + x] = fakeQuery(ids[t], positions[t], l, h, x);
          }
        }
        queries.push(q);
      }
    }

    const rows = (request.logits ?? 'last') === 'all' ? count : 1;
    const logits = new Float32Array(rows * vocabSize);
    const held = cache.slot(0, 0).positions;
    for (let r = 0; r < rows; r++) {
      const t = count - rows + r;
      const attended = held.subarray(0, held.length - (count - 1 - t));
      const next = this.nextToken({ tokenId: ids[t], position: positions[t], attendedPositions: attended });
      logits[r * vocabSize + next] = 10;
    }
    return { logits, cache, queries };
  }

  async dispose(): Promise<void> {
    this.disposed = true;
  }
}

/** Post-RoPE-like key: depends on the token and (smoothly) on the position. */
export function fakeKey(token: number, position: number, layer: number, kvHead: number, x: number): number {
  return Math.fround(Math.sin(0.3 * token * (x + 1) + 0.7 * (kvHead + 1) + 0.11 * layer) + 0.01 * Math.cos(position * (x + 1)));
}

export function fakeQuery(token: number, position: number, layer: number, head: number, x: number): number {
  return Math.fround(Math.cos(0.2 * token * (x + 1) + 0.5 * head + 0.13 * layer) + 0.01 * Math.sin(position * (x + 1)));
}
