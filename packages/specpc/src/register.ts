import { globalPolicyRegistry, type PolicyConfig, registerPolicy } from '@draft/core';
import { SpecPCCompressor } from './specpc-compressor.js';

export interface RegisterSpecPCOptions {
  /** Replace existing registrations of the same types. Default false: types already registered are left alone. */
  override?: boolean;
}

/**
 * Registers SpecPC in core's policy registry: `createPolicy({ type: 'specpc', ... }, { kind: 'compressor' })`.
 * Idempotent (a type already registered is skipped unless `override`). Returns a function that removes the
 * registrations made by this call.
 *
 * SpecKV-PC is not a registry type: its two stages share state (the draft answer), so build it with `specKVPC()`.
 */
export function registerSpecPC(options: RegisterSpecPCOptions = {}): () => void {
  const registry = globalPolicyRegistry();
  const undo: (() => void)[] = [];
  if (options.override || !registry.has('specpc')) {
    undo.push(
      registerPolicy<'compressor', PolicyConfig>('specpc', (config) => SpecPCCompressor.fromConfig(config), {
        kind: 'compressor',
        description: 'SpecPC (Galim et al. 2026): prompt compression scored by the draft attention of the last window queries',
        override: options.override,
      }),
    );
  }
  return () => {
    for (const u of undo) u();
  };
}
