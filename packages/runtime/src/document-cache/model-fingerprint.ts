import { createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { InvalidArgumentError } from '@draft/core';
import type { OrtCausalLM } from '../causal-lm.js';
import { modelSourceOf } from '../model-source.js';

/** Files at most this large are hashed whole; larger ones by their size, first and last `SAMPLE_BYTES`. */
const FULL_HASH_LIMIT = 64 * 1024 * 1024;
const SAMPLE_BYTES = 16 * 1024 * 1024;

/**
 * What identifies a model's KV: a document cache made with one model is refused by any other. The weight file
 * is hashed whole up to 64 MiB; a larger one (inline weights) by its size plus its first and last 16 MiB
 * (`sampled: true`), so opening a cache does not re-read gigabytes. External data files count by name and size.
 */
export interface ModelFingerprint {
  architecture: string;
  /** SHA-256 of config.json's bytes. */
  configSha256: string;
  onnx: { file: string; bytes: number; sha256: string; sampled: boolean };
  externalData: { file: string; bytes: number }[];
  tokenizer: string;
  /** Weight format picked by `loadModel` (`fp32`, `fp16`, `q8`, …). */
  dtype: string;
  /** Element type of the graph's past/present KV. */
  kvType: string;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  vocabSize: number;
}

// Hashing a weight file once per process is enough while its size and mtime stay the same.
const hashes = new Map<string, { key: string; value: { sha256: string; sampled: boolean } }>();

function hashFile(path: string): { bytes: number; sha256: string; sampled: boolean } {
  const fd = openSync(path, 'r');
  try {
    const stat = fstatSync(fd);
    const key = `${stat.size}:${stat.mtimeMs}`;
    const known = hashes.get(path);
    if (known?.key === key) return { bytes: stat.size, ...known.value };
    const hash = createHash('sha256');
    const sampled = stat.size > FULL_HASH_LIMIT;
    const ranges: [number, number][] = sampled ? [[0, SAMPLE_BYTES], [stat.size - SAMPLE_BYTES, stat.size]] : [[0, stat.size]];
    if (sampled) hash.update(`size:${stat.size};`);
    const buffer = Buffer.alloc(Math.min(4 * 1024 * 1024, Math.max(1, stat.size)));
    for (const [from, to] of ranges) {
      for (let at = from; at < to; ) {
        const n = readSync(fd, buffer, 0, Math.min(buffer.length, to - at), at);
        if (n <= 0) break;
        hash.update(buffer.subarray(0, n));
        at += n;
      }
    }
    const value = { sha256: hash.digest('hex'), sampled };
    hashes.set(path, { key, value });
    return { bytes: stat.size, ...value };
  } finally {
    closeSync(fd);
  }
}

/** The fingerprint of a model made by `loadModel`. */
export function modelFingerprint(model: OrtCausalLM): ModelFingerprint {
  const source = modelSourceOf(model);
  if (!source) {
    throw new InvalidArgumentError({ argument: 'model', value: model.name, expected: 'a model loaded with @draft/runtime loadModel (its folder identifies the cache)' });
  }
  const { info } = model;
  return {
    architecture: info.architecture,
    configSha256: createHash('sha256').update(readFileSync(source.configPath)).digest('hex'),
    onnx: { file: basename(source.modelPath), ...hashFile(source.modelPath) },
    externalData: source.externalDataPaths.map((p) => ({ file: basename(p), bytes: statSync(p).size })),
    tokenizer: model.tokenizer.fingerprint,
    dtype: source.dtype,
    kvType: model.graph.kvType,
    numLayers: info.numLayers,
    numHeads: info.numHeads,
    numKvHeads: info.numKvHeads,
    headDim: info.headDim,
    vocabSize: info.vocabSize,
  };
}
