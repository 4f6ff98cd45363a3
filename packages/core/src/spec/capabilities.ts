/**
 * What a backend offers. Pipeline stages declare what they need (`requires`) and the pipeline checks it at
 * construction, throwing an UnsupportedCapabilityError that names the missing capability.
 */
export interface CapabilitiesV1 {
  /** Runs in-process with token ids and a KV cache (false for a remote text API). */
  tokenIds: boolean;
  /** Forward calls can return post-RoPE query states of the last w positions per layer. */
  queryCapture: boolean;
  /** Forward calls can return queries for every processed position (H2O needs all prompt queries). */
  allQueryCapture: boolean;
  /** The KV cache can be compacted by gather. */
  kvSelection: boolean;
  /** Each KV head of a layer may keep a different number of entries (AdaKV). */
  raggedKvHeads: boolean;
  /** Layers of one cache may hold different lengths (PyramidKV). */
  raggedLayers: boolean;
  /** Accepts explicit position ids (kept entries keep positions; compressed prompts may keep original positions). */
  positionIds: boolean;
}

export type CapabilityName = keyof CapabilitiesV1;

export const NO_CAPABILITIES: CapabilitiesV1 = Object.freeze({
  tokenIds: false,
  queryCapture: false,
  allQueryCapture: false,
  kvSelection: false,
  raggedKvHeads: false,
  raggedLayers: false,
  positionIds: false,
});
