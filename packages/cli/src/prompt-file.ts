import { open } from 'node:fs/promises';
import { InvalidArgumentError } from '@draft/core';

/** Largest prompt file read by default: 64 MiB (far beyond any model's context, well below memory trouble). */
export const DEFAULT_MAX_PROMPT_BYTES = 64 * 1024 * 1024;

/** Read size: devices and pipes are read in chunks, so the cap holds for `/dev/zero` and endless FIFOs too. */
const CHUNK_BYTES = 1024 * 1024;

export interface ReadPromptFileOptions {
  /** The flag the path came from, named in errors. Default `--prompt-file`. */
  argument?: string;
  /** Cap in bytes. Default `DEFAULT_MAX_PROMPT_BYTES`. */
  maxBytes?: number;
  /** The flag that raises the cap, named in the error. Default `--max-prompt-bytes`. */
  capFlag?: string;
}

/**
 * Reads a prompt file as UTF-8 text, refusing with an InvalidArgumentError that names the file and the cap:
 * a file (or device, pipe) longer than `maxBytes` (read stops at `maxBytes` + 1 bytes, so `/dev/zero` fails
 * at once instead of growing until `std::bad_alloc`), a directory, a path with a NUL byte, an empty file, and
 * text that is not valid UTF-8 (with the byte offset; a replacement character would silently change the prompt).
 */
export async function readPromptFile(path: string, options: ReadPromptFileOptions = {}): Promise<string> {
  const argument = options.argument ?? '--prompt-file';
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_PROMPT_BYTES;
  const capFlag = options.capFlag ?? '--max-prompt-bytes';
  const refuse = (expected: string, cause?: unknown): never => {
    throw new InvalidArgumentError({ argument, value: path, expected, cause });
  };
  if (path.includes('\0')) refuse('a file path without NUL bytes');
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, 'r');
  } catch (cause) {
    return refuse(`a readable text file (${(cause as NodeJS.ErrnoException).code ?? 'unreadable'})`, cause);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    const stat = await handle.stat();
    if (stat.isDirectory()) refuse('a text file, not a directory');
    if (stat.isFile() && stat.size > maxBytes) refuse(tooLong(stat.size, maxBytes, capFlag));
    for (;;) {
      const chunk = Buffer.allocUnsafe(Math.min(CHUNK_BYTES, maxBytes + 1 - total));
      let bytesRead: number;
      try {
        ({ bytesRead } = await handle.read(chunk, 0, chunk.length, null));
      } catch (cause) {
        return refuse(`a readable text file (${(cause as NodeJS.ErrnoException).code ?? 'read failed'})`, cause);
      }
      if (bytesRead === 0) break;
      chunks.push(chunk.subarray(0, bytesRead));
      total += bytesRead;
      if (total > maxBytes) refuse(tooLong(undefined, maxBytes, capFlag));
    }
  } finally {
    await handle.close();
  }
  const bytes = Buffer.concat(chunks, total);
  if (bytes.length === 0) refuse('a non-empty text file');
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (cause) {
    return refuse(`UTF-8 text (invalid byte sequence at byte ${firstInvalidUtf8(bytes)})`, cause);
  }
}

function tooLong(size: number | undefined, maxBytes: number, capFlag: string): string {
  const found = size === undefined ? `it has more than ${maxBytes} bytes` : `it has ${size} bytes`;
  return `a prompt of at most ${maxBytes} bytes (${found}; raise the cap with ${capFlag} N)`;
}

/** Offset of the first byte that does not begin a well-formed UTF-8 sequence (Unicode Table 3-7). */
function firstInvalidUtf8(bytes: Uint8Array): number {
  const inRange = (i: number, lo: number, hi: number) => i < bytes.length && bytes[i] >= lo && bytes[i] <= hi;
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i];
    let length = 0;
    if (b <= 0x7f) length = 1;
    else if (b >= 0xc2 && b <= 0xdf) length = inRange(i + 1, 0x80, 0xbf) ? 2 : 0;
    else if (b >= 0xe0 && b <= 0xef) {
      const [lo, hi] = b === 0xe0 ? [0xa0, 0xbf] : b === 0xed ? [0x80, 0x9f] : [0x80, 0xbf];
      length = inRange(i + 1, lo, hi) && inRange(i + 2, 0x80, 0xbf) ? 3 : 0;
    } else if (b >= 0xf0 && b <= 0xf4) {
      const [lo, hi] = b === 0xf0 ? [0x90, 0xbf] : b === 0xf4 ? [0x80, 0x8f] : [0x80, 0xbf];
      length = inRange(i + 1, lo, hi) && inRange(i + 2, 0x80, 0xbf) && inRange(i + 3, 0x80, 0xbf) ? 4 : 0;
    }
    if (length === 0) return i;
    i += length;
  }
  return bytes.length;
}
