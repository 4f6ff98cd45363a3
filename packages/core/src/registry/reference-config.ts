import type { Budget } from '../spec/budget.js';
import { InvalidArgumentError } from '../spec/errors.js';
import type { PolicyConfig } from '../spec/policy.js';

/**
 * Reference (PyTorch, snake_case) option names → this project's camelCase options. Keys not listed are
 * converted mechanically (`foo_bar` → `fooBar`). Budget keys become `budget`.
 */
export const REFERENCE_OPTION_NAMES: Readonly<Record<string, string>> = Object.freeze({
  window_size: 'windowSize',
  kernel_size: 'kernelSize',
  pooling: 'poolType',
  lookahead_tokens: 'lookaheadTokens',
  starting_layer_index: 'startingLayerIndex',
  neighbor_tokens: 'neighbourTokens',
  neighbour_tokens: 'neighbourTokens',
  weighted_query: 'weightedQuery',
  reduction: 'reduceOp',
  aggregation: 'reduceOp',
  beta: 'beta',
  alpha: 'alpha',
  floor_alpha: 'alpha',
  start_size: 'numSinkTokens',
  sink_size: 'numSinkTokens',
  num_sink_tokens: 'numSinkTokens',
  recent_size: 'windowSize',
  keep_original_positions: 'keepOriginalPositions',
  chunk_size: 'chunkSize',
});

/** Keys naming the method. */
const TYPE_KEYS = ['type', 'method', 'method_name', 'press', 'compress_method'];

/** Budget keys → the Budget variant they denote. */
const BUDGET_KEYS: Record<string, keyof BudgetUnion> = {
  max_capacity_prompt: 'tokens',
  max_capacity: 'tokens',
  compression_ratio: 'compressionRatio',
  keep_ratio: 'keepRatio',
};
type BudgetUnion = { tokens: number; keepRatio: number; compressionRatio: number };

const POOL_TYPES: Record<string, 'max' | 'avg'> = { max: 'max', maxpool: 'max', max_pool: 'max', avg: 'avg', avgpool: 'avg', avg_pool: 'avg', mean: 'avg' };

/**
 * Maps a reference-style config (`{ method: 'SnapKV', max_capacity_prompt: 256, window_size: 32, kernel_size: 7,
 * pooling: 'maxpool' }`) to a PolicyConfig (`{ type: 'snapkv', budget: { tokens: 256 }, windowSize: 32,
 * kernelSize: 7, poolType: 'max' }`). The type is lower-cased; `options.type` overrides it. Values are copied
 * unchanged except `pooling` ('maxpool' → 'max', 'avgpool' → 'avg').
 */
export function fromReferenceConfig(reference: Record<string, unknown>, options: { type?: string } = {}): PolicyConfig {
  if (typeof reference !== 'object' || reference === null || Array.isArray(reference)) {
    throw new InvalidArgumentError({ argument: 'reference', value: reference, expected: 'a plain object' });
  }
  let type = options.type;
  const out: Record<string, unknown> = {};
  let budget: Budget | undefined;
  for (const [key, value] of Object.entries(reference)) {
    if (value === undefined) continue;
    if (TYPE_KEYS.includes(key)) {
      if (type === undefined && typeof value === 'string') type = value.toLowerCase();
      continue;
    }
    const budgetKind = BUDGET_KEYS[key];
    if (budgetKind) {
      if (budget) throw new InvalidArgumentError({ argument: key, value, expected: `one budget key only (already have ${JSON.stringify(budget)})` });
      if (typeof value !== 'number') throw new InvalidArgumentError({ argument: key, value, expected: 'a number' });
      budget = { [budgetKind]: value } as Budget;
      continue;
    }
    const name = REFERENCE_OPTION_NAMES[key] ?? snakeToCamel(key);
    if (name === 'poolType' && typeof value === 'string') {
      const pool = POOL_TYPES[value.toLowerCase()];
      if (!pool) throw new InvalidArgumentError({ argument: key, value, expected: "'maxpool' | 'avgpool' | 'max' | 'avg'" });
      out[name] = pool;
      continue;
    }
    out[name] = value;
  }
  if (type === undefined) {
    throw new InvalidArgumentError({ argument: 'method', value: undefined, expected: `a method name under one of ${TYPE_KEYS.join(', ')} (or options.type)` });
  }
  return budget ? { type, budget, ...out } : { type, ...out };
}

function snakeToCamel(key: string): string {
  return key.replace(/_+([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}
