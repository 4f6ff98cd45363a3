import { InvalidArgumentError } from '../spec/errors.js';
import type { PolicyConfig } from '../spec/policy.js';

/**
 * Constructor options from a serialisable config: drops `type` and `undefined` values, renames `aliases`
 * (e.g. core's `fromReferenceConfig` emits `reduceOp`), and throws `InvalidArgumentError` on keys not in
 * `known`, so a typo never silently falls back to a default.
 */
export function optionsFromConfig<T>(config: PolicyConfig, known: readonly string[], aliases: Record<string, string> = {}): T {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(config)) {
    if (key === 'type' || value === undefined) continue;
    const name = aliases[key] ?? key;
    if (!known.includes(name)) {
      throw new InvalidArgumentError({ argument: `config.${key}`, value, expected: `one of the '${config.type}' options: ${known.join(', ')}` });
    }
    out[name] = value;
  }
  return out as T;
}
