import { DuplicatePolicyError, InvalidArgumentError, PolicyOutputError, UnknownMethodError } from '../spec/errors.js';
import type { CachePolicyV1, DecodePolicyV1, LookaheadProviderV1, PolicyConfig, PromptCompressorV1 } from '../spec/policy.js';

/** The four pluggable stages (DESIGN.md "The decomposition"). */
export type PolicyKind = 'cache' | 'compressor' | 'decode' | 'lookahead';

/** What a factory of each kind returns. */
export interface PolicyKindMap {
  cache: CachePolicyV1;
  compressor: PromptCompressorV1;
  decode: DecodePolicyV1;
  lookahead: LookaheadProviderV1;
}

export type AnyPolicy = PolicyKindMap[PolicyKind];

/** Builds a policy from its serialisable config (`config.type` is the registered type). Throw InvalidArgumentError on bad options. */
export type PolicyFactory<K extends PolicyKind = PolicyKind, C extends PolicyConfig = PolicyConfig> = (config: C) => PolicyKindMap[K];

export interface RegisterPolicyOptions<K extends PolicyKind = PolicyKind> {
  kind: K;
  /** One line for `listPolicies()` and CLIs, e.g. 'SnapKV (Li et al. 2024): window-query attention, mean, pooled'. */
  description: string;
  /** Replace an existing registration of the same type instead of throwing DuplicatePolicyError. */
  override?: boolean;
}

export interface PolicyInfo {
  type: string;
  kind: PolicyKind;
  description: string;
}

interface Registration extends PolicyInfo {
  factory: PolicyFactory;
}

/** The method each kind's instances must have: checked after a factory runs. */
const KIND_METHOD: Record<PolicyKind, string> = { cache: 'select', compressor: 'compress', decode: 'afterStep', lookahead: 'lookahead' };
const KINDS = Object.keys(KIND_METHOD) as PolicyKind[];

/**
 * Policy types → factories. The process-wide instance lives on `globalThis` under
 * `Symbol.for('@draft/core.policyRegistry.v1')` so that duplicated copies of @draft/core share it, and a
 * third-party plugin package that registers itself on import is seen by every copy.
 */
export class PolicyRegistry {
  private readonly registrations = new Map<string, Registration>();

  register<K extends PolicyKind, C extends PolicyConfig>(type: string, factory: PolicyFactory<K, C>, options: RegisterPolicyOptions<K>): () => void {
    if (typeof type !== 'string' || type.length === 0) {
      throw new InvalidArgumentError({ argument: 'type', value: type, expected: 'a non-empty string' });
    }
    if (typeof factory !== 'function') throw new InvalidArgumentError({ argument: 'factory', value: typeof factory, expected: 'a function' });
    if (!KINDS.includes(options?.kind)) {
      throw new InvalidArgumentError({ argument: 'kind', value: options?.kind, expected: KINDS.map((k) => `'${k}'`).join(' | ') });
    }
    const existing = this.registrations.get(type);
    if (existing && !options.override) throw new DuplicatePolicyError({ type, existingKind: existing.kind });
    const registration: Registration = { type, kind: options.kind, description: options.description ?? '', factory: factory as unknown as PolicyFactory };
    this.registrations.set(type, registration);
    return () => {
      if (this.registrations.get(type) === registration) this.registrations.delete(type);
    };
  }

  unregister(type: string): boolean {
    return this.registrations.delete(type);
  }

  has(type: string): boolean {
    return this.registrations.has(type);
  }

  info(type: string): PolicyInfo | undefined {
    const r = this.registrations.get(type);
    return r && { type: r.type, kind: r.kind, description: r.description };
  }

  list(filter: { kind?: PolicyKind } = {}): PolicyInfo[] {
    return [...this.registrations.values()]
      .filter((r) => filter.kind === undefined || r.kind === filter.kind)
      .map((r) => ({ type: r.type, kind: r.kind, description: r.description }))
      .sort((a, b) => a.type.localeCompare(b.type));
  }

  create<K extends PolicyKind>(config: PolicyConfig, options: { kind?: K } = {}): PolicyKindMap[K] {
    if (typeof config !== 'object' || config === null || typeof config.type !== 'string') {
      throw new InvalidArgumentError({ argument: 'config.type', value: (config as PolicyConfig | null)?.type, expected: 'a registered policy type' });
    }
    const registration = this.registrations.get(config.type);
    if (!registration) {
      const known = this.list({ kind: options.kind }).map((p) => p.type);
      throw new UnknownMethodError({ method: config.type, known });
    }
    if (options.kind !== undefined && registration.kind !== options.kind) {
      throw new InvalidArgumentError({
        argument: 'config.type',
        value: config.type,
        expected: `a '${options.kind}' policy (it is a '${registration.kind}' policy)`,
      });
    }
    const instance = registration.factory(config) as unknown as Record<string, unknown> | undefined;
    const method = KIND_METHOD[registration.kind];
    if (instance?.specificationVersion !== 'v1' || typeof instance[method] !== 'function') {
      throw new PolicyOutputError(
        `The factory for '${config.type}' returned no ${registration.kind} policy (expected specificationVersion 'v1' and a ${method}() method).`,
        { details: { type: config.type, kind: registration.kind } },
      );
    }
    return instance as unknown as PolicyKindMap[K];
  }
}

const GLOBAL_KEY = Symbol.for('@draft/core.policyRegistry.v1');

/** The process-wide policy registry. */
export function globalPolicyRegistry(): PolicyRegistry {
  const holder = globalThis as unknown as Record<symbol, PolicyRegistry | undefined>;
  holder[GLOBAL_KEY] ??= new PolicyRegistry();
  return holder[GLOBAL_KEY];
}

/**
 * Registers a policy factory process-wide under `type` (the `type` field of its configs). A duplicate type
 * throws DuplicatePolicyError unless `override: true`. Returns a function that removes this registration.
 */
export function registerPolicy<K extends PolicyKind, C extends PolicyConfig = PolicyConfig>(
  type: string,
  factory: PolicyFactory<K, C>,
  options: RegisterPolicyOptions<K>,
): () => void {
  return globalPolicyRegistry().register(type, factory, options);
}

/**
 * Builds a policy from a serialisable config. Unknown type → UnknownMethodError listing the known ones. With
 * `{ kind }`, the result is typed and a policy of another kind is rejected.
 */
export function createPolicy<K extends PolicyKind = PolicyKind>(config: PolicyConfig, options: { kind?: K } = {}): PolicyKindMap[K] {
  return globalPolicyRegistry().create(config, options);
}

export function listPolicies(filter: { kind?: PolicyKind } = {}): PolicyInfo[] {
  return globalPolicyRegistry().list(filter);
}

export function unregisterPolicy(type: string): boolean {
  return globalPolicyRegistry().unregister(type);
}
