import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import {
  type CapabilitiesV1,
  type CausalLMV1,
  createPipeline,
  createPolicy,
  DraftError,
  type ForwardResultV1,
  listPolicies,
  type LookaheadProviderV1,
  ModelLayoutError,
  type ModelInfoV1,
  NO_CAPABILITIES,
  type PipelineOptions,
  type TokenizerV1,
} from '@draft/core';
import onnxProto from 'onnx-proto';
import type { ArchitectureConfig } from './architectures.js';
import { type FusedAttentionNode, findFusedAttention } from './graph/fused-attention.js';
import { type AttentionPattern, instrumentGraph } from './graph/instrument.js';
import { checkConfigAgainstGraph, readGraphIo } from './graph/graph-io.js';
import { readModelFolder } from './model-folder.js';

const { onnx } = onnxProto;

/** Version of the `ModelInspection` shape (and of `draft inspect --json`). */
export const INSPECTION_SCHEMA_VERSION = 1;

/** How one layer's attention is built. */
export type AttentionStyle =
  /** MatMul(Q, Kᵀ) → scale → mask → Softmax, as torch exports (query capture, ragged caches). */
  | 'decomposed'
  /** com.microsoft.GroupQueryAttention with separate Q, K, V. */
  | 'gqa'
  /** com.microsoft.GroupQueryAttention with one packed QKV input. */
  | 'gqa-packed-qkv'
  /** com.microsoft.MultiHeadAttention (rotary applied before it). */
  | 'mha'
  /** The ONNX opset-23 Attention op (rotary applied before it). */
  | 'attention'
  /** Another fused operator (PackedAttention, com.microsoft.Attention, …): not supported by the runtime. */
  | 'other-fused';

export interface LayerInspection {
  layer: number;
  style: AttentionStyle;
  /** The node the runtime captures queries at (decomposed: the Q·Kᵀ MatMul), or the fused node. */
  node: string;
  /** `domain.opType` of the node. */
  op: string;
  /** GQA: whether the export wires `position_ids` (input 9) into the node. */
  positionIdsWired?: boolean;
  /**
   * GQA: how the loaded model gets rotary positions: 'wired' (by the export), 'rewired' (the runtime wires the
   * graph's position_ids in at load), 'none' (the node does not rotate; positions enter upstream).
   */
  positionIds?: 'wired' | 'rewired' | 'none';
  /**
   * GQA with do_rotary: 'initializer' (float32 cos/sin initializers the runtime reads), 'computed' (cos/sin computed in
   * the graph, external or fp16: captured queries are rotated with the runtime's tables from config.json), 'none'.
   */
  rotaryCache?: 'initializer' | 'computed' | 'none';
  /** GQA `local_window_size` (in-graph sliding window). */
  localWindowSize?: number;
}

/** One ONNX file in `onnx/`, with its external data files. */
export interface OnnxFileInspection {
  /** Relative to the model folder, e.g. 'onnx/model_q4.onnx'. */
  path: string;
  /** From the file name: 'fp32' (model.onnx), 'fp16', 'q4', 'q4f16', 'int8', 'uint8', 'q8' (quantized), 'bnb4', … */
  dtype: string;
  bytes: number;
  /** `model.onnx_data`, `model.onnx_data_1`, `model.onnx.data` … beside it. */
  externalData: { path: string; bytes: number }[];
  /** The file the runtime loads. */
  loaded: boolean;
}

/** Whether a method's pipeline can be built on this model (core's `createPipeline` checks), and why not. */
export interface MethodInspection {
  method: string;
  runs: boolean;
  /** Why it is refused: the error `createPipeline` (or the model load) throws. */
  reason?: string;
  /** That error's stable code, e.g. 'UNSUPPORTED_CAPABILITY'. */
  code?: string;
}

/** What a model folder is and what it can do, read without creating an ORT session. JSON-stable (`schemaVersion`). */
export interface ModelInspection {
  schemaVersion: typeof INSPECTION_SCHEMA_VERSION;
  /** The folder's name. */
  name: string;
  /** config.json read by architecture (RoPE, sliding window, attention scale, soft-capping, …). */
  architecture: Omit<ArchitectureConfig, 'warnings'>;
  /** The ModelInfoV1 `loadModel` would report. */
  info: ModelInfoV1;
  files: OnnxFileInspection[];
  graph: {
    /** Element type of the KV inputs (`past_key_values.0.key`), e.g. 'float32', 'float16'. */
    kvDtype?: string;
    /** Element type of `logits`. */
    logitsDtype?: string;
    inputs: { name: string; dtype: string; shape: (number | string)[] }[];
    outputs: { name: string; dtype: string; shape: (number | string)[] }[];
    opsets: Record<string, number>;
  };
  attention: {
    /** The runtime's pattern ('decomposed' | 'gqa' | 'mha' | 'attention') when it can instrument it, 'unsupported' otherwise. */
    pattern: AttentionPattern | 'unsupported';
    layers: LayerInspection[];
  };
  /** Whether `loadModel` would accept the folder (graph contract and attention pattern); the session itself is not created. */
  loadable: boolean;
  loadError?: { code: string; message: string };
  /**
   * What `loadModel` offers: ragged caches (`raggedKvHeads` / `raggedLayers`) with `raggedCache: true`
   * (decomposed attention only); explicit positions always (GroupQueryAttention without wired position_ids
   * is rewired at load). All false when not loadable.
   */
  capabilities: CapabilitiesV1;
  methods: MethodInspection[];
  warnings: string[];
}

export interface InspectModelOptions {
  /**
   * Pipelines to check, by method name: the stages without target and draft (the inspected model plays both).
   * Default: every cache policy (with a lookahead when it scores with one) and prompt compressor registered in
   * `@draft/core`'s policy registry, with its default config.
   */
  methods?: Readonly<Record<string, Omit<PipelineOptions, 'target' | 'draft'>>>;
}

const DTYPE_SUFFIX: Readonly<Record<string, string>> = Object.freeze({ '': 'fp32', quantized: 'q8' });

function listOnnxFiles(dir: string, loadedPath: string): OnnxFileInspection[] {
  const onnxDir = join(dir, 'onnx');
  if (!existsSync(onnxDir)) return [];
  const names = readdirSync(onnxDir).sort();
  const size = (name: string) => statSync(join(onnxDir, name)).size;
  return names
    .filter((n) => n.endsWith('.onnx'))
    .map((n) => {
      const suffix = /^model(?:_(.+))?\.onnx$/.exec(n)?.[1] ?? '';
      const dtype = /^model(?:_.+)?\.onnx$/.test(n) ? (DTYPE_SUFFIX[suffix] ?? suffix) : 'unknown';
      const external = names.filter((e) => e !== n && (e.startsWith(`${n}_data`) || e.startsWith(`${n}.data`)));
      return {
        path: `onnx/${n}`,
        dtype,
        bytes: size(n),
        externalData: external.map((e) => ({ path: `onnx/${e}`, bytes: size(e) })),
        loaded: resolve(onnxDir, n) === resolve(loadedPath),
      };
    });
}

function stubModel(name: string, info: ModelInfoV1, capabilities: CapabilitiesV1): CausalLMV1 {
  const tokenizer: TokenizerV1 = { vocabSize: info.vocabSize, fingerprint: 'inspect', encode: () => [], decode: () => '' };
  return {
    specificationVersion: 'v1',
    name,
    info,
    capabilities,
    tokenizer,
    forward: (): Promise<ForwardResultV1> => Promise.reject(new Error('inspection stub')),
    dispose: async () => {},
  };
}

/** Any lookahead: lets `createPipeline` check a policy that scores with lookahead tokens. */
const ANY_LOOKAHEAD = {
  specificationVersion: 'v1',
  type: 'lookahead',
  needs: 'none',
  lookahead: () => Promise.reject(new Error('inspection stub')),
  toConfig: () => ({ type: 'lookahead' }),
} as unknown as LookaheadProviderV1;

function defaultMethods(): Record<string, Omit<PipelineOptions, 'target' | 'draft'>> {
  const methods: Record<string, Omit<PipelineOptions, 'target' | 'draft'>> = {};
  for (const p of listPolicies({ kind: 'cache' })) {
    try {
      const policy = createPolicy({ type: p.type }, { kind: 'cache' });
      methods[p.type] = { cachePolicy: policy, ...(policy.usesLookahead ? { lookahead: ANY_LOOKAHEAD } : {}) };
    } catch {
      methods[p.type] = { cachePolicy: { type: p.type } };
    }
  }
  for (const p of listPolicies({ kind: 'compressor' })) methods[p.type] = { compressor: { type: p.type } };
  return methods;
}

function errorInfo(error: unknown): { code: string; message: string } {
  return { code: DraftError.isInstance(error) ? error.code : 'INTERNAL', message: error instanceof Error ? error.message : String(error) };
}

/**
 * Reads a model folder and reports what it is: architecture and RoPE from config.json, the ONNX files by dtype,
 * the graph's KV / logits dtypes, the attention style per layer (read from the graph: no ORT session is
 * created), the capabilities `loadModel` would offer and which methods' pipelines `createPipeline` accepts.
 *
 * Throws ModelLayoutError for a folder `loadModel` could never read (missing or malformed files, bad config
 * fields) and when config.json's head counts or head_dim contradict the graph's KV inputs
 * (`checkConfigAgainstGraph`). An unsupported attention pattern is reported (`loadable: false`), not thrown.
 */
export function inspectModel(dir: string, options: InspectModelOptions = {}): ModelInspection {
  const folder = readModelFolder(resolve(dir));
  const { architecture: arch, info } = folder;
  let model: InstanceType<typeof onnx.ModelProto>;
  const bytes = readFileSync(folder.modelPath);
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (cause) {
    throw new ModelLayoutError(`Cannot parse ONNX model ${folder.modelPath}: ${(cause as Error).message}`, { path: folder.modelPath, cause });
  }
  const graph = model.graph;
  if (!graph) throw new ModelLayoutError(`ONNX model ${folder.modelPath} has no graph.`, { path: folder.modelPath });
  const kv = readGraphIo(graph as InstanceType<typeof onnx.GraphProto>);
  const fused = findFusedAttention(graph as InstanceType<typeof onnx.GraphProto>);
  checkConfigAgainstGraph({
    config: info,
    kv,
    fused: fused.filter((f) => f.opType === 'GroupQueryAttention').map((f) => ({ node: f.node, numHeads: f.numHeads, kvNumHeads: f.kvNumHeads })),
    configPath: join(folder.dir, 'config.json'),
    modelPath: folder.modelPath,
  });

  // The runtime's own instrumenter decides what loads; its captures give the layers.
  const warnings = [...arch.warnings];
  let pattern: ModelInspection['attention']['pattern'] = 'unsupported';
  let layers: LayerInspection[] = [];
  let loadError: ModelInspection['loadError'];
  try {
    const instrumented = instrumentGraph(bytes, { numLayers: info.numLayers, headDim: info.headDim, path: folder.modelPath });
    pattern = instrumented.pattern;
    layers = instrumented.captures.map((c) => {
      if (c.kind === 'decomposed') return { layer: c.layer, style: 'decomposed', node: c.node, op: 'ai.onnx.MatMul' } satisfies LayerInspection;
      const node = fused.find((f) => f.node === c.node) as FusedAttentionNode;
      if (c.kind === 'fused') return { layer: c.layer, style: c.op === 'MultiHeadAttention' ? 'mha' : 'attention', node: c.node, op: node.op } satisfies LayerInspection;
      return {
        layer: c.layer,
        style: c.packed ? 'gqa-packed-qkv' : 'gqa',
        node: c.node,
        op: node.op,
        positionIdsWired: node.positionIdsWired ?? false,
        positionIds: c.positionIds,
        // What the runtime uses to rotate captured queries: the node's float32 cos/sin initializers when it can
        // read them (not external data, not fp16), else its own tables.
        rotaryCache: !node.doRotary || node.rotaryCache === 'none' ? 'none' : c.cosCache ? 'initializer' : 'computed',
        ...(node.localWindowSize === undefined ? {} : { localWindowSize: node.localWindowSize }),
      } satisfies LayerInspection;
    });
  } catch (error) {
    loadError = errorInfo(error);
    layers = fused.map((f, k) => ({
      layer: f.layer ?? k,
      style: f.opType === 'GroupQueryAttention' ? (f.packedQkv ? 'gqa-packed-qkv' : 'gqa') : 'other-fused',
      node: f.node,
      op: f.op,
      ...(f.positionIdsWired === undefined ? {} : { positionIdsWired: f.positionIdsWired }),
    }));
  }
  // The worker's I/O contract (checked there against the session's names).
  if (!loadError) {
    const inputs = new Set(kv.inputs.map((t) => t.name));
    const outputs = new Set(kv.outputs.map((t) => t.name));
    const missing = ['input_ids', 'position_ids'].filter((n) => !inputs.has(n));
    for (let l = 0; l < info.numLayers; l++) {
      for (const n of [`past_key_values.${l}.key`, `past_key_values.${l}.value`]) if (!inputs.has(n)) missing.push(n);
      for (const n of [`present.${l}.key`, `present.${l}.value`]) if (!outputs.has(n)) missing.push(n);
    }
    if (!outputs.has('logits')) missing.push('logits');
    if (missing.length > 0) loadError = { code: 'GRAPH_PATTERN', message: `${folder.modelPath} lacks ${missing.slice(0, 4).join(', ')}${missing.length > 4 ? ', …' : ''} (the transformers.js KV I/O contract).` };
  }
  const loadable = loadError === undefined;
  const decomposed = pattern === 'decomposed';
  const capabilities: CapabilitiesV1 = loadable
    ? Object.freeze({
        tokenIds: true,
        queryCapture: true,
        allQueryCapture: true,
        kvSelection: true,
        raggedKvHeads: decomposed,
        raggedLayers: decomposed,
        positionIds: true,
      })
    : NO_CAPABILITIES;
  const slidingLayers = arch.layerTypes?.flatMap((t, i) => (t === 'sliding_attention' ? [i] : [])) ?? [];
  const unwindowed = layers.filter((l) => l.style !== 'decomposed' && slidingLayers.includes(l.layer) && l.localWindowSize === undefined);
  if (unwindowed.length > 0) {
    warnings.push(
      `config.json slides layers ${unwindowed.map((l) => l.layer).join(', ')} over ${arch.slidingWindow} tokens, but their GroupQueryAttention has no local_window_size: ` +
        'past that many tokens they attend to the whole cache, unlike the reference model.',
    );
  }
  const rewired = layers.filter((l) => l.positionIds === 'rewired');
  if (loadable && rewired.length > 0) {
    warnings.push(
      `GroupQueryAttention without wired position_ids in ${rewired.length} layer(s): loadModel wires the graph's position_ids into them, so KV methods keep true positions after compaction.`,
    );
  }

  const name = basename(folder.dir);
  const stub = stubModel(name, info, capabilities);
  const methods: MethodInspection[] = Object.entries(options.methods ?? defaultMethods()).map(([method, stages]) => {
    if (loadError) return { method, runs: false, reason: `the model does not load: ${loadError.message}`, code: loadError.code };
    try {
      createPipeline({ ...stages, target: stub, draft: stub });
      return { method, runs: true };
    } catch (error) {
      const { code, message } = errorInfo(error);
      return { method, runs: false, reason: message, code };
    }
  });

  const { warnings: _omit, ...architecture } = arch;
  const opsets: Record<string, number> = {};
  for (const o of model.opsetImport) opsets[o.domain || 'ai.onnx'] = Number(o.version);
  return {
    schemaVersion: INSPECTION_SCHEMA_VERSION,
    name,
    architecture,
    info,
    files: listOnnxFiles(folder.dir, folder.modelPath),
    graph: {
      ...(kv.kvDtype ? { kvDtype: kv.kvDtype } : {}),
      ...(kv.logitsDtype ? { logitsDtype: kv.logitsDtype } : {}),
      inputs: kv.inputs,
      outputs: kv.outputs,
      opsets,
    },
    attention: { pattern, layers },
    loadable,
    ...(loadError ? { loadError } : {}),
    capabilities,
    methods,
    warnings: warnings.map((w) => w.replace(`${folder.dir}/`, '')),
  };
}
