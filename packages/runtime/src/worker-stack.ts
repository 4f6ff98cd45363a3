import { readFileSync } from 'node:fs';

/**
 * Thread stack for the ORT worker, sized from the process command line.
 *
 * Why: when onnxruntime-node creates its process-wide `Ort::Env` (the first `InferenceSession` of the process),
 * onnxruntime 1.30's telemetry code reads `/proc/self/cmdline` and matches it with a recursive `std::regex`, about
 * 290 bytes of native stack per command-line byte (measured: a 120,000-byte command line needs 33–36 MB). A worker
 * thread has a 4 MB stack by default, so any argument of ≥ ~15 KB (`draft generate --prompt "<long text>"`)
 * overflowed it: a segfault, no message. Passing `argv: []` to the worker does not help (the worker's
 * `process.argv` never held the parent's arguments; the kernel's `/proc/self/cmdline` is process-wide).
 * `resourceLimits.stackSizeMb` sets the real thread stack, so the worker gets one large enough for the command
 * line. The memory is reserved, not committed: only the pages the regex touches become resident.
 */

/** Command lines up to this many bytes fit Node's default worker stack (4 MB) with room to spare. */
const DEFAULT_STACK_FITS_BYTES = 8 * 1024;
/** Native stack per command-line byte, with margin over the measured ~290 bytes. */
const STACK_BYTES_PER_COMMAND_LINE_BYTE = 512;
/** Stack for everything besides the regex (Node's default worker stack). */
const BASE_STACK_MB = 4;
/** Never ask for more than this (a 2 MiB command line, Linux's default ARG_MAX, needs ~1 GiB). */
const MAX_STACK_MB = 1536;

/**
 * Bytes of this process's command line as the kernel reports it (`/proc/self/cmdline`), or, where there is no
 * procfs, the sum of the executable's arguments (each plus its NUL terminator).
 */
export function commandLineBytes(): number {
  try {
    return readFileSync('/proc/self/cmdline').length;
  } catch {
    return [...process.execArgv, ...process.argv].reduce((sum, arg) => sum + Buffer.byteLength(arg) + 1, 0);
  }
}

/**
 * `stackSizeMb` for a worker that may create the process's first ORT session, or undefined when Node's default
 * worker stack suffices (command lines up to 8 KiB).
 */
export function ortWorkerStackSizeMb(bytes: number = commandLineBytes()): number | undefined {
  if (bytes <= DEFAULT_STACK_FITS_BYTES) return undefined;
  return Math.min(MAX_STACK_MB, BASE_STACK_MB + Math.ceil((bytes * STACK_BYTES_PER_COMMAND_LINE_BYTE) / (1024 * 1024)));
}
