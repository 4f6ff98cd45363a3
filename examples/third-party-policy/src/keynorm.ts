import {
  BaseCachePolicy,
  type CapabilityName,
  type PolicyConfig,
  registerPolicy,
  type SelectionContextV1,
} from '@draft/core';

export interface KeyNormOptions {
  /** W: the last W prompt entries before the final token are always kept (default 8). */
  windowSize?: number;
}

/**
 * KeyNorm (Devoto et al., "A Simple and Effective L2 Norm-Based Strategy for KV Cache Compression", 2024):
 * keys with a small L2 norm tend to draw high attention, so the score is the negated key norm. Needs no
 * queries at all — the base class does the window, top-k and validation. Higher score = keep.
 */
export class KeyNormPolicy extends BaseCachePolicy {
  readonly type = 'keynorm';
  readonly queryWindow = 1;
  readonly requires: readonly CapabilityName[] = ['kvSelection'];

  constructor(options: KeyNormOptions = {}) {
    super({ windowSize: options.windowSize ?? 8 });
  }

  /** (numKvHeads, n + L): −‖k‖₂ per key. */
  async score(context: SelectionContextV1, layer: number): Promise<Float32Array> {
    const keys = await context.keys(layer);
    const d = context.headDim;
    const out = new Float32Array(keys.length / d);
    for (let row = 0; row < out.length; row++) {
      let sum = 0;
      for (let x = 0; x < d; x++) sum += keys[row * d + x] ** 2;
      out[row] = -Math.sqrt(sum);
    }
    return out;
  }

  toConfig(): PolicyConfig {
    return { type: this.type, windowSize: this.windowSize };
  }
}

/** Registers `keynorm` with @draft/core's registry; the `draft` CLI calls this for `--plugin`. */
export function register(): () => void {
  return registerPolicy('keynorm', (config) => new KeyNormPolicy({ windowSize: config.windowSize as number | undefined }), {
    kind: 'cache',
    description: 'KeyNorm (third-party example): keep the keys with the smallest L2 norm',
    override: true,
  });
}
