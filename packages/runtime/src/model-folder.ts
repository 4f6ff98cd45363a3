import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ModelLayoutError, type ModelInfoV1 } from '@draft/core';
import { type ModelFileOptions, type ModelFiles, resolveModelFiles } from './model-files.js';
import { type ArchitectureConfig, parseArchitecture } from './architectures.js';
import type { RopeParameters } from './rope-scaling.js';

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
  /** RoPE frequencies and scaling from config.json. */
  rope: RopeParameters;
  /** Everything config.json says about the architecture (see `parseArchitecture`), warnings included. */
  architecture: ArchitectureConfig;
}

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
  // JSON.stringify quotes the path so control characters (a NUL, a tab) show in the message instead of vanishing.
  if (dir.includes('\0')) throw new ModelLayoutError(`Model folder ${JSON.stringify(dir)} contains a NUL byte.`, { path: dir });
  if (!existsSync(dir)) throw new ModelLayoutError(`Model folder ${dir} does not exist.`, { path: dir });
  // A file (config.json itself, an .onnx file, a device) passed as the folder: say so, not "missing dir/config.json".
  if (!statSync(dir).isDirectory()) throw new ModelLayoutError(`${dir} is not a folder; pass the model folder (the one holding config.json and onnx/).`, { path: dir });
  const configPath = join(dir, 'config.json');
  const config = readJson(configPath, true) as Record<string, unknown>;
  const generationConfig = readJson(join(dir, 'generation_config.json'), false) ?? {};
  const tokenizerJson = readJson(join(dir, 'tokenizer.json'), true) as Record<string, unknown>;
  const tokenizerConfig = readJson(join(dir, 'tokenizer_config.json'), false) ?? {};
  const files = resolveModelFiles(dir, config, options);
  const modelPath = files.modelPath;

  const arch = parseArchitecture(config, configPath);
  const eos = ids(generationConfig.eos_token_id ?? config.eos_token_id);
  const bos = ids(generationConfig.bos_token_id ?? config.bos_token_id)[0];
  const info: ModelInfoV1 = {
    architecture: arch.known ? arch.family : arch.modelType || 'unknown',
    numLayers: arch.numLayers,
    numHeads: arch.numHeads,
    numKvHeads: arch.numKvHeads,
    headDim: arch.headDim,
    vocabSize: arch.vocabSize,
    maxPositions: arch.maxPositions,
    eosTokenIds: eos,
    ...(bos === undefined ? {} : { bosTokenId: bos }),
    ...slidingInfo(arch),
    ...(Math.abs(arch.attentionScale * Math.sqrt(arch.headDim) - 1) > 1e-12 ? { attentionScale: arch.attentionScale } : {}),
  };
  return { dir, config, generationConfig, tokenizerJson, tokenizerConfig, modelPath, files, info, ropeTheta: arch.rope.theta, rope: arch.rope, architecture: arch };
}

function slidingInfo(arch: ArchitectureConfig): Pick<ModelInfoV1, 'slidingWindow' | 'slidingWindowLayers'> {
  if (arch.slidingWindow === undefined || !arch.layerTypes) return {};
  const layers = arch.layerTypes.flatMap((t, i) => (t === 'sliding_attention' ? [i] : []));
  return { slidingWindow: arch.slidingWindow, ...(layers.length === arch.numLayers ? {} : { slidingWindowLayers: layers }) };
}
