import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { cli } from './helpers.js';

const TARGET = fileURLToPath(new URL('../../../models/fixtures/random-target', import.meta.url));
const CONFIG = `${TARGET}/config.json`;
const ONNX = `${TARGET}/onnx/model.onnx`;

async function error(args: string[]): Promise<{ code: number; error: { code: string; message: string; details: Record<string, unknown> } }> {
  const { code, stderr } = await cli([...args, '--json']);
  return { code, error: JSON.parse(stderr.trim().split('\n').pop() as string).error };
}

describe('model folder flags given something that is not a model folder', () => {
  for (const [what, path] of [
    ['its config.json', CONFIG],
    ['an .onnx file', ONNX],
    ['a device', '/dev/zero'],
  ] as const) {
    it(`inspect, generate --target and serve --target name ${what} as not a folder (not "missing …/config.json")`, async () => {
      for (const args of [
        ['inspect', path],
        ['generate', '--prompt', 'hi', '--target', path],
        ['generate', '--prompt', 'hi', '--method', 'specpc', '--draft', path, '--target', TARGET],
      ]) {
        const { code, error: e } = await error(args);
        expect(code, args.join(' ')).toBe(1);
        expect(e.code).toBe('MODEL_LAYOUT');
        expect(e.message).toBe(`${path} is not a folder; pass the model folder (the one holding config.json and onnx/).`);
        expect(e.details.path).toBe(path);
      }
      // serve has no --json: the same error as text, before listening.
      const served = await cli(['serve', '--port', '0', '--target', path]);
      expect(served.code).toBe(1);
      expect(served.stdout).toBe('');
      expect(served.stderr).toContain(`draft: error [MODEL_LAYOUT]: ${path} is not a folder`);
    });
  }

  it('a path with a NUL byte is refused with the byte visible in the message', async () => {
    const { code, error: e } = await error(['inspect', `${TARGET}\0x`]);
    expect(code).toBe(1);
    expect(e.code).toBe('MODEL_LAYOUT');
    expect(e.message).toContain(String.raw`random-target\u0000x" contains a NUL byte`);
  });

  it('an empty DIR for inspect is a usage error, not the working directory', async () => {
    const { code, error: e } = await error(['inspect', '']);
    expect(code).toBe(2);
    expect(e.details).toEqual({ argument: 'DIR', value: '', expected: 'one model folder: draft inspect DIR' });
  });

  it('--plugin given a device or a directory is refused without reading it (/dev/zero used to hang)', async () => {
    for (const path of ['/dev/zero', fileURLToPath(new URL('.', import.meta.url))]) {
      const { code, error: e } = await error(['methods', '--plugin', path]);
      expect(code).toBe(2);
      expect(e.details).toEqual({ argument: '--plugin', value: path, expected: 'a module file (this path is a directory, device or pipe)' });
    }
  });
});
