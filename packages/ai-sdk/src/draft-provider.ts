import { NoSuchModelError, type ProviderV3 } from '@ai-sdk/provider';
import { type CausalLMV1, InvalidArgumentError, type TextTargetV1 } from '@draft/core';
import { type LoadModelOptions, loadModel, OpenAITextTarget, type OpenAITextTargetOptions, type OrtCausalLM } from '@draft/runtime';
import { type DraftCallSettings, DraftLanguageModel, type DraftModels, validateSettings } from './draft-language-model.js';

/** Options of `createDraft(…)`. */
export interface DraftProviderSettings {
  /**
   * The target: a model folder (loaded on first use), a loaded model, a `TextTargetV1`, or the options of an
   * `OpenAITextTarget` (`{ baseUrl, model, apiKey }`): then only prompt compression (and 'full') apply.
   */
  target: string | CausalLMV1 | TextTargetV1 | OpenAITextTargetOptions;
  /** The draft: a model folder (loaded on first use) or a loaded model. Needed by draft-based methods, and by any prompt compressor in front of a text target. */
  draft?: string | OrtCausalLM;
  /** Defaults of every call; `providerOptions.draft` overrides them per call, the model id sets `method`. */
  defaults?: DraftCallSettings;
  /** Options for loading model folders (e.g. `raggedCache: true` for AdaKV / PyramidKV, `threads`). */
  loadOptions?: Omit<LoadModelOptions, 'signal' | 'onProgress'>;
  /** The `provider` name the AI SDK reports. Default 'draft'. */
  name?: string;
}

/** An AI SDK provider over one draft/target pair; the model id is the default method (`draft('specpc')`). */
export interface DraftProvider extends ProviderV3 {
  (method?: string): DraftLanguageModel;
  languageModel(method: string): DraftLanguageModel;
  /** Disposes the models this provider loaded from folders (not those passed in loaded). */
  dispose(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Creates an AI SDK provider running draft-based approximate inference: `generateText({ model: draft('specpc'),
 * prompt, providerOptions: { draft: { budget: 256 } } })`. Models load once, on the first call.
 */
export function createDraft(settings: DraftProviderSettings): DraftProvider {
  if (!settings || settings.target === undefined) throw new InvalidArgumentError({ argument: 'target', value: undefined, expected: 'a model folder, a loaded model, a TextTargetV1 or OpenAITextTarget options' });
  const defaults = validateSettings(settings.defaults, 'defaults');
  const name = settings.name ?? 'draft';
  const owned: OrtCausalLM[] = [];
  let loading: Promise<DraftModels> | undefined;

  const load = async (): Promise<DraftModels> => {
    const { target, draft } = settings;
    try {
      const loadedTarget = typeof target === 'string' ? await own(loadModel(target, settings.loadOptions)) : isOpenAIOptions(target) ? new OpenAITextTarget(target) : target;
      const loadedDraft = typeof draft === 'string' ? await own(loadModel(draft, settings.loadOptions)) : draft;
      return { target: loadedTarget, draft: loadedDraft };
    } catch (error) {
      // A failed load may be retried by the next call (e.g. after fixing a path).
      loading = undefined;
      await disposeOwned();
      throw error;
    }
  };
  const own = async (model: Promise<OrtCausalLM>) => {
    const m = await model;
    owned.push(m);
    return m;
  };
  const disposeOwned = async () => {
    await Promise.all(owned.splice(0).map((m) => m.dispose()));
  };
  const languageModel = (method = 'default') =>
    new DraftLanguageModel({
      provider: name,
      modelId: method,
      defaults,
      models: () => {
        loading ??= load();
        return loading;
      },
    });
  const dispose = async () => {
    const pending = loading;
    loading = undefined;
    await pending?.catch(() => undefined);
    await disposeOwned();
  };
  const notLanguage = (kind: 'embeddingModel' | 'imageModel') => (modelId: string) => {
    throw new NoSuchModelError({ modelId, modelType: kind, message: `The draft provider has language models only (no ${kind}).` });
  };
  return Object.assign((method?: string) => languageModel(method), {
    specificationVersion: 'v3' as const,
    languageModel,
    embeddingModel: notLanguage('embeddingModel'),
    imageModel: notLanguage('imageModel'),
    dispose,
    [Symbol.asyncDispose]: dispose,
  });
}

function isOpenAIOptions(value: CausalLMV1 | TextTargetV1 | OpenAITextTargetOptions): value is OpenAITextTargetOptions {
  return typeof (value as OpenAITextTargetOptions).baseUrl === 'string' && (value as { specificationVersion?: unknown }).specificationVersion === undefined;
}
