import { InvalidArgumentError } from '@draft/core';

/** Throws unless `value` is an integer ≥ `min`. */
export function requireInteger(argument: string, value: unknown, min: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new InvalidArgumentError({ argument, value, expected: `an integer ≥ ${min}` });
  }
  return value;
}

export function requireOneOf<T extends string>(argument: string, value: unknown, allowed: readonly T[]): T {
  if (!allowed.includes(value as T)) {
    throw new InvalidArgumentError({ argument, value, expected: `one of ${allowed.map((a) => `'${a}'`).join(', ')}` });
  }
  return value as T;
}

export function requireBoolean(argument: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw new InvalidArgumentError({ argument, value, expected: 'a boolean' });
  return value;
}

/** Positions start … start + length − 1. */
export function range(start: number, length: number): Int32Array {
  const out = new Int32Array(length);
  for (let i = 0; i < length; i++) out[i] = start + i;
  return out;
}
