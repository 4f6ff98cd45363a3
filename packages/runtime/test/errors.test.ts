import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AbortError, DisposedError, type DraftError, type GenerationResultV1, GraphPatternError, InvalidArgumentError, ModelLayoutError, PromptTooLongError } from '@draft/core';
import onnxProto from 'onnx-proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, type OrtCausalLM } from '../src/index.js';
import { TORCH_LLAMA, torchGolden } from './helpers.js';

const { onnx } = onnxProto;
const golden = torchGolden().cases[0];
const scratch: string[] = [];

/** A copy of the torch fixture with `edit` applied. */
function copyFixture(edit: (dir: string) => void): string {
  const dir = mkdtempSync(join(tmpdir(), 'draft-runtime-'));
  scratch.push(dir);
  cpSync(TORCH_LLAMA, dir, { recursive: true });
  edit(dir);
  return dir;
}

afterAll(() => {
  for (const d of scratch) rmSync(d, { recursive: true, force: true });
});

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
}

describe('load errors', () => {
  it('missing folder and missing files → ModelLayoutError with path', async () => {
    const missing = await rejection(loadModel('/nonexistent/model'));
    expect(missing).toBeInstanceOf(ModelLayoutError);
    expect((missing as ModelLayoutError).code).toBe('MODEL_LAYOUT');
    for (const file of ['config.json', 'tokenizer.json', 'onnx/model.onnx']) {
      const dir = copyFixture((d) => rmSync(join(d, file)));
      const e = await rejection(loadModel(dir));
      expect(e).toBeInstanceOf(ModelLayoutError);
      expect((e as ModelLayoutError).path).toBe(join(dir, file));
    }
  });

  it('malformed config.json → ModelLayoutError naming the file', async () => {
    const broken = copyFixture((d) => writeFileSync(join(d, 'config.json'), '{ "model_type": "llama", '));
    const e = await rejection(loadModel(broken));
    expect(e).toBeInstanceOf(ModelLayoutError);
    expect((e as ModelLayoutError).path).toBe(join(broken, 'config.json'));
    const incomplete = copyFixture((d) => {
      const config = JSON.parse(readFileSync(join(d, 'config.json'), 'utf8'));
      delete config.num_hidden_layers;
      writeFileSync(join(d, 'config.json'), JSON.stringify(config));
    });
    const e2 = await rejection(loadModel(incomplete));
    expect(e2).toBeInstanceOf(ModelLayoutError);
    expect((e2 as Error).message).toContain('num_hidden_layers');
    const unknown = copyFixture((d) => {
      const config = JSON.parse(readFileSync(join(d, 'config.json'), 'utf8'));
      config.model_type = 'bert';
      writeFileSync(join(d, 'config.json'), JSON.stringify(config));
    });
    // An unknown model_type with a recognisable graph loads, with a warning naming it.
    const warnings: string[] = [];
    const model = await loadModel(unknown, { threads: 1, onWarning: (m) => warnings.push(m) });
    expect(model.info.architecture).toBe('bert');
    expect((await model.generate({ inputIds: golden.prompt }, { maxNewTokens: golden.greedy.length })).tokens).toEqual(golden.greedy);
    await model.dispose();
    expect(warnings.join('\n')).toMatch(/model_type "bert" is not one the runtime knows/);
  });

  it('a graph without recognisable attention → GraphPatternError', async () => {
    // Replace every Softmax by a Sigmoid: still a valid graph, but no attention pattern left.
    const dir = copyFixture((d) => {
      const path = join(d, 'onnx', 'model.onnx');
      const model = onnx.ModelProto.decode(readFileSync(path));
      for (const node of model.graph!.node!) if (node.opType === 'Softmax') node.opType = 'Sigmoid';
      writeFileSync(path, onnx.ModelProto.encode(model).finish());
    });
    const e = await rejection(loadModel(dir));
    expect(e).toBeInstanceOf(GraphPatternError);
    expect((e as DraftError).code).toBe('GRAPH_PATTERN');
  });

  it('invalid load options → InvalidArgumentError', async () => {
    expect(await rejection(loadModel(TORCH_LLAMA, { threads: 0 }))).toBeInstanceOf(InvalidArgumentError);
  });
});

describe('runtime errors leave the model usable', () => {
  let model: OrtCausalLM;
  const greedy = () => model.generate({ inputIds: golden.prompt }, { maxNewTokens: golden.greedy.length });
  beforeAll(async () => {
    model = await loadModel(TORCH_LLAMA, { threads: 1 });
  });
  afterAll(async () => {
    await model?.dispose();
  });

  it('prompt longer than max positions → PromptTooLongError', async () => {
    const long = await rejection(model.generate({ inputIds: new Array(2049).fill(3) }, { maxNewTokens: 1 }));
    expect(long).toBeInstanceOf(PromptTooLongError);
    expect((long as DraftError).details).toMatchObject({ promptTokens: 2049, maxPositions: 2048 });
    expect(await rejection(model.forward({ inputIds: [3], positionIds: [2048] }))).toBeInstanceOf(PromptTooLongError);
    expect((await greedy()).tokens).toEqual(golden.greedy);
  });

  it('invalid options → InvalidArgumentError naming the option', async () => {
    const cases: [Promise<unknown>, string][] = [
      [model.generate('the old man', { maxNewTokens: -1 }), 'maxNewTokens'],
      [model.generate('the old man', { maxNewTokens: 2, temperature: -1 }), 'temperature'],
      [model.generate('the old man', { maxNewTokens: 2, topP: 2 }), 'topP'],
      [model.generate('the old man', { maxNewTokens: 2, chunkSize: 0 }), 'chunkSize'],
      [model.generate({ inputIds: [] }, { maxNewTokens: 2 }), 'prompt'],
      [model.forward({ inputIds: [1, 2], captureQueries: 3 }), 'captureQueries'],
      [model.forward({ inputIds: [1, 999] }), 'inputIds[1]'],
      [model.forward({ inputIds: [1, 2], positionIds: [0] }), 'positionIds.length'],
    ];
    for (const [promise, argument] of cases) {
      const e = await rejection(promise);
      expect(e).toBeInstanceOf(InvalidArgumentError);
      expect((e as InvalidArgumentError).argument).toBe(argument);
    }
    expect((await greedy()).tokens).toEqual(golden.greedy);
  });

  it('a cache from another model is rejected', async () => {
    const other = await loadModel(TORCH_LLAMA, { threads: 1 });
    const r = await other.forward({ inputIds: [1, 3] });
    expect(await rejection(model.forward({ inputIds: [3], cache: r.cache }))).toBeInstanceOf(InvalidArgumentError);
    await other.dispose();
  });

  it('abort mid-generation → AbortError with the partial result; the next generate is exact', async () => {
    const controller = new AbortController();
    let seen = 0;
    const e = await rejection(
      model.generate(
        { inputIds: golden.prompt },
        {
          maxNewTokens: 10,
          signal: controller.signal,
          onToken: () => {
            if (++seen === 3) controller.abort(new Error('user stop'));
          },
        },
      ),
    );
    expect(e).toBeInstanceOf(AbortError);
    const partial = (e as AbortError).partial as GenerationResultV1;
    expect(partial.finishReason).toBe('abort');
    expect(partial.tokens).toEqual(golden.greedy.slice(0, 3));
    expect(partial.usage.completionTokens).toBe(3);
    expect((e as AbortError).cause).toBeInstanceOf(Error);
    expect((await greedy()).tokens).toEqual(golden.greedy);
  });

  it('abort between prefill chunks → AbortError; the model still generates', async () => {
    const controller = new AbortController();
    const e = await rejection(
      model.generate({ inputIds: golden.prompt }, { maxNewTokens: 4, chunkSize: 2, signal: controller.signal, onProgress: () => controller.abort() }),
    );
    expect(e).toBeInstanceOf(AbortError);
    expect(((e as AbortError).partial as GenerationResultV1).tokens).toEqual([]);
    const already = await rejection(model.generate('the old man', { maxNewTokens: 2, signal: AbortSignal.abort() }));
    expect(already).toBeInstanceOf(AbortError);
    expect((await greedy()).tokens).toEqual(golden.greedy);
  });

  it('use after dispose → DisposedError (model and cache)', async () => {
    const m = await loadModel(TORCH_LLAMA, { threads: 1 });
    const r = await m.forward({ inputIds: [1, 3, 4] });
    r.cache.dispose();
    expect(() => r.cache.positions(0, 0)).toThrow(DisposedError);
    expect(await rejection(m.forward({ inputIds: [3], cache: r.cache }))).toBeInstanceOf(DisposedError);
    await m.dispose();
    expect(await rejection(m.forward({ inputIds: [1] }))).toBeInstanceOf(DisposedError);
    expect(await rejection(m.generate('the', { maxNewTokens: 1 }))).toBeInstanceOf(DisposedError);
  });
});
