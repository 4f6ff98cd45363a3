// Test-only helpers shared by the CLI tests.
import { expect } from 'vitest';
import { runCli } from '../src/index.js';

/** Runs `draft <args>` in-process, capturing what it writes. */
export async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) });
  return { code, stdout, stderr };
}

/** The one JSON object on `stdout` (asserts there is exactly one line). */
export function oneJson<T>(stdout: string): T {
  const lines = stdout.trim().split('\n');
  expect(lines).toHaveLength(1); // exactly one object
  return JSON.parse(lines[0]) as T;
}
