/**
 * Typed errors with stable codes. Every error thrown by a @draft package is a `DraftError`
 * (checked with `DraftError.isInstance(e)`, which works across duplicated package copies).
 */

/** Stable error codes. Adding a code is a minor change; renaming one is breaking. */
export type DraftErrorCode =
  | 'INVALID_ARGUMENT'
  | 'UNSUPPORTED_CAPABILITY'
  | 'MODEL_LAYOUT'
  | 'GRAPH_PATTERN'
  | 'PROMPT_TOO_LONG'
  | 'VOCAB_MISMATCH'
  | 'PROMPT_NOT_REPRESENTABLE'
  | 'TOKEN_ALIGNMENT'
  | 'POLICY_OUTPUT'
  | 'UNKNOWN_METHOD'
  | 'DUPLICATE_POLICY'
  | 'NATIVE_UNAVAILABLE'
  | 'KERNEL'
  | 'DISPOSED'
  | 'ABORTED'
  | 'REMOTE'
  | 'ADDRESS_IN_USE'
  | 'CACHE_FILE'
  | 'INTERNAL';

const marker = Symbol.for('@draft/core.DraftError');

export interface DraftErrorOptions {
  cause?: unknown;
  /** Extra machine-readable details (offending value, valid range, …). */
  details?: Record<string, unknown>;
}

export class DraftError extends Error {
  readonly [marker] = true;
  readonly code: DraftErrorCode;
  readonly details: Record<string, unknown>;

  constructor(code: DraftErrorCode, message: string, options: DraftErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'DraftError';
    this.code = code;
    this.details = options.details ?? {};
  }

  static isInstance(value: unknown): value is DraftError {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[marker] === true;
  }
}

/** A caller passed a value outside its valid range or of the wrong shape. */
export class InvalidArgumentError extends DraftError {
  readonly argument: string;
  readonly value: unknown;
  readonly expected: string;
  constructor(options: { argument: string; value: unknown; expected: string; message?: string; cause?: unknown }) {
    super(
      'INVALID_ARGUMENT',
      options.message ?? `Invalid ${options.argument}: got ${formatValue(options.value)}, expected ${options.expected}.`,
      { cause: options.cause, details: { argument: options.argument, value: options.value, expected: options.expected } },
    );
    this.name = 'InvalidArgumentError';
    this.argument = options.argument;
    this.value = options.value;
    this.expected = options.expected;
  }
}

/** A stage needs a capability the backend does not offer (e.g. AdaKV on a cache without ragged heads). */
export class UnsupportedCapabilityError extends DraftError {
  readonly capability: string;
  readonly component: string;
  constructor(options: { capability: string; component: string; backend?: string; message?: string; cause?: unknown }) {
    super(
      'UNSUPPORTED_CAPABILITY',
      options.message ??
        `${options.component} needs the capability '${options.capability}', which ${options.backend ?? 'the backend'} does not offer.`,
      { cause: options.cause, details: { capability: options.capability, component: options.component, backend: options.backend } },
    );
    this.name = 'UnsupportedCapabilityError';
    this.capability = options.capability;
    this.component = options.component;
  }
}

/** A model folder or file is missing, malformed, or of an unknown layout. */
export class ModelLayoutError extends DraftError {
  readonly path: string | undefined;
  constructor(message: string, options: { path?: string; cause?: unknown; details?: Record<string, unknown> } = {}) {
    super('MODEL_LAYOUT', message, { cause: options.cause, details: { path: options.path, ...options.details } });
    this.name = 'ModelLayoutError';
    this.path = options.path;
  }
}

/** The ONNX graph has no recognisable attention pattern to instrument. */
export class GraphPatternError extends DraftError {
  constructor(message: string, options: DraftErrorOptions = {}) {
    super('GRAPH_PATTERN', message, options);
    this.name = 'GraphPatternError';
  }
}

/** The prompt (plus requested tokens) exceeds the model's maximum positions. */
export class PromptTooLongError extends DraftError {
  constructor(options: { promptTokens: number; maxPositions: number; cause?: unknown }) {
    super(
      'PROMPT_TOO_LONG',
      `The prompt has ${options.promptTokens} tokens; the model supports at most ${options.maxPositions} positions.`,
      { cause: options.cause, details: { promptTokens: options.promptTokens, maxPositions: options.maxPositions } },
    );
    this.name = 'PromptTooLongError';
  }
}

/** Draft and target vocabularies differ and no text path was allowed. */
export class VocabMismatchError extends DraftError {
  constructor(message: string, options: DraftErrorOptions = {}) {
    super('VOCAB_MISMATCH', message, options);
    this.name = 'VocabMismatchError';
  }
}

/**
 * The draft's tokenizer cannot represent the prompt: too many of its tokens are the unknown token (a WordLevel
 * draft maps every out-of-vocabulary word to it), so the draft would score noise and the kept text would be
 * arbitrary. Thrown before any model runs.
 */
export class PromptNotRepresentableError extends DraftError {
  readonly unknownFraction: number;
  constructor(options: {
    model: string;
    promptTokens: number;
    unknownTokens: number;
    maxUnknownFraction: number;
    /** A few out-of-vocabulary words of the prompt (their original text). */
    examples: readonly string[];
  }) {
    const { model, promptTokens, unknownTokens, maxUnknownFraction, examples } = options;
    const unknownFraction = unknownTokens / promptTokens;
    const percent = (f: number) => `${(f * 100).toFixed(f < 0.01 ? 2 : 0)}%`;
    super(
      'PROMPT_NOT_REPRESENTABLE',
      `Draft '${model}' cannot read this prompt: ${unknownTokens} of its ${promptTokens} tokens (${percent(unknownFraction)}) are unknown to its tokenizer` +
        `${examples.length > 0 ? ` (e.g. ${examples.map((e) => JSON.stringify(e)).join(', ')})` : ''}. ` +
        `Compression needs at most ${percent(maxUnknownFraction)} unknown tokens: write the prompt in the draft's vocabulary, ` +
        'or use a draft whose tokenizer covers the text (e.g. one sharing the target\'s tokenizer).',
      { details: { model, promptTokens, unknownTokens, unknownFraction, maxUnknownFraction, examples } },
    );
    this.name = 'PromptNotRepresentableError';
    this.unknownFraction = unknownFraction;
  }
}

/** A tokenizer could not map its tokens back to spans of the text (see `TokenizerV1.encodeWithOffsets`). */
export class TokenAlignmentError extends DraftError {
  constructor(message: string, options: DraftErrorOptions = {}) {
    super('TOKEN_ALIGNMENT', message, options);
    this.name = 'TokenAlignmentError';
  }
}

/** A plugin (policy, compressor) returned an invalid result: out of range, duplicate or unsorted indices. */
export class PolicyOutputError extends DraftError {
  constructor(message: string, options: DraftErrorOptions = {}) {
    super('POLICY_OUTPUT', message, options);
    this.name = 'PolicyOutputError';
  }
}

/** An unknown method / policy type was requested. */
export class UnknownMethodError extends DraftError {
  readonly method: string;
  readonly known: readonly string[];
  constructor(options: { method: string; known: readonly string[] }) {
    super('UNKNOWN_METHOD', `Unknown method '${options.method}'. Known methods: ${options.known.join(', ')}.`, {
      details: { method: options.method, known: options.known },
    });
    this.name = 'UnknownMethodError';
    this.method = options.method;
    this.known = options.known;
  }
}

/** A policy type was registered twice without `{ override: true }`. */
export class DuplicatePolicyError extends DraftError {
  readonly policyType: string;
  constructor(options: { type: string; existingKind: string }) {
    super(
      'DUPLICATE_POLICY',
      `A policy of type '${options.type}' (${options.existingKind}) is already registered; pass { override: true } to replace it.`,
      { details: { type: options.type, existingKind: options.existingKind } },
    );
    this.name = 'DuplicatePolicyError';
    this.policyType = options.type;
  }
}

/** The native addon is not built or cannot load on this machine. */
export class NativeUnavailableError extends DraftError {
  constructor(message: string, options: DraftErrorOptions = {}) {
    super('NATIVE_UNAVAILABLE', message, options);
    this.name = 'NativeUnavailableError';
  }
}

/** A native kernel returned a non-zero status. */
export class KernelError extends DraftError {
  readonly status: number;
  constructor(options: { kernel: string; status: number; message?: string; cause?: unknown }) {
    super('KERNEL', options.message ?? `Kernel '${options.kernel}' failed with status ${options.status}.`, {
      cause: options.cause,
      details: { kernel: options.kernel, status: options.status },
    });
    this.name = 'KernelError';
    this.status = options.status;
  }
}

/** A disposed resource (model, session, cache) was used. */
export class DisposedError extends DraftError {
  constructor(resource: string) {
    super('DISPOSED', `${resource} has been disposed.`, { details: { resource } });
    this.name = 'DisposedError';
  }
}

/** The operation was aborted through its AbortSignal. `partial` holds what was produced before the abort. */
export class AbortError extends DraftError {
  readonly partial: unknown;
  constructor(options: { reason?: unknown; partial?: unknown } = {}) {
    super('ABORTED', 'The operation was aborted.', { cause: options.reason, details: {} });
    this.name = 'AbortError';
    this.partial = options.partial;
  }
}

/** A remote endpoint failed (HTTP status, timeout, malformed response). */
export class RemoteError extends DraftError {
  readonly status: number | undefined;
  constructor(message: string, options: { status?: number; cause?: unknown } = {}) {
    super('REMOTE', message, { cause: options.cause, details: { status: options.status } });
    this.name = 'RemoteError';
    this.status = options.status;
  }
}

/** Why a stored cache file was refused (`CacheFileError.reason`); stable, like the codes. */
export type CacheFileErrorReason =
  /** Missing or unreadable. */
  | 'unreadable'
  /** Not a cache file at all (wrong magic bytes). */
  | 'not-a-cache-file'
  /** Written in a format version this build does not read. */
  | 'unsupported-version'
  /** Shorter or longer than its header says. */
  | 'truncated'
  /** The checksum over header and payload does not match: the bytes changed after writing. */
  | 'checksum'
  /** Checksum fine but the header is not a valid description (written by a buggy or foreign writer). */
  | 'malformed'
  /** Made with another model (config, weight file, tokenizer or shape differ). */
  | 'model-mismatch'
  /** Made with another weight dtype or KV element type of the same model. */
  | 'dtype-mismatch';

/**
 * A stored cache file (e.g. a document cache) cannot be used. Thrown before any inference, naming the file;
 * the models stay usable. `reason` says why; `details` carries the stored and the loaded values.
 */
export class CacheFileError extends DraftError {
  readonly path: string;
  readonly reason: CacheFileErrorReason;
  constructor(options: { path: string; reason: CacheFileErrorReason; message: string; details?: Record<string, unknown>; cause?: unknown }) {
    super('CACHE_FILE', `${options.path}: ${options.message}`, { cause: options.cause, details: { path: options.path, reason: options.reason, ...options.details } });
    this.name = 'CacheFileError';
    this.path = options.path;
    this.reason = options.reason;
  }
}

/** Throws `AbortError` when the signal is aborted. Call between units of work. */
export function throwIfAborted(signal: AbortSignal | undefined, partial?: unknown): void {
  if (signal?.aborted) throw new AbortError({ reason: signal.reason, partial });
}

function formatValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null || value === undefined) return String(value);
  try {
    const text = JSON.stringify(value);
    return text.length > 80 ? `${text.slice(0, 77)}...` : text;
  } catch {
    return Object.prototype.toString.call(value);
  }
}
