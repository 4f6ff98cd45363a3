import { InvalidArgumentError } from '@draft/core';

/** A `--method-option` value: integers and floats become numbers, `true`/`false` booleans, anything else a string. */
export type MethodOptionValue = number | boolean | string;

/** One method's options, by option name (sorted). */
export type MethodOptionMap = Readonly<Record<string, MethodOptionValue>>;

/** Options per CLI method name. */
export type MethodOptions = Readonly<Record<string, MethodOptionMap>>;

const SYNTAX = '<method>.<name>=<value>, e.g. specpc.kernelSize=8';
const NUMBER = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;
const NAME = /^[A-Za-z_$][\w$]*$/;

/** Parses one `--method-option` value: numbers, `true`/`false`, else the text itself. */
export function parseMethodOptionValue(text: string): MethodOptionValue {
  if (NUMBER.test(text)) return Number(text);
  if (text === 'true') return true;
  if (text === 'false') return false;
  return text;
}

/**
 * Parses repeated `--method-option <method>.<name>=<value>` flags into options per method. `methods` are the
 * methods of this run: an option for any other method is an InvalidArgumentError, as is malformed text. A
 * later value for the same method and name wins. Whether the method accepts the name and value is checked
 * when it is planned (`planMethod`).
 */
export function parseMethodOptions(raw: readonly string[] | undefined, methods: readonly string[]): Record<string, Record<string, MethodOptionValue>> {
  const out: Record<string, Record<string, MethodOptionValue>> = {};
  for (const text of raw ?? []) {
    const eq = text.indexOf('=');
    const dot = eq < 0 ? -1 : text.lastIndexOf('.', eq);
    const method = dot < 0 ? '' : text.slice(0, dot);
    const name = dot < 0 ? '' : text.slice(dot + 1, eq);
    const value = eq < 0 ? '' : text.slice(eq + 1);
    if (method.length === 0 || !NAME.test(name) || value.length === 0) {
      throw new InvalidArgumentError({ argument: '--method-option', value: text, expected: SYNTAX });
    }
    if (!methods.includes(method)) {
      throw new InvalidArgumentError({
        argument: '--method-option',
        value: text,
        expected: `an option of a method in this run (${methods.join(', ')})`,
      });
    }
    out[method] = { ...out[method], [name]: parseMethodOptionValue(value) };
  }
  for (const method of Object.keys(out)) out[method] = Object.fromEntries(Object.entries(out[method]).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return out;
}

/** `kernelSize=8, neighbourTokens=8` (empty for none). */
export function formatMethodOptions(options: MethodOptionMap | undefined): string {
  return Object.entries(options ?? {})
    .map(([name, value]) => `${name}=${value}`)
    .join(', ');
}

/** A method as results tables show it: `specpc (kernelSize=8, neighbourTokens=8)`, or just `specpc`. */
export function methodLabel(method: string, options: MethodOptionMap | undefined): string {
  const text = formatMethodOptions(options);
  return text ? `${method} (${text})` : method;
}

/** `{ methodOptions }` when there are any, else nothing (result rows keep their shape without options). */
export function withMethodOptions(options: MethodOptionMap | undefined): { methodOptions?: MethodOptionMap } {
  return options && Object.keys(options).length > 0 ? { methodOptions: options } : {};
}
