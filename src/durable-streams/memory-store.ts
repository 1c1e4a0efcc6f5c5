// Streams in this process's memory: the store behind `durableStreams()` with a MemoryAdapter.
// Everything a request does happens in one synchronous step, so appends, producer checks and
// closes are atomic without locks. Bounded: bytes per stream (`maxStreamBytes`), in all
// (`maxTotalBytes`) and number of streams (`maxStreams`); expired streams are dropped when
// touched and by a periodic sweep.
import { expiresAtMs } from './expiry';
import { judgeProducer, type ProducerClaim } from './producers';
import type { AppendOutcome, AppendRequest, CreateOutcome, CreateRequest, ReadOutcome, StoredChunk, StreamInfo, StreamStore } from './store';

/** Producer state is forgotten after a week without a write (protocol section 5.2.1). */
const PRODUCER_TTL_MS = 7 * 24 * 3600 * 1000;

interface Producer {
  epoch: number;
  lastSeq: number;
  updated: number;
}

interface MemoryStream {
  readonly contentType: string;
  readonly mediaType: string;
  readonly ttlSeconds: number | undefined;
  readonly expiresAt: string | undefined;
  readonly generation: number;
  readonly chunks: StoredChunk[];
  tail: number;
  closed: boolean;
  /** The producer batch that closed the stream: its retry is a duplicate, not a conflict. */
  closedBy: ProducerClaim | undefined;
  streamSeq: string | undefined;
  readonly producers: Map<string, Producer>;
  lastAccess: number;
}

/** Limits of a MemoryStreamStore. */
export interface MemoryStreamStoreOptions {
  readonly maxStreamBytes: number;
  readonly maxStreams: number;
  /** Most bytes of every stream together. */
  readonly maxTotalBytes: number;
  /** Milliseconds between sweeps of expired streams. */
  readonly sweepInterval: number;
}

function infoOf(stream: MemoryStream): StreamInfo {
  return {
    contentType: stream.contentType,
    ttlSeconds: stream.ttlSeconds,
    expiresAt: stream.expiresAt,
    generation: stream.generation,
    tail: stream.tail,
    closed: stream.closed,
  };
}

function sameClaim(a: ProducerClaim | undefined, b: ProducerClaim | undefined): boolean {
  return a !== undefined && b !== undefined && a.id === b.id && a.epoch === b.epoch && a.seq === b.seq;
}

/** Index of the first chunk ending after `position`. */
function firstAfter(chunks: readonly StoredChunk[], position: number): number {
  let low = 0;
  let high = chunks.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (chunks[middle]!.end > position) high = middle;
    else low = middle + 1;
  }
  return low;
}

export class MemoryStreamStore implements StreamStore {
  readonly #streams = new Map<string, MemoryStream>();
  readonly #options: MemoryStreamStoreOptions;
  /** The last generation handed out: microseconds since the epoch at least, so a restarted process never hands out an earlier one. */
  #generation = 0;
  /** Bytes held by every stream together. */
  #total = 0;
  readonly #sweeper: NodeJS.Timeout;

  constructor(options: MemoryStreamStoreOptions) {
    this.#options = options;
    this.#sweeper = setInterval(() => this.#sweep(), options.sweepInterval);
    this.#sweeper.unref();
  }

  /** Streams held now. */
  get size(): number {
    return this.#streams.size;
  }

  create(path: string, request: CreateRequest): Promise<CreateOutcome> {
    const existing = this.#live(path);
    if (existing !== undefined) return Promise.resolve({ kind: 'exists', info: infoOf(existing) });
    if (this.#streams.size >= this.#options.maxStreams) {
      this.#sweep();
      if (this.#streams.size >= this.#options.maxStreams) return Promise.resolve({ kind: 'full' });
    }
    let size = 0;
    for (const message of request.messages) size += message.length;
    if (size > this.#options.maxStreamBytes) return Promise.resolve({ kind: 'too-large' });
    if (this.#total + size > this.#options.maxTotalBytes) return Promise.resolve({ kind: 'full' });
    this.#generation = Math.max(this.#generation + 1, Date.now() * 1000);
    const stream: MemoryStream = {
      contentType: request.contentType,
      mediaType: request.mediaType,
      ttlSeconds: request.ttlSeconds,
      expiresAt: request.expiresAt,
      generation: this.#generation,
      chunks: [],
      tail: 0,
      closed: request.closed,
      closedBy: undefined,
      streamSeq: undefined,
      producers: new Map(),
      lastAccess: Date.now(),
    };
    for (const message of request.messages) this.#push(stream, message);
    this.#streams.set(path, stream);
    return Promise.resolve({ kind: 'created', info: infoOf(stream) });
  }

  append(path: string, request: AppendRequest): Promise<AppendOutcome> {
    return Promise.resolve(this.#append(path, request));
  }

  #append(path: string, request: AppendRequest): AppendOutcome {
    const stream = this.#live(path);
    if (stream === undefined) return { kind: 'not-found' };
    const { generation } = stream;
    if (stream.closed) {
      if (request.producer !== undefined && sameClaim(stream.closedBy, request.producer)) {
        return { kind: 'duplicate', lastSeq: request.producer.seq, tail: stream.tail, generation, closed: true };
      }
      const conflict = request.messages.length > 0 || request.producer !== undefined;
      if (!conflict) stream.lastAccess = Date.now();
      return { kind: 'closed', tail: stream.tail, generation, conflict };
    }
    if (request.messages.length > 0 && request.mediaType !== stream.mediaType) return { kind: 'content-type-mismatch', contentType: stream.contentType };
    const now = Date.now();
    let producer: Producer | undefined;
    if (request.producer !== undefined) {
      for (const [id, state] of stream.producers) if (now - state.updated > PRODUCER_TTL_MS) stream.producers.delete(id);
      producer = stream.producers.get(request.producer.id);
      const verdict = judgeProducer(producer, request.producer);
      if (verdict.kind === 'duplicate') return { kind: 'duplicate', lastSeq: verdict.lastSeq, tail: stream.tail, generation, closed: false };
      if (verdict.kind !== 'accept') return verdict;
    }
    if (request.streamSeq !== undefined && stream.streamSeq !== undefined && request.streamSeq <= stream.streamSeq) {
      return { kind: 'seq-conflict', last: stream.streamSeq };
    }
    let size = stream.tail;
    for (const message of request.messages) size += message.length;
    if (size > this.#options.maxStreamBytes) return { kind: 'too-large', limit: this.#options.maxStreamBytes };
    if (this.#total + size - stream.tail > this.#options.maxTotalBytes) return { kind: 'full' };
    for (const message of request.messages) this.#push(stream, message);
    if (request.producer !== undefined) {
      stream.producers.set(request.producer.id, { epoch: request.producer.epoch, lastSeq: request.producer.seq, updated: now });
    }
    if (request.streamSeq !== undefined) stream.streamSeq = request.streamSeq;
    if (request.close) {
      stream.closed = true;
      stream.closedBy = request.producer;
    }
    stream.lastAccess = now;
    return { kind: 'appended', tail: stream.tail, generation, closed: stream.closed };
  }

  read(path: string, position: number, maxBytes: number, touch: boolean): Promise<ReadOutcome | undefined> {
    const stream = this.#live(path);
    if (stream === undefined) return Promise.resolve(undefined);
    if (touch) stream.lastAccess = Date.now();
    const chunks: StoredChunk[] = [];
    let bytes = 0;
    for (let i = firstAfter(stream.chunks, position); i < stream.chunks.length && bytes < maxBytes; i++) {
      const chunk = stream.chunks[i]!;
      chunks.push(chunk);
      bytes += chunk.end - Math.max(position, chunk.end - chunk.data.length);
    }
    return Promise.resolve({ info: infoOf(stream), chunks });
  }

  info(path: string): Promise<StreamInfo | undefined> {
    const stream = this.#live(path);
    return Promise.resolve(stream === undefined ? undefined : infoOf(stream));
  }

  delete(path: string): Promise<boolean> {
    const stream = this.#live(path);
    if (stream !== undefined) this.#drop(path, stream);
    return Promise.resolve(stream !== undefined);
  }

  close(): Promise<void> {
    clearInterval(this.#sweeper);
    this.#streams.clear();
    this.#total = 0;
    return Promise.resolve();
  }

  #push(stream: MemoryStream, data: Buffer): void {
    stream.tail += data.length;
    this.#total += data.length;
    stream.chunks.push({ end: stream.tail, data });
  }

  // The stream at `path` unless it expired (then it is dropped).
  #live(path: string): MemoryStream | undefined {
    const stream = this.#streams.get(path);
    if (stream === undefined) return undefined;
    if (Date.now() < expiresAtMs(stream.expiresAt, stream.ttlSeconds, stream.lastAccess)) return stream;
    this.#drop(path, stream);
    return undefined;
  }

  #drop(path: string, stream: MemoryStream): void {
    this.#streams.delete(path);
    this.#total -= stream.tail;
  }

  #sweep(): void {
    for (const path of this.#streams.keys()) this.#live(path);
  }
}
