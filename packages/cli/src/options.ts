import { type ParseArgsConfig, parseArgs } from 'node:util';
import { InvalidArgumentError } from '@draft/core';
import { type LoadModelOptions, MODEL_DTYPES, type ModelDtype } from '@draft/runtime';

/** Parses an integer flag value in [min, max], throwing a typed error that names the flag and the valid range. */
export function intOption(name: string, raw: string | undefined, min: number, max?: number): number | undefined {
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || (max !== undefined && value > max)) {
    throw new InvalidArgumentError({ argument: `--${name}`, value: raw, expected: max === undefined ? `an integer ≥ ${min}` : `an integer in [${min}, ${max}]` });
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

/** Parses a `--decode-engine` value (loadModel's `decodeEngine`), before any model loads. */
export function decodeEngineOption(name: string, raw: string | undefined): LoadModelOptions['decodeEngine'] {
  if (raw === undefined) return undefined;
  if (raw !== 'ort' && raw !== 'native') throw new InvalidArgumentError({ argument: `--${name}`, value: raw, expected: "'ort' or 'native'" });
  return raw;
}

/** Parses a `--prefill-engine` value (loadModel's `prefillEngine`); 'native' needs `--decode-engine native`. */
export function prefillEngineOption(name: string, raw: string | undefined, decodeEngine: LoadModelOptions['decodeEngine']): LoadModelOptions['prefillEngine'] {
  if (raw === undefined) return undefined;
  if (raw !== 'ort' && raw !== 'native') throw new InvalidArgumentError({ argument: `--${name}`, value: raw, expected: "'ort' or 'native'" });
  if (raw === 'native' && decodeEngine !== 'native') throw new InvalidArgumentError({ argument: `--${name}`, value: raw, expected: "'ort', or 'native' together with --decode-engine native" });
  return raw;
}

/** Parses a `--kv-storage` value (loadModel's `kvStorage`); 'float16' needs `--prefill-engine native`. */
export function kvStorageOption(name: string, raw: string | undefined, prefillEngine: LoadModelOptions['prefillEngine']): LoadModelOptions['kvStorage'] {
  if (raw === undefined) return undefined;
  if (raw !== 'float32' && raw !== 'float16') throw new InvalidArgumentError({ argument: `--${name}`, value: raw, expected: "'float32' or 'float16'" });
  if (raw === 'float16' && prefillEngine !== 'native') {
    throw new InvalidArgumentError({ argument: `--${name}`, value: raw, expected: "'float32', or 'float16' together with --decode-engine native --prefill-engine native" });
  }
  return raw;
}

/** A value that parseArgs would read as a short option: `-5`, `-0.5`, `-.5`, `-1e3`, `-Infinity`. */
const NEGATIVE_NUMBER = /^-(?:\d|\.\d|Infinity$)/;

/**
 * `node:util` parseArgs, except that `--flag -5` gives a string flag the value `-5`. parseArgs itself refuses it
 * as "ambiguous" (it might be a forgotten value followed by a short option), so `--budget -5` never reached the
 * flag's own range check; this CLI has no short options, so a negative number after a string flag is its value.
 */
export function parseFlags<T extends ParseArgsConfig>(config: T): ReturnType<typeof parseArgs<T>> {
  const options = config.options ?? {};
  const args = config.args ?? [];
  const joined: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === '--') {
      joined.push(...args.slice(i));
      break;
    }
    const name = arg.startsWith('--') && !arg.includes('=') ? arg.slice(2) : undefined;
    const next = args[i + 1];
    if (name !== undefined && options[name]?.type === 'string' && next !== undefined && NEGATIVE_NUMBER.test(next)) {
      joined.push(`${arg}=${next}`);
      i++;
    } else joined.push(arg);
  }
  return parseArgs({ ...config, args: joined } as T);
}

/** A comma-separated flag value as a list (blanks dropped). */
export function parseList(raw: string): string[] {
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** A comma-separated list of integers ≥ min, `1K` = 1024, naming the flag in its error. */
export function parseIntList(name: string, raw: string, min = 1): number[] {
  return parseList(raw).map((text) => {
    const k = /^(\d+)[kK]$/.exec(text);
    const value = k ? Number(k[1]) * 1024 : Number(text);
    if (!Number.isInteger(value) || value < min) throw new InvalidArgumentError({ argument: `--${name}`, value: text, expected: `integers ≥ ${min} (or 1K, 2K, …)` });
    return value;
  });
}
