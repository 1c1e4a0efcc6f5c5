// The sources res.sse.pipe() reads, and how to stop each one at once.

/** Sources `res.sse.pipe()` reads: async iterables (Node readables included) and web streams. */
export type PipeSource<T = unknown> = AsyncIterable<T> | ReadableStream<T>;

export interface Source<T> {
  readonly iterator: AsyncIterator<T>;
  /** Stops the source now, even while a read is pending; never throws, never waits. */
  readonly stop: () => void;
}

function noop(): void {}

export function iterate<T>(source: PipeSource<T>): Source<T> {
  if (source !== null && typeof source === 'object') {
    // A web stream is read through its reader, not its async iterator: the iterator's return()
    // waits for a pending read, while reader.cancel() ends that read at once.
    if (typeof (source as ReadableStream<T>).getReader === 'function') {
      const reader = (source as ReadableStream<T>).getReader();
      return {
        iterator: { next: () => reader.read() as Promise<IteratorResult<T>> },
        stop: () => void reader.cancel().catch(noop),
      };
    }
    if (Symbol.asyncIterator in source) {
      const iterator = (source as AsyncIterable<T>)[Symbol.asyncIterator]();
      const destroy = (source as { destroy?: unknown }).destroy;
      if (typeof destroy === 'function') {
        // A Node readable: its iterator is an async generator, whose return() also waits for
        // the pending read; destroy() frees it immediately.
        return { iterator, stop: () => void (destroy as () => void).call(source) };
      }
      // An async generator parked on a slow await finishes that step first; return() is queued
      // and runs its finally blocks at the next yield. Not awaited, so we never hang on it.
      return { iterator, stop: () => void iterator.return?.()?.catch(noop) };
    }
  }
  throw new TypeError('express-sse-hub: pipe() source must be an async iterable or a ReadableStream');
}
