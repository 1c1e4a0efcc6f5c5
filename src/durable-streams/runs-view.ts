// Runs (`registry.run()`) read through the Durable Streams router: a run's log, a channel named
// `\0run:<id>`, seen as a read-only JSON stream. Each chunk the run produced is one message, its
// value as the run serialized it (AI SDK UI message chunks stay exactly that, so the AI SDK's
// Durable Streams transport reads them); the run's end closes the stream. So one answer can be
// followed by EventSource (followRun), the AI SDK and Durable Streams clients alike. How a run
// ended (finished, stopped, failed) is not in the stream: followRun() says it.
//
// Offsets: the log's epoch as the generation (base 36 read as a number) and the log offset
// (events, not bytes) as the position; JSON streams are paged by whole messages, so positions
// need only grow. Live readers look at the log every `runPollInterval`: a run's channel carries
// its entries to the registry's own listener, which an adapter keeps one of per channel.
import type { Adapter, LogEntry, ReadOptions } from '../adapters/adapter';
import { dataOf } from '../log/entry';
import { isEndEvent, isRunId, runChannelName } from '../runs/run';
import type { AppendOutcome, CreateOutcome, ReadOutcome, StoredChunk, StreamStore } from './store';
import type { Watch, WakeSource } from './wakeups';

/** Reads a run without creating its log or keeping it longer. */
const LOOKUP: ReadOptions = { history: 1, ttl: 0, create: false };
/** Epochs are 8 base-36 characters (position.ts); as a number they fit an offset's 16 digits. */
const EPOCH_WIDTH = 8;

function generationOf(epoch: string): number {
  return epoch.length <= 10 ? parseInt(epoch, 36) : 0;
}

function epochOf(generation: number): string {
  return generation.toString(36).padStart(EPOCH_WIDTH, '0');
}

function messageOf(entry: LogEntry): Buffer | undefined {
  const data = dataOf(entry);
  return isEndEvent(entry.event, data) ? undefined : Buffer.from(JSON.stringify(data));
}

/** Runs as a StreamStore that only reads. */
export class RunLogStore implements StreamStore {
  readonly #adapter: Adapter;

  constructor(adapter: Adapter) {
    this.#adapter = adapter;
  }

  create(): Promise<CreateOutcome> {
    return Promise.reject(new Error('express-sse-hub: runs are read-only'));
  }

  append(): Promise<AppendOutcome> {
    return Promise.resolve({ kind: 'not-found' });
  }

  delete(): Promise<boolean> {
    return Promise.resolve(false);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  async info(path: string): Promise<ReadOutcome['info'] | undefined> {
    return (await this.read(path, Number.MAX_SAFE_INTEGER, 1))?.info;
  }

  async read(path: string, position: number, maxBytes: number): Promise<ReadOutcome | undefined> {
    const id = path.slice(1);
    if (!isRunId(id)) return undefined;
    const channel = runChannelName(id);
    const { head, sealed } = await this.#adapter.read(channel, undefined, LOOKUP);
    if (head.epoch === '') return undefined;
    const generation = generationOf(head.epoch);
    const info = { contentType: 'application/json', ttlSeconds: undefined, expiresAt: undefined, generation, tail: head.offset, closed: sealed === true };
    if (position >= head.offset) return { info, chunks: [] };
    const after = position > 0 ? [{ epoch: epochOf(generation), offset: position }] : [];
    const read = await this.#adapter.read(channel, after, LOOKUP);
    const chunks: StoredChunk[] = [];
    let bytes = 0;
    for (const entry of read.events) {
      if (entry.epoch !== head.epoch || entry.offset <= position) continue;
      if (bytes >= maxBytes) break;
      const message = messageOf(entry);
      // The end itself is no message: its offset still counts, so the tail is reached.
      chunks.push({ end: entry.offset, data: message ?? Buffer.alloc(0) });
      bytes += message?.length ?? 0;
    }
    return { info: { ...info, tail: Math.max(head.offset, read.head.offset), closed: sealed === true || read.sealed === true }, chunks };
  }
}

/** Wake-ups for runs: none; a live reader looks at the log again after each wait. */
export class PollOnly implements WakeSource {
  watch(_path: string, signal: AbortSignal): Promise<Watch> {
    let timer: NodeJS.Timeout | undefined;
    let pending: ((value: boolean) => void) | undefined;
    const stop = (): void => {
      clearTimeout(timer);
      pending?.(false);
      pending = undefined;
    };
    signal.addEventListener('abort', stop, { once: true });
    return Promise.resolve({
      release: () => {
        signal.removeEventListener('abort', stop);
        stop();
      },
      next: (ms) =>
        new Promise<boolean>((resolve) => {
          if (signal.aborted) return resolve(false);
          pending = resolve;
          timer = setTimeout(stop, ms);
        }),
    });
  }

  notify(): Promise<void> {
    return Promise.resolve();
  }

  /** Never woken: reads in flight are shared, each poll starts its own once they settle. */
  version(): number {
    return 0;
  }
}
