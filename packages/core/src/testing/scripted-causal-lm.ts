import { NO_CAPABILITIES } from '../spec/capabilities.js';
import type { KeptIndices } from '../spec/common.js';
import type { KvCacheV1 } from '../spec/kv-cache.js';
import type { CausalLMV1, ForwardRequestV1, ForwardResultV1 } from '../spec/model.js';
import type { TokenizerV1 } from '../spec/tokenizer.js';

/**
 * The cache of `createScriptedCausalLM`: one layer, one KV head, headDim 1, holding the (token, position) of
 * each entry so tests can read what a gather kept. Registers itself in `live` until disposed; a second
 * `dispose()` throws.
 */

export class ScriptedKvCache implements KvCacheV1 {
  readonly specificationVersion = 'v1' as const;
  readonly numLayers = 1;
  readonly numKvHeads = 1;
  readonly headDim = 1;
  disposed = false;
  constructor(
    readonly entries: readonly { token: number; position: number }[],
    readonly nextPosition: number,
    private readonly live: Set<ScriptedKvCache>,
  ) {
    live.add(this);
  }
  get lengths() {
    return [[this.entries.length]];
  }
  get uniform() {
    return true;
  }
  positions(): Int32Array {
    return Int32Array.from(this.entries.map((e) => e.position));
  }
  async readKeys(): Promise<Float32Array> {
    return new Float32Array(this.entries.length);
  }
  async readValues(): Promise<Float32Array> {
    return new Float32Array(this.entries.length);
  }
  async gather(kept: KeptIndices): Promise<KvCacheV1> {
    return new ScriptedKvCache(Array.from(kept[0][0], (i) => this.entries[i]), this.nextPosition, this.live);
  }
  async crop(length: number): Promise<KvCacheV1> {
    return new ScriptedKvCache(this.entries.slice(0, length), this.nextPosition, this.live);
  }
  async clone(): Promise<KvCacheV1> {
    return new ScriptedKvCache(this.entries, this.nextPosition, this.live);
  }
  byteSize(): number {
    return this.entries.length * 8;
  }
  dispose(): void {
    if (this.disposed) throw new Error('double dispose');
    this.disposed = true;
    this.live.delete(this);
  }
}

/**
 * A letter tokenizer for tests: 'a' + (id − offset) <-> id (default offset 0, vocabSize 16). `specials` decode to
 * '<eos>', or to nothing with `skipSpecialTokens`. No BOS: `encode` is one id per character.
 */
export function createLetterTokenizer(options: { offset?: number; fingerprint: string; vocabSize?: number; specials?: number[] }): TokenizerV1 {
  const offset = options.offset ?? 0;
  const specials = new Set(options.specials ?? []);
  return {
    vocabSize: options.vocabSize ?? 16,
    fingerprint: options.fingerprint,
    encode: (text) => Array.from(text, (c) => c.charCodeAt(0) - 97 + offset),
    decode: (ids, opts) =>
      ids
        .filter((id) => !(opts?.skipSpecialTokens && specials.has(id)))
        .map((id) => (specials.has(id) ? '<eos>' : String.fromCharCode(97 + id - offset)))
        .join(''),
  };
}

/** A `CausalLMV1` from `createScriptedCausalLM`, recording its forward calls and live caches. */
export interface ScriptedCausalLM extends CausalLMV1 {
  calls: { inputIds: number[]; positionIds: number[]; cacheLength: number }[];
  live: Set<ScriptedKvCache>;
}

/**
 * A scripted causal LM for lookahead tests: one layer, one head, its next token is `next(lastInputToken)`
 * (one-hot logits), caches are `ScriptedKvCache`s tracked in `live`, and every forward call is recorded in
 * `calls` as `{ inputIds, positionIds, cacheLength }`. Captured queries (when asked) are zeros. Lighter than
 * `FakeCausalLM`, whose keys and queries carry structure for scoring tests.
 */
export function createScriptedCausalLM(options: {
  next: (token: number) => number;
  tokenizer: TokenizerV1;
  eos: number[];
  vocabSize?: number;
  maxPositions?: number;
  queryCapture?: boolean;
}): ScriptedCausalLM {
  const live = new Set<ScriptedKvCache>();
  const calls: ScriptedCausalLM['calls'] = [];
  const vocab = options.vocabSize ?? 16;
  return {
    specificationVersion: 'v1',
    name: 'fake',
    info: {
      architecture: 'fake',
      numLayers: 1,
      numHeads: 1,
      numKvHeads: 1,
      headDim: 1,
      vocabSize: vocab,
      maxPositions: options.maxPositions ?? 1024,
      eosTokenIds: options.eos,
    },
    capabilities: { ...NO_CAPABILITIES, tokenIds: true, kvSelection: true, queryCapture: options.queryCapture ?? true },
    tokenizer: options.tokenizer,
    calls,
    live,
    async forward(request: ForwardRequestV1): Promise<ForwardResultV1> {
      const ids = Array.from(request.inputIds);
      const previous = (request.cache as ScriptedKvCache | undefined) ?? new ScriptedKvCache([], 0, live);
      if (previous.disposed) throw new Error('forward on a disposed cache');
      const start = previous.nextPosition;
      const positions = request.positionIds ? Array.from(request.positionIds) : ids.map((_, i) => start + i);
      calls.push({ inputIds: ids, positionIds: positions, cacheLength: previous.entries.length });
      const entries = [...previous.entries, ...ids.map((token, i) => ({ token, position: positions[i] }))];
      const cache = new ScriptedKvCache(entries, Math.max(previous.nextPosition, positions[positions.length - 1] + 1), live);
      if (!request.cache) previous.dispose();
      const logits = new Float32Array(vocab);
      logits[options.next(ids[ids.length - 1])] = 1;
      const w = request.captureQueries === 'all' ? ids.length : request.captureQueries;
      return w === undefined ? { logits, cache } : { logits, cache, queries: [new Float32Array(w)] };
    },
    async dispose() {},
  };
}
