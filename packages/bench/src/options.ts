import { resolve } from 'node:path';
import { InvalidArgumentError } from '@draft/core';
import type { MethodOptions } from '@draft/methods';
import { MODEL_DTYPES, type ModelDtype } from '@draft/runtime';
import type { BenchProgressListener } from './progress.js';

/** The models a benchmark loads: folders (no defaults here: the CLI resolves the bundled pair), weight files, threads. */
export interface BenchModelOptions {
  /** Target model folder. */
  target: string;
  /** Draft model folder (loaded only when a method needs it). */
  draft: string;
  /** Weight file of the target, transformers.js dtype names (`fp32`, `fp16`, `q8`, …); default: the folder's. */
  dtype?: ModelDtype;
  /** Weight file of the draft. */
  draftDtype?: ModelDtype;
  /** ONNX Runtime intra-op threads per model. */
  threads?: number;
}

/** How a benchmark is driven and where it writes. */
export interface BenchRunOptions {
  /** Output folder (per-run files, summary.md, plots, results.json); relative to the working directory. */
  out?: string;
  /** Aborts between steps; finished runs stay on disk and resume next time. */
  signal?: AbortSignal;
  onProgress?: BenchProgressListener;
  /** Extra `name → version` entries for every run_meta.json's `packages` (e.g. the tool that called). */
  recordPackages?: Readonly<Record<string, string>>;
}

/** Method names and their policy options (`planMethod`'s `options`, by method). */
export interface BenchMethodOptions {
  methods?: readonly string[];
  /** Options per method of `methods`, e.g. `{ specpc: { kernelSize: 8 } }`. */
  methodOptions?: MethodOptions;
  /** The window W of every method that has one (default: each method's own). */
  windowSize?: number;
}

/** The shortest prompt a benchmark generates (tokens). */
export const MIN_PROMPT_LENGTH = 16;

/** An integer in [min, max]; undefined stays undefined. The error names the option. */
export function checkInteger(name: string, value: number | undefined, min: number, max?: number): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isInteger(value) || value < min || (max !== undefined && value > max)) {
    throw new InvalidArgumentError({ argument: name, value, expected: max === undefined ? `an integer ≥ ${min}` : `an integer in [${min}, ${max}]` });
  }
  return value;
}

/** A non-empty list of integers ≥ min. */
export function checkIntegers(name: string, values: readonly number[], min: number): number[] {
  if (!Array.isArray(values) || values.length === 0) throw new InvalidArgumentError({ argument: name, value: values, expected: `a non-empty list of integers ≥ ${min}` });
  for (const value of values) {
    if (!Number.isInteger(value) || value < min) throw new InvalidArgumentError({ argument: name, value, expected: `integers ≥ ${min}` });
  }
  return [...values];
}

/** A non-empty list of names (methods, tasks). */
export function checkNames(name: string, values: readonly string[]): string[] {
  if (!Array.isArray(values) || values.length === 0) throw new InvalidArgumentError({ argument: name, value: values, expected: 'a non-empty list of names' });
  for (const value of values) {
    if (typeof value !== 'string' || value.length === 0) throw new InvalidArgumentError({ argument: name, value, expected: 'non-empty names' });
  }
  return [...values];
}

/** A transformers.js dtype name, or undefined. */
export function checkDtype(name: string, value: string | undefined): ModelDtype | undefined {
  if (value === undefined) return undefined;
  if (!(MODEL_DTYPES as readonly string[]).includes(value)) throw new InvalidArgumentError({ argument: name, value, expected: `one of ${MODEL_DTYPES.join(', ')}` });
  return value as ModelDtype;
}

/** A model folder option: a non-empty path. */
export function checkFolder(name: string, value: string | undefined): string {
  if (typeof value !== 'string' || value.length === 0) throw new InvalidArgumentError({ argument: name, value, expected: 'a model folder' });
  return value;
}

/** Method options only for methods of this run (their names and values are checked when the methods are planned). */
export function checkMethodOptions(options: MethodOptions | undefined, methods: readonly string[]): MethodOptions {
  for (const method of Object.keys(options ?? {})) {
    if (!methods.includes(method)) throw new InvalidArgumentError({ argument: 'methodOptions', value: method, expected: `options of a method in this run (${methods.join(', ')})` });
  }
  return options ?? {};
}

/** The model options, checked: folders (made absolute), dtypes and threads. */
export function checkModelOptions(options: BenchModelOptions): BenchModelOptions {
  return {
    target: resolve(checkFolder('target', options.target)),
    draft: resolve(checkFolder('draft', options.draft)),
    dtype: checkDtype('dtype', options.dtype),
    draftDtype: checkDtype('draftDtype', options.draftDtype),
    threads: checkInteger('threads', options.threads, 1),
  };
}
