import type { ModelFolder } from './model-folder.js';

/** Where a loaded model came from: the folder and the weight file `loadModel` chose. */
export interface ModelSource {
  dir: string;
  modelPath: string;
  configPath: string;
  dtype: ModelFolder['files']['dtype'];
  externalDataPaths: readonly string[];
}

// Kept beside the model, not on it, so OrtCausalLM's constructor stays as it is.
const sources = new WeakMap<object, ModelSource>();

/** @internal called by `loadModel`. */
export function recordModelSource(model: object, folder: ModelFolder, configPath: string): void {
  sources.set(model, {
    dir: folder.dir,
    modelPath: folder.modelPath,
    configPath,
    dtype: folder.files.dtype,
    externalDataPaths: folder.files.externalDataPaths.slice(),
  });
}

/** The folder and weight file of a model made by `loadModel`; undefined for other models. */
export function modelSourceOf(model: object): ModelSource | undefined {
  return sources.get(model);
}
