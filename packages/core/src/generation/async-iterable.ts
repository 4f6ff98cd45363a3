/**
 * Turns a producer that reports items through a callback into an `AsyncIterable`. The producer starts on
 * the first `next()`; items are buffered; the iterable ends when the producer's promise resolves and
 * throws its error when it rejects. `result` settles with the producer's return value.
 *
 * Breaking out of a `for await` loop does not stop the producer: pass it an AbortSignal for that.
 */
export interface CallbackIterable<T, R> extends AsyncIterable<T> {
  /** The producer's return value (rejects with its error). */
  readonly result: Promise<R>;
}

export function callbackToAsyncIterable<T, R>(producer: (push: (item: T) => void) => Promise<R>): CallbackIterable<T, R> {
  const buffer: T[] = [];
  let done = false;
  let failure: { error: unknown } | undefined;
  let wake: (() => void) | undefined;
  let started: Promise<R> | undefined;
  let resolveResult!: (value: R) => void;
  let rejectResult!: (error: unknown) => void;
  const result = new Promise<R>((resolve, reject) => {
    resolveResult = resolve;
    rejectResult = reject;
  });
  // Avoid an unhandled rejection when only the iterator is consumed.
  result.catch(() => {});
  const notify = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const start = () => {
    started ??= producer((item) => {
      buffer.push(item);
      notify();
    }).then(
      (value) => {
        done = true;
        resolveResult(value);
        notify();
        return value;
      },
      (error: unknown) => {
        done = true;
        failure = { error };
        rejectResult(error);
        notify();
        throw error;
      },
    );
    started.catch(() => {});
  };
  return {
    get result() {
      start();
      return result;
    },
    [Symbol.asyncIterator](): AsyncIterator<T> {
      start();
      return {
        async next(): Promise<IteratorResult<T>> {
          for (;;) {
            if (buffer.length > 0) return { value: buffer.shift() as T, done: false };
            if (failure) throw failure.error;
            if (done) return { value: undefined, done: true };
            await new Promise<void>((resolve) => {
              wake = resolve;
            });
          }
        },
      };
    },
  };
}
