import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ModelInspection } from '@draft/runtime';
import { afterAll, describe, expect, it } from 'vitest';
import { cli, oneJson } from './helpers.js';

const models = fileURLToPath(new URL('../../../models', import.meta.url));
const plugin = fileURLToPath(new URL('../../../examples/third-party-policy/dist/index.js', import.meta.url));
const GQA = join(models, 'fixtures', 'tiny-qwen2-gqa');
const work = mkdtempSync(join(tmpdir(), 'draft-inspect-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

// Committed folders only: the runtime tests generate gitignored dtype / external-data variants beside them
// (`*-dtypes`, `*-external`, `*-chunked`), whose presence depends on test order.
const GENERATED = /-(dtypes|external|chunked)$/;
const folders = [...readdirSync(join(models, 'fixtures')).filter((f) => !GENERATED.test(f)).map((f) => join('fixtures', f)), 'draft', 'target'];

async function inspect(dir: string, ...flags: string[]): Promise<ModelInspection> {
  const { code, stdout, stderr } = await cli(['inspect', dir, '--json', ...flags]);
  expect(code, stderr).toBe(0);
  return oneJson<ModelInspection>(stdout);
}

describe('draft inspect', () => {
  it.each(folders)('%s: --json matches config.json and the graph', async (folder) => {
    const dir = join(models, folder);
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    const x = await inspect(dir);
    expect(x.schemaVersion).toBe(1);
    expect(x.architecture).toMatchObject({ modelType: config.model_type, numLayers: config.num_hidden_layers, numKvHeads: config.num_key_value_heads });
    expect(x.attention.layers.map((l) => l.layer)).toEqual([...Array(config.num_hidden_layers).keys()]);
    expect(x.loadable).toBe(true);
    expect(x.graph).toMatchObject({ kvDtype: 'float32', logitsDtype: 'float32' });
    expect(x.files.find((f) => f.loaded)).toMatchObject({ path: 'onnx/model.onnx', dtype: 'fp32', externalData: [] });
    const gqa = config.draft_attention === 'gqa';
    expect(x.attention.pattern).toBe(gqa ? 'gqa' : 'decomposed');
    // Ragged caches only where the graph can mask per head: AdaKV / PyramidKV are refused on GQA, naming the capability.
    const adakv = x.methods.find((m) => m.method === 'adakv');
    expect(adakv?.runs).toBe(!gqa);
    if (gqa) expect(adakv).toMatchObject({ code: 'UNSUPPORTED_CAPABILITY', reason: expect.stringContaining('raggedKvHeads') });
    for (const method of ['full', 'speckv', 'snapkv', 'h2o', 'specpc']) expect(x.methods.find((m) => m.method === method)?.runs, method).toBe(true);
  });

  it('human output: one line per layer and per method', async () => {
    const { code, stdout } = await cli(['inspect', GQA]);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^model {8}tiny-qwen2-gqa$/m);
    expect(stdout).toMatch(/^ {2}0 +GroupQueryAttention \(separate Q\/K\/V, position_ids wired, cos\/sin cache\) +\/model\/layers\.0\/self_attn\/GroupQueryAttention$/m);
    expect(stdout).toMatch(/^ {2}adakv +no +cache policy 'adakv' needs the capability 'raggedKvHeads'/m);
    expect(stdout).toMatch(/^ {2}speckv +yes$/m);
  });

  it('lists plugin methods', async () => {
    const x = await inspect(join(models, 'target'), '--plugin', plugin);
    expect(x.methods.find((m) => m.method === 'keynorm')).toEqual({ method: 'keynorm', runs: true });
  });

  it('config.json contradicting the KV inputs → MODEL_LAYOUT naming config.json and the input', async () => {
    const dir = join(work, 'bad-heads');
    cpSync(GQA, dir, { recursive: true });
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, head_dim: 8 }));
    const { code, stderr } = await cli(['inspect', dir, '--json']);
    expect(code).toBe(1);
    const { error } = JSON.parse(stderr.trim());
    expect(error.code).toBe('MODEL_LAYOUT');
    expect(error.message).toMatch(/config\.json: head_dim = 8 contradicts graph input 'past_key_values\.0\.key' \[batch_size, 2, past_sequence_length, 16\]/);
  });

  it('needs exactly one folder', async () => {
    expect((await cli(['inspect'])).code).toBe(2);
  });
});
