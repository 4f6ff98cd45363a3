/**
 * Server-sent events (the `text/event-stream` framing OpenAI-compatible servers stream with), parsed per the
 * WHATWG HTML spec, §9.2.6: lines end in LF, CR or CRLF; `data:` lines of one event join with '\n'; a blank
 * line dispatches; lines starting with ':' are comments; `event:`, `id:`, `retry:` are read and ignored.
 *
 * `OpenAITextTarget` no longer uses this (the official `openai` client parses its streams); it stays exported,
 * deprecated, because tests of the OpenAI-compatible server read raw streams with it.
 */

/** One dispatched event. */
export interface SseEvent {
  /** The `event:` field, or 'message'. */
  event: string;
  /** The `data:` lines joined with '\n'. */
  data: string;
}

/**
 * @deprecated Kept for readers of raw OpenAI-compatible streams; `OpenAITextTarget` streams without it.
 *
 * Incremental SSE parser: feed it decoded text in arbitrary pieces (a chunk may end inside a line, or between
 * the CR and LF of a CRLF) and it returns the events completed by each piece.
 */
export class SseParser {
  private buffer = '';
  private data: string[] = [];
  private event = '';
  /** The previous piece ended with CR: an LF at the start of the next piece belongs to that line end. */
  private pendingCr = false;

  /** Parses `text` and returns the events it completes. */
  push(text: string): SseEvent[] {
    let input = text;
    if (this.pendingCr && input.startsWith('\n')) input = input.slice(1);
    this.pendingCr = false;
    this.buffer += input;
    const events: SseEvent[] = [];
    let start = 0;
    for (let i = 0; i < this.buffer.length; i++) {
      const ch = this.buffer.charCodeAt(i);
      if (ch !== 10 && ch !== 13) continue;
      const line = this.buffer.slice(start, i);
      if (ch === 13) {
        if (i + 1 < this.buffer.length) {
          if (this.buffer.charCodeAt(i + 1) === 10) i++;
        } else this.pendingCr = true;
      }
      start = i + 1;
      const event = this.line(line);
      if (event) events.push(event);
    }
    this.buffer = this.buffer.slice(start);
    return events;
  }

  /** Ends the input: an event still missing its blank line is dispatched (lenient, as browsers are not). */
  end(): SseEvent[] {
    const events: SseEvent[] = [];
    if (this.buffer.length > 0) {
      const event = this.line(this.buffer);
      if (event) events.push(event);
      this.buffer = '';
    }
    const last = this.line('');
    if (last) events.push(last);
    return events;
  }

  private line(line: string): SseEvent | undefined {
    if (line === '') {
      if (this.data.length === 0) {
        this.event = '';
        return undefined;
      }
      const event = { event: this.event || 'message', data: this.data.join('\n') };
      this.data = [];
      this.event = '';
      return event;
    }
    if (line.startsWith(':')) return undefined;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.event = value;
    return undefined;
  }
}

/** @deprecated See `SseParser`. Yields the events of a byte stream (e.g. a fetch `response.body`), decoding UTF-8 across chunk boundaries. */
export async function* parseSseStream(body: AsyncIterable<Uint8Array>): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoder('utf-8');
  const parser = new SseParser();
  for await (const chunk of body) {
    yield* parser.push(decoder.decode(chunk, { stream: true }));
  }
  yield* parser.push(decoder.decode());
  yield* parser.end();
}
