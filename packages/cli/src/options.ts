import { InvalidArgumentError } from '@draft/core';

/** Parses an integer flag value, throwing a typed error that names the flag and the valid range. */
export function intOption(name: string, raw: string | undefined, min: number): number | undefined {
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) {
    throw new InvalidArgumentError({ argument: `--${name}`, value: raw, expected: `an integer ≥ ${min}` });
  }
  return value;
}

/** Parses a number flag value ≥ min. */
export function numberOption(name: string, raw: string | undefined, min: number): number | undefined {
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min) {
    throw new InvalidArgumentError({ argument: `--${name}`, value: raw, expected: `a number ≥ ${min}` });
  }
  return value;
}
