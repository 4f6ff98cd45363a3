import { InvalidArgumentError } from '@draft/core';
import { MODEL_DTYPES, type ModelDtype } from '@draft/runtime';

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

/** Parses a `--dtype` / `--draft-dtype` value (transformers.js dtype names), before any model loads. */
export function dtypeOption(name: string, raw: string | undefined): ModelDtype | undefined {
  if (raw === undefined) return undefined;
  if (!(MODEL_DTYPES as readonly string[]).includes(raw)) {
    throw new InvalidArgumentError({ argument: `--${name}`, value: raw, expected: `one of ${MODEL_DTYPES.join(', ')}` });
  }
  return raw as ModelDtype;
}
