// generateText / streamText from the Vercel AI SDK on the bundled draft/target pair, through @draft/ai-sdk.
// Usage: pnpm --filter draft-example-ai-sdk start [MODELS_DIR]   (default: the repository's models/ folder)
import { join } from 'node:path';
import { createDraft, type DraftProviderMetadata } from '@draft/ai-sdk';
import { bundledModelsDir, generateSample, readTaskFormat } from '@draft/cli';
import { loadModel } from '@draft/runtime';
import { generateText, streamText } from 'ai';

const models = process.argv[2] ?? bundledModelsDir();
if (!models) throw new Error('No models folder: pass one, or set DRAFT_MODELS_DIR.');
const target = await loadModel(join(models, 'target'));
const draftModel = await loadModel(join(models, 'draft'));
// Loaded models are passed in (folders work too: createDraft({ target: 'models/target', draft: 'models/draft' })).
await using draft = createDraft({ target, draft: draftModel });
try {
  // A long prompt the pair was trained on: a key-value needle among distractors, ~1K tokens.
  const sample = generateSample({ task: 'niah_multikey_1', length: 1024, seed: 1, index: 0, tokenizer: target.tokenizer, format: readTaskFormat(join(models, 'target')) });
  const call = { prompt: sample.input, maxOutputTokens: sample.maxNewTokens, stopSequences: sample.stopStrings };
  console.log(`prompt: ${sample.tokens} tokens; expected answer: ${sample.answers.join(' ')}`);

  for (const method of ['full', 'specpc']) {
    const result = await generateText({
      model: draft(method),
      ...call,
      // SpecPC keeps 128 prompt tokens, scaled to this small pair (window, pooling kernel and neighbours of 8).
      providerOptions: method === 'specpc' ? { draft: { budget: 128, windowSize: 8, options: { kernelSize: 8, neighbourTokens: 8 } } } : undefined,
    });
    const meta = result.providerMetadata?.draft as unknown as DraftProviderMetadata;
    console.log(`${method.padEnd(7)} → ${JSON.stringify(result.text.trim())} (target saw ${meta.compressedPromptTokens} of ${meta.promptTokens} tokens, ${meta.totalMs.toFixed(0)} ms)`);
  }

  // Streaming with a KV method: SpecKV keeps 64 cache entries per layer and KV head.
  process.stdout.write('speckv  → ');
  const stream = streamText({ model: draft('speckv'), ...call, providerOptions: { draft: { budget: 64, windowSize: 8 } } });
  for await (const piece of stream.textStream) process.stdout.write(piece);
  const meta = (await stream.providerMetadata)?.draft as unknown as DraftProviderMetadata;
  console.log(` (kept ${meta.meanKeptKvTokens} KV entries per head of ${meta.promptTokens})`);
} finally {
  await Promise.all([target.dispose(), draftModel.dispose()]);
}
