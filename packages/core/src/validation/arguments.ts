import { InvalidArgumentError } from '../spec/errors.js';

/**
 * Throws `InvalidArgumentError` unless `value` is an integer ≥ `min`; returns it typed as a number.
 * `argument` names the option in the error (e.g. `'windowSize'`).
 */
export function requireInteger(argument: string, value: unknown, min: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new InvalidArgumentError({ argument, value, expected: `an integer ≥ ${min}` });
  }
  return value;
}

/** Throws `InvalidArgumentError` unless `value` is one of `allowed`; returns it narrowed to the union. */
export function requireOneOf<T extends string>(argument: string, value: unknown, allowed: readonly T[]): T {
  if (!allowed.includes(value as T)) {
    throw new InvalidArgumentError({ argument, value, expected: `one of ${allowed.map((a) => `'${a}'`).join(', ')}` });
  }
  return value as T;
}

/** Throws `InvalidArgumentError` unless `value` is a boolean. */
export function requireBoolean(argument: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw new InvalidArgumentError({ argument, value, expected: 'a boolean' });
  return value;
}
