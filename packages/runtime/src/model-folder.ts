import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ModelLayoutError, type ModelInfoV1 } from '@draft/core';
import { type ModelFileOptions, type ModelFiles, resolveModelFiles } from './model-files.js';

/** The parsed files of a decoder folder in the Hugging Face / transformers.js layout. */
export interface ModelFolder {
  dir: string;
  config: Record<string, unknown>;
  generationConfig: Record<string, unknown>;
  tokenizerJson: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
  /** Path of the chosen ONNX file (`onnx/model.onnx` for fp32; see `files`). */
  modelPath: string;
  /** The chosen dtype, file and external data. */
  files: ModelFiles;
  info: ModelInfoV1;
  ropeTheta: number;
}

const SUPPORTED_ARCHITECTURES = ['llama', 'qwen2', 'mistral', 'qwen3'];

function readJson(path: string, required: boolean): Record<string, unknown> | undefined {
  if (!existsSync(path)) {
    if (!required) return undefined;
    throw new ModelLayoutError(`Missing model file ${path}.`, { path });
  }
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(path, 'utf8'));
  } catch (cause) {
    throw new ModelLayoutError(`Malformed JSON in ${path}: ${(cause as Error).message}`, { path, cause });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ModelLayoutError(`${path} must hold a JSON object.`, { path });
  }
  return value as Record<string, unknown>;
}

function positiveInt(config: Record<string, unknown>, key: string, path: string, fallback?: number): number {
  const value = config[key] ?? fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new ModelLayoutError(`${path}: '${key}' must be a positive integer (got ${JSON.stringify(value)}).`, { path, details: { key } });
  }
  return value;
}

function ids(value: unknown): number[] {
  if (typeof value === 'number') return [value];
  if (Array.isArray(value)) return value.filter((v): v is number => typeof v === 'number');
  return [];
}

/**
 * Reads and validates config.json, generation_config.json (optional), tokenizer.json, tokenizer_config.json
 * and checks the ONNX file of the dtype exists (see `resolveModelFiles`). Throws ModelLayoutError naming the
 * offending path.
 */
export function readModelFolder(dir: string, options: ModelFileOptions = {}): ModelFolder {
  if (!existsSync(dir)) throw new ModelLayoutError(`Model folder ${dir} does not exist.`, { path: dir });
  const configPath = join(dir, 'config.json');
  const config = readJson(configPath, true) as Record<string, unknown>;
  const generationConfig = readJson(join(dir, 'generation_config.json'), false) ?? {};
  const tokenizerJson = readJson(join(dir, 'tokenizer.json'), true) as Record<string, unknown>;
  const tokenizerConfig = readJson(join(dir, 'tokenizer_config.json'), false) ?? {};
  const files = resolveModelFiles(dir, config, options);
  const modelPath = files.modelPath;

  const architecture = String(config.model_type ?? '');
  if (!SUPPORTED_ARCHITECTURES.includes(architecture)) {
    throw new ModelLayoutError(
      `${configPath}: model_type ${JSON.stringify(config.model_type)} is not supported (supported: ${SUPPORTED_ARCHITECTURES.join(', ')}).`,
      { path: configPath, details: { key: 'model_type' } },
    );
  }
  const hidden = positiveInt(config, 'hidden_size', configPath);
  const numHeads = positiveInt(config, 'num_attention_heads', configPath);
  const numKvHeads = positiveInt(config, 'num_key_value_heads', configPath, numHeads);
  if (numHeads % numKvHeads !== 0) {
    throw new ModelLayoutError(`${configPath}: num_attention_heads (${numHeads}) must be a multiple of num_key_value_heads (${numKvHeads}).`, {
      path: configPath,
    });
  }
  const headDim = positiveInt(config, 'head_dim', configPath, Math.floor(hidden / numHeads));
  const eos = ids(generationConfig.eos_token_id ?? config.eos_token_id);
  const bos = ids(generationConfig.bos_token_id ?? config.bos_token_id)[0];
  const info: ModelInfoV1 = {
    architecture,
    numLayers: positiveInt(config, 'num_hidden_layers', configPath),
    numHeads,
    numKvHeads,
    headDim,
    vocabSize: positiveInt(config, 'vocab_size', configPath),
    maxPositions: positiveInt(config, 'max_position_embeddings', configPath),
    eosTokenIds: eos,
    ...(bos === undefined ? {} : { bosTokenId: bos }),
  };
  const ropeTheta = typeof config.rope_theta === 'number' ? config.rope_theta : 10000;
  return { dir, config, generationConfig, tokenizerJson, tokenizerConfig, modelPath, files, info, ropeTheta };
}
