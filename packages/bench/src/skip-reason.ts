import { DraftError } from '@draft/core';

/** Whether an error means "this method cannot run on this backend/setting" (recorded as skipped), and why. */
export function skipReason(error: unknown): string | undefined {
  if (!DraftError.isInstance(error)) return undefined;
  if (error.code === 'UNSUPPORTED_CAPABILITY' || error.code === 'INVALID_ARGUMENT' || error.code === 'VOCAB_MISMATCH' || error.code === 'PROMPT_TOO_LONG') return `${error.code}: ${error.message}`;
  return undefined;
}
