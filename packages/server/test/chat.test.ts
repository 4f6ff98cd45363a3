import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel, type OrtCausalLM } from '@draft/runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDraftServer, type DraftServer } from '../src/index.js';
import { MODELS, post } from './helpers.js';

// A Llama-3-style chat template that writes the BOS itself, on a tokenizer whose post-processor adds one too.
const BOS_TEMPLATE = "{{ bos_token }}{% for m in messages %}{{ m['role'] }} : {{ m['content'] }} {% endfor %}{% if add_generation_prompt %}assistant :{% endif %}";

let scratch: string;
let bosModel: OrtCausalLM;
let plain: OrtCausalLM;
let target: OrtCausalLM;
const servers: DraftServer[] = [];
let bosBase: string;
let plainBase: string;
let base: string;

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'draft-server-chat-'));
  const dir = join(scratch, 'bos-llama');
  cpSync(`${MODELS}fixtures/torch-llama`, dir, { recursive: true });
  const configPath = join(dir, 'tokenizer_config.json');
  writeFileSync(configPath, JSON.stringify({ ...JSON.parse(readFileSync(configPath, 'utf8')), chat_template: BOS_TEMPLATE }));
  bosModel = await loadModel(dir, { threads: 1 });
  plain = await loadModel(`${MODELS}fixtures/tiny-llama`, { threads: 1 }); // no chat_template
  target = await loadModel(`${MODELS}fixtures/random-target`, { threads: 1 });
  const start = async (model: OrtCausalLM) => {
    const server = createDraftServer({ target: model, disposeModels: false });
    servers.push(server);
    return (await server.listen({ port: 0 })).url;
  };
  [bosBase, plainBase, base] = [await start(bosModel), await start(plain), await start(target)];
});

afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
  await Promise.all([bosModel?.dispose(), plain?.dispose(), target?.dispose()]);
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe('chat prompts', () => {
  it('a template that writes the BOS gets exactly one: the rendered text is encoded without special tokens', async () => {
    const messages = [{ role: 'user' as const, content: 'the cat sat' }];
    const text = bosModel.tokenizer.applyChatTemplate?.(messages, { addGenerationPrompt: true }) ?? '';
    expect(text.startsWith('<s>')).toBe(true);
    const once = bosModel.tokenizer.encode(text, { addSpecialTokens: false });
    const twice = bosModel.tokenizer.encode(text);
    // The fixture's post-processor adds <s> (id 1): encoding the rendered text the default way doubles it.
    expect(twice.slice(0, 2)).toEqual([1, 1]);
    expect(once[0]).toBe(1);
    expect(once[1]).not.toBe(1);
    const { status, json } = await post(bosBase, '/v1/chat/completions', { messages, max_tokens: 4 });
    expect(status).toBe(200);
    expect(json.usage.prompt_tokens).toBe(once.length);
    const expected = await bosModel.generate({ inputIds: once }, { maxNewTokens: 4 });
    expect(json.choices[0].message.content).toBe(expected.text);
  });

  it('a model without a chat template answers chat with a 400 naming the problem; completions still work', async () => {
    const res = await post(plainBase, '/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 });
    expect(res.status).toBe(400);
    expect(res.json.error).toMatchObject({ code: 'chat_template_missing', param: 'messages', type: 'invalid_request_error' });
    expect(res.json.error.message).toContain('no chat template');
    expect((await post(plainBase, '/v1/completions', { prompt: 'the quick brown fox', max_tokens: 2 })).status).toBe(200);
  });
});

describe('sampling parameters', () => {
  const prompt = 'Once upon a time';

  it('repetition, presence and frequency penalties reach the decode loop', async () => {
    const greedy = await target.generate(prompt, { maxNewTokens: 24 });
    // The random fixture loops under greedy decoding, so penalties must change its output.
    expect(new Set(greedy.tokens).size).toBeLessThan(greedy.tokens.length);
    for (const [field, option, value] of [
      ['repetition_penalty', 'repetitionPenalty', 1.5],
      ['presence_penalty', 'presencePenalty', 1.5],
      ['frequency_penalty', 'frequencyPenalty', 1.5],
    ] as const) {
      const { status, json } = await post(base, '/v1/completions', { prompt, max_tokens: 24, [field]: value });
      expect(status, field).toBe(200);
      const direct = await target.generate(prompt, { maxNewTokens: 24, [option]: value });
      expect(json.choices[0].text, field).toBe(direct.text);
      expect(direct.text, field).not.toBe(greedy.text);
    }
  });

  it('without a seed sampling draws one (reported in usage.draft.seed); sending it back reproduces the reply', async () => {
    const body = { prompt, max_tokens: 12, temperature: 1 };
    const a = (await post(base, '/v1/completions', body)).json;
    const b = (await post(base, '/v1/completions', body)).json;
    expect(Number.isInteger(a.usage.draft.seed)).toBe(true);
    expect(a.usage.draft.seed).not.toBe(b.usage.draft.seed);
    const again = (await post(base, '/v1/completions', { ...body, seed: a.usage.draft.seed })).json;
    expect(again.choices[0].text).toBe(a.choices[0].text);
    expect((await post(base, '/v1/completions', { prompt, max_tokens: 2 })).json.usage.draft.seed).toBeNull(); // greedy
  });

  it('stop "" and [""] both mean no stop string', async () => {
    const plainText = (await post(base, '/v1/completions', { prompt, max_tokens: 8 })).json.choices[0].text;
    for (const stop of ['', [''], ['', '']]) {
      const res = await post(base, '/v1/completions', { prompt, max_tokens: 8, stop });
      expect(res.status).toBe(200);
      expect(res.json.choices[0]).toMatchObject({ text: plainText, finish_reason: 'length' });
    }
  });

  const refused: [string, unknown][] = [
    ['logprobs', true],
    ['top_logprobs', 3],
    ['tools', [{ type: 'function', function: { name: 'f' } }]],
    ['tool_choice', 'auto'],
    ['response_format', { type: 'json_object' }],
    ['logit_bias', { '5': 10 }],
    ['best_of', 2],
    ['echo', true],
    ['n', 2],
  ];
  for (const [param, value] of refused) {
    it(`${param}: ${JSON.stringify(value)} is a 400 naming it, not silently ignored`, async () => {
      const res = await post(base, '/v1/completions', { prompt, max_tokens: 2, [param]: value });
      expect(res.status).toBe(400);
      expect(res.json.error).toMatchObject({ param, type: 'invalid_request_error' });
      expect(res.json.error.message).toContain(param);
    });
  }

  it('neutral values of unsupported parameters pass; an unknown field is a 400 naming it', async () => {
    const neutral = { logprobs: false, n: 1, response_format: { type: 'text' }, tools: [], logit_bias: {}, user: 'u1' };
    expect((await post(base, '/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }], max_tokens: 2, ...neutral })).status).toBe(200);
    const unknown = await post(base, '/v1/completions', { prompt, max_tokens: 2, temprature: 0.5 });
    expect(unknown.status).toBe(400);
    expect(unknown.json.error).toMatchObject({ code: 'unknown_parameter', param: 'temprature' });
  });

  it('per-request method options reach the policy; a bad one is a 400 on draft.options', async () => {
    const ok = await post(base, '/v1/completions', { prompt: 'the tide '.repeat(40), max_tokens: 2, draft: { method: 'snapkv', budget: 32, window: 8, options: { kernelSize: 3 } } });
    expect(ok.status).toBe(200);
    expect(ok.json.usage.draft).toMatchObject({ method: 'snapkv', options: { kernelSize: 3 } });
    const bad = await post(base, '/v1/completions', { prompt, max_tokens: 2, draft: { method: 'snapkv', budget: 32, options: { kernelSise: 3 } } });
    expect(bad.status).toBe(400);
    expect(bad.json.error).toMatchObject({ param: 'draft.options' });
    expect(bad.json.error.message).toContain('kernelSise');
  });
});
