import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from './helpers.js';

// Every refusal must come before any model loads: the target folder does not exist, so reaching the model
// would be MODEL_LAYOUT instead of INVALID_ARGUMENT.
const NO_MODEL = ['--target', 'no/such/folder', '--json'];

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'draft-prompt-file-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function refused(args: string[]): Promise<{ argument: string; value: unknown; expected: string; message: string }> {
  const { code, stdout, stderr } = await cli(['generate', ...NO_MODEL, ...args]);
  expect(code).toBe(2);
  expect(stdout).toBe('');
  const { error } = JSON.parse(stderr.trim().split('\n').pop() as string);
  expect(error.code).toBe('INVALID_ARGUMENT');
  return { ...error.details, message: error.message };
}

describe('draft generate --prompt-file: hostile files', () => {
  it('/dev/zero stops at the 64 MiB cap with an error naming the file and the cap', async () => {
    const error = await refused(['--prompt-file', '/dev/zero']);
    expect(error).toMatchObject({ argument: '--prompt-file', value: '/dev/zero' });
    expect(error.expected).toContain(`at most ${64 * 1024 * 1024} bytes`);
    expect(error.expected).toContain('--max-prompt-bytes');
    // Before: read on for a minute, then std::bad_alloc (the test timeout catches a regression).
  }, 60_000);

  it('--max-prompt-bytes lowers the cap; a regular file over it is refused with its size', async () => {
    const file = join(dir, 'big.txt');
    writeFileSync(file, 'word '.repeat(400)); // 2,000 bytes
    const error = await refused(['--prompt-file', file, '--max-prompt-bytes', '1999']);
    expect(error.value).toBe(file);
    expect(error.expected).toBe('a prompt of at most 1999 bytes (it has 2000 bytes; raise the cap with --max-prompt-bytes N)');
  });

  it('a file exactly at the cap is read (the refusal is for the model folder, after the prompt)', async () => {
    const file = join(dir, 'exact.txt');
    writeFileSync(file, 'word '.repeat(400));
    const { code, stderr } = await cli(['generate', ...NO_MODEL, '--prompt-file', file, '--max-prompt-bytes', '2000']);
    expect(code).toBe(1);
    expect(JSON.parse(stderr.trim().split('\n').pop() as string).error.code).toBe('MODEL_LAYOUT');
  });

  it('--max-prompt-bytes must be a positive integer', async () => {
    const error = await refused(['--prompt-file', '/dev/null', '--max-prompt-bytes', '0']);
    expect(error).toMatchObject({ argument: '--max-prompt-bytes', value: '0' });
  });

  it('a directory is refused as a directory', async () => {
    const error = await refused(['--prompt-file', dir]);
    expect(error).toMatchObject({ argument: '--prompt-file', value: dir, expected: 'a text file, not a directory' });
  });

  it('a path with a NUL byte is refused without touching the file system', async () => {
    const error = await refused(['--prompt-file', `${dir}/a\0b`]);
    expect(error.expected).toBe('a file path without NUL bytes');
  });

  it('an empty file and a missing file are refused', async () => {
    const empty = join(dir, 'empty.txt');
    writeFileSync(empty, '');
    expect((await refused(['--prompt-file', empty])).expected).toBe('a non-empty text file');
    expect((await refused(['--prompt-file', join(dir, 'missing.txt')])).expected).toBe('a readable text file (ENOENT)');
  });

  it('invalid UTF-8 is refused with the offset of the first bad byte; valid multi-byte text is not', async () => {
    const bad = join(dir, 'latin1.txt');
    // "café " in UTF-8 (6 bytes: é is C3 A9), then "naïve" in Latin-1 (ï is a lone EF at byte 8).
    writeFileSync(bad, Buffer.concat([Buffer.from('café ', 'utf8'), Buffer.from('naïve', 'latin1')]));
    expect((await refused(['--prompt-file', bad])).expected).toBe('UTF-8 text (invalid byte sequence at byte 8)');
    const truncated = join(dir, 'truncated.txt');
    // A 4-byte sequence (U+1F600) cut after 3 bytes at the end of the file.
    writeFileSync(truncated, Buffer.concat([Buffer.from('ok ', 'utf8'), Buffer.from([0xf0, 0x9f, 0x98])]));
    expect((await refused(['--prompt-file', truncated])).expected).toBe('UTF-8 text (invalid byte sequence at byte 3)');
    const good = join(dir, 'utf8.txt');
    writeFileSync(good, 'naïve café 😀');
    const { stderr } = await cli(['generate', ...NO_MODEL, '--prompt-file', good]);
    expect(JSON.parse(stderr.trim().split('\n').pop() as string).error.code).toBe('MODEL_LAYOUT');
  });
});
