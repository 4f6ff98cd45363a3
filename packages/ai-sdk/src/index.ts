/** @draft/ai-sdk — a Vercel AI SDK provider for draft-based approximate inference. */
export { createDraft, type DraftProvider, type DraftProviderSettings } from './draft-provider.js';
export {
  DraftLanguageModel,
  renderPrompt,
  type DraftCallSettings,
  type DraftLanguageModelConfig,
  type DraftMethodOptionValue,
  type DraftModels,
  type DraftProviderMetadata,
} from './draft-language-model.js';
