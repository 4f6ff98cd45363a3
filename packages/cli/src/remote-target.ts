import { InvalidArgumentError } from '@draft/core';
import { OpenAITextTarget } from '@draft/runtime';
import { intOption } from './options.js';

/** The flags that point a command at an OpenAI-compatible endpoint instead of a local target folder. */
export interface RemoteTargetFlags {
  target?: string;
  /** The API root, e.g. http://127.0.0.1:8000/v1 (vLLM), http://127.0.0.1:8080/v1 (llama.cpp), https://api.openai.com/v1. */
  'target-url'?: string;
  /** The `model` sent with each request. Default: the first id of the endpoint's `GET /models`. */
  'target-model'?: string;
  /** Name of the environment variable that holds the API key (the key itself never goes on a command line). */
  'api-key-env'?: string;
  /** 'chat' (default) or 'completions'. */
  'target-endpoint'?: string;
  /** Retries on 429/5xx/timeouts (default 2). */
  'target-retries'?: string;
  /** Milliseconds per attempt until the response headers, and between stream chunks (default 60000). */
  'target-timeout'?: string;
}

/** `parseArgs` options of the remote-target flags (shared by generate and bench). */
export const REMOTE_TARGET_OPTIONS = {
  'target-url': { type: 'string' },
  'target-model': { type: 'string' },
  'api-key-env': { type: 'string' },
  'target-endpoint': { type: 'string' },
  'target-retries': { type: 'string' },
  'target-timeout': { type: 'string' },
} as const;

export const REMOTE_TARGET_USAGE = '[--target-url URL [--target-model NAME] [--api-key-env VAR] [--target-endpoint chat|completions] [--target-retries N] [--target-timeout MS]]';

/** A remote target and what identifies it in results and run fingerprints (never the API key). */
export interface RemoteTarget {
  target: OpenAITextTarget;
  url: string;
  model: string;
  endpoint: 'chat' | 'completions';
}

/**
 * The OpenAI-compatible target the flags name, or undefined without `--target-url`. Checks the flags before any
 * model loads; asks the endpoint for its model only when `--target-model` is absent.
 */
export async function remoteTargetFromFlags(flags: RemoteTargetFlags, signal?: AbortSignal): Promise<RemoteTarget | undefined> {
  const url = flags['target-url'];
  const only = (name: keyof RemoteTargetFlags) => {
    if (flags[name] !== undefined) throw new InvalidArgumentError({ argument: `--${name}`, value: flags[name], expected: 'to be used with --target-url' });
  };
  if (url === undefined) {
    for (const name of ['target-model', 'api-key-env', 'target-endpoint', 'target-retries', 'target-timeout'] as const) only(name);
    return undefined;
  }
  if (flags.target !== undefined) throw new InvalidArgumentError({ argument: '--target', value: flags.target, expected: 'either --target DIR or --target-url URL, not both' });
  const endpoint = flags['target-endpoint'] ?? 'chat';
  if (endpoint !== 'chat' && endpoint !== 'completions') throw new InvalidArgumentError({ argument: '--target-endpoint', value: endpoint, expected: "'chat' or 'completions'" });
  const apiKey = apiKeyFromEnv(flags['api-key-env']);
  const common = {
    baseUrl: url,
    apiKey,
    endpoint,
    maxRetries: intOption('target-retries', flags['target-retries'], 0),
    timeoutMs: intOption('target-timeout', flags['target-timeout'], 1),
  } as const;
  let model = flags['target-model'];
  if (model === undefined) {
    const served = await OpenAITextTarget.listModels({ ...common, signal });
    if (served.length === 0) throw new InvalidArgumentError({ argument: '--target-model', value: undefined, expected: `a model name (${url}/models lists none)` });
    model = served[0];
  }
  return { target: new OpenAITextTarget({ ...common, model }), url: common.baseUrl.replace(/\/+$/, ''), model, endpoint };
}

/**
 * The key in `$VAR`. Errors name the variable only when it looks like one (upper case, digits, `_`): a key pasted
 * by mistake in its place is never echoed.
 */
function apiKeyFromEnv(variable: string | undefined): string | undefined {
  if (variable === undefined) return undefined;
  const shown = /^[A-Z_][A-Z0-9_]{0,63}$/.test(variable) ? variable : '(hidden: not an upper-case variable name)';
  const key = /^[A-Za-z_][A-Za-z0-9_]*$/.test(variable) ? process.env[variable] : undefined;
  if (!key) {
    throw new InvalidArgumentError({ argument: '--api-key-env', value: shown, expected: `the name of a set, non-empty environment variable holding the key (e.g. OPENAI_API_KEY), not the key itself` });
  }
  return key;
}

// Shared with the harness (ruler runs against remote targets): defined in @draft/bench.
export { checkPlanForTextTarget, isTextTarget, needsDraft } from '@draft/bench';
