import { InvalidArgumentError, UnsupportedCapabilityError } from '@draft/core';
import { describe, expect, it } from 'vitest';
import { TargetPseudoLookahead, targetPseudoLookahead } from './target-pseudo-lookahead.js';
import { createLetterTokenizer, createScriptedCausalLM, type ScriptedKvCache } from '@draft/core/testing';

const tokenizer = createLetterTokenizer({ fingerprint: 'letters', specials: [15] });
const next = (t: number) => (t === 12 ? 15 : (t + 1) % 15);

describe('TargetPseudoLookahead (LAQ++)', () => {
  it('generates with a SnapKV-compressed cache: prefill + capture W + 1 queries, gather, re-run x[n−1] at n − 1, greedy', async () => {
    const target = createScriptedCausalLM({ next, tokenizer, eos: [15] });
    const gathered: number[][] = [];
    const originalForward = target.forward.bind(target);
    target.forward = async (request) => {
      if (request.cache) gathered.push((request.cache as ScriptedKvCache).entries.map((e) => e.position));
      return originalForward(request);
    };
    const ids = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]; // n = 10
    const result = await new TargetPseudoLookahead({ budget: 5, windowSize: 2, kernelSize: 1, maxNewTokens: 3 }).lookahead({ inputIds: ids, text: '', maxNewTokens: 99, target });
    // Zero queries/keys: all candidates tie -> SnapKV keeps the lowest C − W = 3 (0, 1, 2) + window (7, 8).
    expect(gathered[0]).toEqual([0, 1, 2, 7, 8]);
    expect(target.calls.map((c) => ({ ids: c.inputIds.length, positions: c.positionIds, cacheLength: c.cacheLength }))).toEqual([
      { ids: 10, positions: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], cacheLength: 0 },
      { ids: 1, positions: [9], cacheLength: 5 }, // x[n−1] re-run over the compacted cache
      { ids: 1, positions: [10], cacheLength: 6 },
      { ids: 1, positions: [11], cacheLength: 7 },
    ]);
    expect(target.calls[1].inputIds).toEqual([9]);
    // next(9) = 10 'k', then 'l', 'm'.
    expect(result).toEqual({ tokenIds: [10, 11, 12], text: 'klm', draftTokens: 0 });
    expect(target.live.size).toBe(0);
  });

  it("takes the run's budget (LookaheadInputV1.budget) when its own is unset; its own option wins", async () => {
    const run = async (lookahead: TargetPseudoLookahead, budget?: number) => {
      const target = createScriptedCausalLM({ next, tokenizer, eos: [15] });
      await lookahead.lookahead({ inputIds: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], text: '', maxNewTokens: 99, target, budget });
      return target.calls[1]?.cacheLength; // the re-run of x[n−1] over the compacted cache
    };
    expect(await run(new TargetPseudoLookahead({ windowSize: 2, kernelSize: 1, maxNewTokens: 2 }), 6)).toBe(6);
    expect(await run(new TargetPseudoLookahead({ windowSize: 2, kernelSize: 1, maxNewTokens: 2, budget: 4 }), 6)).toBe(4);
    // No budget anywhere: 256 ≥ n, so no compression (no re-run; the second call is the first decode step).
    expect(await run(new TargetPseudoLookahead({ windowSize: 2, kernelSize: 1, maxNewTokens: 2 }))).toBe(10);
    await expect(run(new TargetPseudoLookahead({ windowSize: 8, maxNewTokens: 2 }), 6)).rejects.toMatchObject({ argument: 'windowSize' });
  });

  it('keeps EOS; short prompts (n ≤ C) are not compressed', async () => {
    const target = createScriptedCausalLM({ next, tokenizer, eos: [15] });
    const result = await targetPseudoLookahead({ maxNewTokens: 8 }).lookahead({ inputIds: [9, 10], text: '', maxNewTokens: 1, target });
    expect(result.tokenIds).toEqual([11, 12, 15]);
    expect(target.calls[0].positionIds).toEqual([0, 1]);
    expect(target.calls).toHaveLength(3); // prefill, 11, 12 (EOS not fed back)
  });

  it('needs queryCapture when it must compress', async () => {
    const target = createScriptedCausalLM({ next, tokenizer, eos: [15], queryCapture: false });
    const run = new TargetPseudoLookahead({ budget: 5, windowSize: 2 }).lookahead({ inputIds: new Array(10).fill(1), text: '', maxNewTokens: 2, target });
    await expect(run).rejects.toBeInstanceOf(UnsupportedCapabilityError);
    await expect(run).rejects.toMatchObject({ code: 'UNSUPPORTED_CAPABILITY', capability: 'queryCapture' });
  });

  it('a target that returns no captured queries is an UnsupportedCapabilityError, and leaks no cache', async () => {
    const target = createScriptedCausalLM({ next, tokenizer, eos: [15] });
    const originalForward = target.forward.bind(target);
    target.forward = async (request) => ({ ...(await originalForward(request)), queries: undefined });
    const run = new TargetPseudoLookahead({ budget: 5, windowSize: 2 }).lookahead({ inputIds: new Array(10).fill(1), text: '', maxNewTokens: 2, target });
    await expect(run).rejects.toBeInstanceOf(UnsupportedCapabilityError);
    await expect(run).rejects.toMatchObject({ code: 'UNSUPPORTED_CAPABILITY', capability: 'queryCapture' });
    expect(target.live.size).toBe(0);
  });

  it('validates and serialises', () => {
    expect(() => new TargetPseudoLookahead({ windowSize: 300, budget: 256 })).toThrow(InvalidArgumentError);
    expect(() => new TargetPseudoLookahead({ windowSize: 0 })).toThrow(InvalidArgumentError);
    // Without its own budget, W is checked against the run's C when it runs (see above).
    expect(() => new TargetPseudoLookahead({ windowSize: 300 })).not.toThrow();
    expect(new TargetPseudoLookahead().toConfig()).toEqual({ type: 'target-pseudo-lookahead', maxNewTokens: 8, windowSize: 32, kernelSize: 7, poolType: 'max' });
    expect(new TargetPseudoLookahead({ budget: 64 }).toConfig()).toMatchObject({ budget: { tokens: 64 } });
    expect(new TargetPseudoLookahead().needs).toBe('target');
  });
});
