/** Progress report for long calls (load, prefill, lookahead, benchmark runs). */
export interface ProgressEvent {
  /** What is running, e.g. 'load', 'prefill', 'lookahead', 'decode', 'compress'. */
  stage: string;
  /** Units done so far (tokens, layers, files …). */
  completed: number;
  /** Units in all, when known. */
  total?: number;
}

export type ProgressCallback = (event: ProgressEvent) => void;

/** Options every long call accepts. */
export interface CallOptions {
  signal?: AbortSignal;
  onProgress?: ProgressCallback;
}

/**
 * Kept entries per layer and KV head: `kept[layer][kvHead]` holds **ascending** indices into the
 * cache's entries for that (layer, KV head). Uniform when every head of a layer keeps the same count.
 */
export type KeptIndices = readonly (readonly Int32Array[])[];
