import { resolve } from 'node:path';
import {
  CacheFileError,
  type CallOptions,
  InvalidArgumentError,
  type PrefixCacheV1,
  type PrefixCachesV1,
  range,
  requireInteger,
  throwIfAborted,
} from '@draft/core';
import type { OrtCausalLM } from '../causal-lm.js';
import type { OrtKvCache } from '../kv-cache.js';
import { type CacheContainer, CACHE_FILE_VERSION, openCacheContainer, type SectionData, writeCacheContainer } from './container.js';
import { exportKv, importKv } from './kv-transfer.js';
import { type ModelFingerprint, modelFingerprint } from './model-fingerprint.js';

/** `format` field of a document cache header. */
export const DOCUMENT_CACHE_FORMAT = 'draft-document-cache';
/** Prompt positions whose queries are stored by default: covers SnapKV/SpecKV/LAQ++ windows up to 127 behind a 1-token question. */
export const DEFAULT_STORED_QUERIES = 128;

/** One model's part of a document cache header. */
export interface StoredModelHeader {
  fingerprint: ModelFingerprint;
  /** Document tokens in this model's vocabulary, at positions 0 … tokenCount − 1. */
  inputIds: number[];
  tokenCount: number;
  /** Trailing document positions whose post-RoPE queries are stored (0 for the draft). */
  queryCount: number;
}

/** The JSON header of a document cache file (see the runtime README, "Document caches"). */
export interface DocumentCacheHeader {
  format: typeof DOCUMENT_CACHE_FORMAT;
  formatVersion: number;
  createdBy: string;
  createdAt: string;
  target: StoredModelHeader;
  draft?: StoredModelHeader;
}

export interface BuildDocumentCacheOptions extends CallOptions {
  target: OrtCausalLM;
  /** Also store the draft's KV of the document (SpecKV's lookahead then prefills only the question on the draft). */
  draft?: OrtCausalLM;
  /** Document text (encoded with the target's special tokens, e.g. BOS) or the target's token ids. */
  document: string | { inputIds: readonly number[] };
  /** File to write (replaced atomically). */
  path: string;
  /**
   * Trailing document positions whose target queries are stored, for cache policies whose query window reaches
   * back past a short question (window W + 1 for SnapKV/SpecKV, W + 1 for LAQ++'s own pass), or 'all' (H2O).
   * Default 128 (clamped to the document length).
   */
  storeQueries?: number | 'all';
  /** Prefill chunk size (bounds activation memory on long documents). */
  chunkSize?: number;
}

export interface BuildDocumentCacheResult {
  path: string;
  fileBytes: number;
  header: DocumentCacheHeader;
  /** Milliseconds of the target's (and the draft's) document prefill. */
  prefillMs: { target: number; draft?: number };
}

function sameVocabulary(a: OrtCausalLM, b: OrtCausalLM): boolean {
  return a.tokenizer.fingerprint === b.tokenizer.fingerprint;
}

/** The draft's tokens for a target prompt, as `DraftLookahead` computes them (ids as they are, or via text). */
function draftIdsFor(target: OrtCausalLM, draft: OrtCausalLM, ids: readonly number[]): number[] {
  return sameVocabulary(target, draft) ? Array.from(ids) : draft.tokenizer.encode(target.tokenizer.decode(ids, { skipSpecialTokens: true }));
}

async function prefillSections(
  role: 'target' | 'draft',
  model: OrtCausalLM,
  ids: number[],
  queryCount: number,
  options: CallOptions & { chunkSize?: number },
): Promise<{ header: StoredModelHeader; sections: SectionData[]; ms: number }> {
  const started = performance.now();
  const result = await model.forward({
    inputIds: ids,
    positionIds: range(0, ids.length),
    captureQueries: queryCount > 0 ? queryCount : undefined,
    chunkSize: options.chunkSize,
    signal: options.signal,
    onProgress: options.onProgress,
  });
  const ms = performance.now() - started;
  try {
    const kv = await exportKv(model, result.cache);
    const { numLayers, numHeads, numKvHeads, headDim } = model.info;
    const k = ids.length;
    const element = kv.kvType === 'float16' ? 'float16' : 'float32';
    const sections: SectionData[] = [{ name: `${role}.positions`, elementType: 'int32', shape: [k], data: range(0, k) }];
    for (let l = 0; l < numLayers; l++) {
      sections.push({ name: `${role}.${l}.key`, elementType: element, shape: [numKvHeads, k, headDim], data: kv.keys[l] });
      sections.push({ name: `${role}.${l}.value`, elementType: element, shape: [numKvHeads, k, headDim], data: kv.values[l] });
      if (queryCount > 0 && result.queries) {
        sections.push({ name: `${role}.${l}.query`, elementType: 'float32', shape: [numHeads, queryCount, headDim], data: result.queries[l] });
      }
    }
    return { header: { fingerprint: modelFingerprint(model), inputIds: ids, tokenCount: k, queryCount }, sections, ms };
  } finally {
    result.cache.dispose();
  }
}

/**
 * Prefills a document once and writes the target's full KV (every layer, keys and values, in the graph's KV
 * element type), the positions, the post-RoPE queries of its last `storeQueries` positions and, with `draft`,
 * the draft's KV to `path`, in the versioned, checksummed format of `container.ts`. The file is refused by any
 * other model, weight dtype or format version (`openDocumentCache`).
 */
export async function buildDocumentCache(options: BuildDocumentCacheOptions): Promise<BuildDocumentCacheResult> {
  const { target, draft, signal } = options;
  const path = resolve(options.path);
  const ids = typeof options.document === 'string' ? target.tokenizer.encode(options.document) : Array.from(options.document?.inputIds ?? []);
  if (ids.length === 0) throw new InvalidArgumentError({ argument: 'document', value: options.document, expected: 'a document of at least one token' });
  const stored = options.storeQueries ?? DEFAULT_STORED_QUERIES;
  const queryCount = stored === 'all' ? ids.length : Math.min(ids.length, requireInteger('storeQueries', stored, 0));
  throwIfAborted(signal);
  const call = { signal, onProgress: options.onProgress, chunkSize: options.chunkSize };
  const t = await prefillSections('target', target, ids, queryCount, call);
  const d = draft ? await prefillSections('draft', draft, draftIdsFor(target, draft, ids), 0, call) : undefined;
  throwIfAborted(signal);
  const header: DocumentCacheHeader = {
    format: DOCUMENT_CACHE_FORMAT,
    formatVersion: CACHE_FILE_VERSION,
    createdBy: '@draft/runtime',
    createdAt: new Date().toISOString(),
    target: t.header,
    ...(d ? { draft: d.header } : {}),
  };
  let fileBytes: number;
  try {
    fileBytes = writeCacheContainer(path, header as unknown as Record<string, unknown>, [...t.sections, ...(d?.sections ?? [])]);
  } catch (cause) {
    throw new InvalidArgumentError({ argument: 'path', value: path, expected: `a writable file path (${(cause as Error).message})`, cause });
  }
  return { path, fileBytes, header, prefillMs: { target: t.ms, ...(d ? { draft: d.ms } : {}) } };
}

export interface OpenDocumentCacheOptions extends CallOptions {
  /** The target the cache was built with (same folder, dtype and tokenizer). */
  target: OrtCausalLM;
  /** The draft: its stored KV is loaded when the file has it (else lookaheads prefill the draft in full). */
  draft?: OrtCausalLM;
}

const FINGERPRINT_DTYPE_FIELDS = ['dtype', 'kvType'] as const;
const FINGERPRINT_MODEL_FIELDS = ['architecture', 'configSha256', 'onnx', 'externalData', 'tokenizer', 'numLayers', 'numHeads', 'numKvHeads', 'headDim', 'vocabSize'] as const;

function checkFingerprint(path: string, role: string, stored: ModelFingerprint, model: OrtCausalLM): void {
  const loaded = modelFingerprint(model);
  const differs = (field: keyof ModelFingerprint) => JSON.stringify(stored[field]) !== JSON.stringify(loaded[field]);
  const dtype = FINGERPRINT_DTYPE_FIELDS.filter(differs);
  if (dtype.length > 0) {
    throw new CacheFileError({
      path,
      reason: 'dtype-mismatch',
      message: `built with the ${role}'s ${dtype.map((f) => `${f} ${stored[f]}`).join(', ')}, but '${model.name}' is loaded with ${dtype.map((f) => `${f} ${loaded[f]}`).join(', ')}; load it with --dtype ${stored.dtype} or rebuild the cache.`,
      details: { role, fields: dtype, stored: Object.fromEntries(dtype.map((f) => [f, stored[f]])), loaded: Object.fromEntries(dtype.map((f) => [f, loaded[f]])) },
    });
  }
  const model_ = FINGERPRINT_MODEL_FIELDS.filter(differs);
  if (model_.length > 0) {
    throw new CacheFileError({
      path,
      reason: 'model-mismatch',
      message: `built with another ${role} model than '${model.name}' (${model_.join(', ')} differ); rebuild the cache with this model.`,
      details: { role, fields: model_, stored: Object.fromEntries(model_.map((f) => [f, stored[f]])), loaded: Object.fromEntries(model_.map((f) => [f, loaded[f]])) },
    });
  }
}

function checkModelHeader(path: string, role: string, value: unknown, vocabSize: number): StoredModelHeader {
  const h = value as StoredModelHeader;
  const bad = (what: string): never => {
    throw new CacheFileError({ path, reason: 'malformed', message: `the ${role} entry of the header ${what}.`, details: { role } });
  };
  if (typeof h !== 'object' || h === null || typeof h.fingerprint !== 'object' || h.fingerprint === null) bad('has no model fingerprint');
  if (!Number.isSafeInteger(h.tokenCount) || h.tokenCount < 1) bad('has no token count');
  if (!Array.isArray(h.inputIds) || h.inputIds.length !== h.tokenCount || h.inputIds.some((id) => !Number.isInteger(id) || id < 0 || id >= vocabSize)) {
    bad(`does not hold ${h.tokenCount} token ids in [0, ${vocabSize})`);
  }
  if (!Number.isSafeInteger(h.queryCount) || h.queryCount < 0 || h.queryCount > h.tokenCount) bad('has an invalid query count');
  return h;
}

/** Reads one model's stored prefix from a verified container into that model's worker. */
async function loadPrefix(container: CacheContainer, role: 'target' | 'draft', model: OrtCausalLM, h: StoredModelHeader): Promise<PrefixCacheV1> {
  const { numLayers } = model.info;
  const positions = container.read(`${role}.positions`);
  if (!(positions instanceof Int32Array) || positions.length !== h.tokenCount || positions.some((p, i) => p !== i)) {
    throw new CacheFileError({ path: container.path, reason: 'malformed', message: `the ${role} positions are not 0 … ${h.tokenCount - 1}.`, details: { role } });
  }
  const keys: (Float32Array | Uint16Array)[] = [];
  const values: (Float32Array | Uint16Array)[] = [];
  const queries: Float32Array[] = [];
  const kvElement = model.graph.kvType === 'float16' ? Uint16Array : Float32Array;
  const size = model.info.numKvHeads * h.tokenCount * model.info.headDim;
  const qSize = model.info.numHeads * h.queryCount * model.info.headDim;
  for (let l = 0; l < numLayers; l++) {
    const key = container.read(`${role}.${l}.key`);
    const value = container.read(`${role}.${l}.value`);
    if (!(key instanceof kvElement) || !(value instanceof kvElement) || key.length !== size || value.length !== size) {
      throw new CacheFileError({ path: container.path, reason: 'malformed', message: `layer ${l} of the ${role} KV does not have the model's shape and element type.`, details: { role, layer: l } });
    }
    keys.push(key);
    values.push(value);
    if (h.queryCount > 0) {
      const q = container.read(`${role}.${l}.query`);
      if (!(q instanceof Float32Array) || q.length !== qSize) {
        throw new CacheFileError({ path: container.path, reason: 'malformed', message: `layer ${l} of the ${role} queries does not have the model's shape.`, details: { role, layer: l } });
      }
      queries.push(q);
    }
  }
  const cache: OrtKvCache = await importKv(model, { keys, values, length: h.tokenCount });
  return { inputIds: Object.freeze(h.inputIds.slice()), cache, queryCount: h.queryCount, ...(h.queryCount > 0 ? { queries } : {}) };
}

/**
 * A document cache loaded into its models' workers. Pass `prefix` to `createPipeline(...).generate(prompt,
 * { prefix })` with `prompt = { inputIds: cache.promptIds(question) }`. Dispose it when done (its KV lives in the
 * workers).
 */
export class DocumentCache {
  readonly path: string;
  readonly header: DocumentCacheHeader;
  /** Target and (when stored and a draft was given) draft prefixes for `PipelineGenerateOptions.prefix`. */
  readonly prefix: PrefixCachesV1;
  private disposed = false;

  /** @internal use `openDocumentCache` */
  constructor(
    path: string,
    header: DocumentCacheHeader,
    prefix: PrefixCachesV1,
    private readonly target: OrtCausalLM,
  ) {
    this.path = path;
    this.header = header;
    this.prefix = prefix;
  }

  /** The document's tokens in the target's vocabulary. */
  get inputIds(): readonly number[] {
    return this.header.target.inputIds;
  }

  get tokenCount(): number {
    return this.header.target.tokenCount;
  }

  /**
   * The prompt for a question: the document's tokens followed by the question encoded **without** special
   * tokens. A fresh run on these ids gives the same tokens as a run from the cache.
   */
  promptIds(question: string): number[] {
    const tail = this.target.tokenizer.encode(question, { addSpecialTokens: false });
    if (tail.length === 0) throw new InvalidArgumentError({ argument: 'question', value: question, expected: 'a question of at least one token' });
    return this.header.target.inputIds.concat(tail);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.prefix.target?.cache.dispose();
    this.prefix.draft?.cache.dispose();
  }

  /** `await using cache = await openDocumentCache(…)` (Node ≥ 20 has `Symbol.asyncDispose`). */
  [Symbol.asyncDispose](): Promise<void> {
    this.dispose();
    return Promise.resolve();
  }
}

/**
 * Opens a document cache for `target` (and `draft`): verifies the file (magic, version, size, SHA-256), then that
 * it was built with these models (fingerprints: config, weight file, tokenizer, dtype, KV element type, shape),
 * and only then loads the KV into the models' workers. Throws `CacheFileError` with `reason` 'unreadable',
 * 'not-a-cache-file', 'unsupported-version', 'truncated', 'checksum', 'malformed', 'model-mismatch' or
 * 'dtype-mismatch', naming the file; the models are untouched by a refused file.
 */
export async function openDocumentCache(path: string, options: OpenDocumentCacheOptions): Promise<DocumentCache> {
  const { target, draft, signal } = options;
  const file = resolve(path);
  throwIfAborted(signal);
  const container = openCacheContainer(file);
  try {
    const header = container.header as unknown as DocumentCacheHeader;
    if (header.format !== DOCUMENT_CACHE_FORMAT) {
      throw new CacheFileError({ path: file, reason: 'malformed', message: `the header's format is ${JSON.stringify(header.format)}, not '${DOCUMENT_CACHE_FORMAT}'.` });
    }
    const t = checkModelHeader(file, 'target', header.target, target.info.vocabSize);
    checkFingerprint(file, 'target', t.fingerprint, target);
    const d = draft && header.draft !== undefined ? checkModelHeader(file, 'draft', header.draft, draft.info.vocabSize) : undefined;
    if (draft && d) checkFingerprint(file, 'draft', d.fingerprint, draft);
    throwIfAborted(signal);
    const targetPrefix = await loadPrefix(container, 'target', target, t);
    let draftPrefix: PrefixCacheV1 | undefined;
    try {
      if (draft && d) draftPrefix = await loadPrefix(container, 'draft', draft, d);
    } catch (error) {
      targetPrefix.cache.dispose();
      throw error;
    }
    return new DocumentCache(file, header, { target: targetPrefix, ...(draftPrefix ? { draft: draftPrefix } : {}) }, target);
  } finally {
    container.close();
  }
}
