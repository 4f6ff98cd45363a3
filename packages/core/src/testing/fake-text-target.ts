import { NO_CAPABILITIES } from '../spec/capabilities.js';
import { throwIfAborted } from '../spec/errors.js';
import type { TextCompletionRequestV1, TextCompletionResultV1, TextStreamEndV1, TextTargetV1 } from '../spec/model.js';

/**
 * A TextTargetV1 for tests: answers `reply(prompt)` (default: 'echo:' + the first 8 characters of the prompt),
 * records every request in `requests`, offers no KV capabilities.
 */
export class FakeTextTarget implements TextTargetV1 {
  readonly specificationVersion = 'v1' as const;
  readonly kind = 'text' as const;
  readonly name: string;
  readonly capabilities = NO_CAPABILITIES;
  readonly requests: TextCompletionRequestV1[] = [];
  private readonly reply: (prompt: string) => string;

  constructor(options: { name?: string; reply?: (prompt: string) => string } = {}) {
    this.name = options.name ?? 'fake-text';
    this.reply = options.reply ?? ((prompt) => `echo:${prompt.slice(0, 8)}`);
  }

  async complete(request: TextCompletionRequestV1): Promise<TextCompletionResultV1> {
    throwIfAborted(request.signal);
    this.requests.push(request);
    const full = this.reply(request.prompt);
    const text = full.slice(0, request.maxNewTokens);
    return { text, finishReason: text.length < full.length ? 'length' : 'stop', usage: { promptTokens: request.prompt.length, completionTokens: text.length } };
  }

  /** Yields the completion character by character and returns its finish reason and usage. */
  async *stream(request: TextCompletionRequestV1): AsyncGenerator<string, TextStreamEndV1> {
    const { text, finishReason, usage } = await this.complete(request);
    for (const ch of text) yield ch;
    return { finishReason, usage };
  }
}
