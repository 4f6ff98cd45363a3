import { type CausalLMV1, createPipeline, type GenerationResultV1, InvalidArgumentError, type PipelineGenerateOptions, type PipelineInput, type TextTargetV1 } from '@draft/core';
import type { MethodPlan } from '@draft/methods';
import type { OrtCausalLM } from '@draft/runtime';

/**
 * Runs one planned method on loaded models, or on the draft and a text target. `onText` receives the text as it
 * is released (stop strings held back), from a local model or a text target's stream alike.
 */
export async function runPlan(
  plan: MethodPlan,
  models: { target: CausalLMV1 | TextTargetV1; draft?: OrtCausalLM },
  prompt: PipelineInput,
  generation: PipelineGenerateOptions,
  onText?: (piece: string) => void,
): Promise<GenerationResultV1> {
  if (plan.draftOnly) {
    if (typeof prompt !== 'string') throw new InvalidArgumentError({ argument: 'prompt', value: 'token ids', expected: 'text for draft-only' });
    if (!models.draft) throw new InvalidArgumentError({ argument: 'draft', value: undefined, expected: 'a draft model for draft-only' });
    const onToken = onText
      ? (t: { id: number; text: string }) => {
          generation.onToken?.(t);
          if (t.text) onText(t.text);
        }
      : generation.onToken;
    const result = await models.draft.generate(prompt, { ...generation, onToken });
    return { ...result, usage: { ...result.usage, draftTokens: result.usage.completionTokens } };
  }
  const pipeline = createPipeline({ target: models.target, draft: models.draft, ...plan.stages });
  if (!onText) return pipeline.generate(prompt, generation);
  const stream = pipeline.stream(prompt, generation);
  for await (const piece of stream) onText(piece);
  return stream.result;
}

/**
 * Refuses a method a text target cannot run, before any model loads: a KV stage (cache policy, lookahead, decode
 * policy) gets the pipeline's own UnsupportedCapabilityError naming the missing capability.
 */
export function checkPlanForTextTarget(plan: MethodPlan, target: TextTargetV1): void {
  const { cachePolicy, lookahead, decodePolicy } = plan.stages;
  if (cachePolicy || lookahead || decodePolicy) createPipeline({ target, cachePolicy, lookahead, decodePolicy });
}

/** Whether a plan needs the draft: its own need, or a prompt compressor in front of a text target (the draft tokenises the prompt). */
export function needsDraft(plan: MethodPlan, remote: boolean): boolean {
  return plan.needsDraft || (remote && plan.stages.compressor !== undefined);
}

/** Whether a target is an HTTP text target rather than an in-process model. */
export function isTextTarget(target: object): target is TextTargetV1 {
  return (target as Partial<TextTargetV1>).kind === 'text';
}
