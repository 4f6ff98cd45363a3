import {
  type CapabilityName,
  type DecodePolicyV1,
  type DecodeStepContextV1,
  type KeptIndices,
  type PolicyConfig,
  requireInteger,
} from '@draft/core';
import { InvalidArgumentError } from '@draft/core';

export interface PeriodicRescoreOptions {
  /** Run the wrapped policy after every `every`-th decode step (steps every − 1, 2·every − 1, …). */
  every: number;
  /** The decode policy to run periodically (e.g. `slidingWindowDecode(...)`, or a third-party scorer). */
  policy: DecodePolicyV1;
}

/**
 * A composable wrapper: runs `policy.afterStep` only every `every` decode steps and keeps everything in
 * between, so the cache grows by up to `every` entries between evictions (fewer gathers, amortised cost).
 */
export class PeriodicRescore implements DecodePolicyV1 {
  readonly specificationVersion = 'v1' as const;
  readonly type: string = 'periodic-rescore';
  readonly requires: readonly CapabilityName[];
  readonly every: number;
  readonly policy: DecodePolicyV1;

  constructor(options: PeriodicRescoreOptions) {
    this.every = requireInteger('every', options?.every, 1);
    const policy = options.policy;
    if (policy?.specificationVersion !== 'v1' || typeof policy.afterStep !== 'function') {
      throw new InvalidArgumentError({ argument: 'policy', value: policy?.type, expected: "a DecodePolicyV1 (specificationVersion 'v1' with afterStep())" });
    }
    this.policy = policy;
    this.requires = policy.requires;
  }

  async afterStep(context: DecodeStepContextV1): Promise<KeptIndices | null> {
    if ((context.step + 1) % this.every !== 0) return null;
    return this.policy.afterStep(context);
  }

  toConfig(): PolicyConfig {
    return { type: 'periodic-rescore', every: this.every, policy: this.policy.toConfig() };
  }
}

/** `new PeriodicRescore(options)`. */
export function periodicRescore(options: PeriodicRescoreOptions): PeriodicRescore {
  return new PeriodicRescore(options);
}
