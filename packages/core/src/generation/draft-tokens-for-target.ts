import type { CausalLMV1 } from '../spec/model.js';
import type { TokenizerV1 } from '../spec/tokenizer.js';

/**
 * Draft tokens (a lookahead answer) in the target's vocabulary. Same tokenizer fingerprint: the ids as they
 * are. Otherwise they cross as text: decoded without special tokens, re-tokenised by the target without
 * special tokens, and a generation that stopped at the draft's EOS ends with the target's first EOS id.
 */
export function draftTokensForTarget(options: {
  tokens: readonly number[];
  stoppedAtEos: boolean;
  draftTokenizer: TokenizerV1;
  target: CausalLMV1;
}): { tokenIds: number[]; text: string } {
  const { tokens, draftTokenizer, target } = options;
  const text = draftTokenizer.decode(tokens, { skipSpecialTokens: true });
  if (draftTokenizer.fingerprint === target.tokenizer.fingerprint) return { tokenIds: Array.from(tokens), text };
  const tokenIds = target.tokenizer.encode(text, { addSpecialTokens: false });
  const eos = target.info.eosTokenIds[0];
  if (options.stoppedAtEos && eos !== undefined) tokenIds.push(eos);
  return { tokenIds, text };
}
