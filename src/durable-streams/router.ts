// The Durable Streams protocol over HTTP, as an Express router: PUT creates, POST appends (and
// closes), GET reads (catch-up, long-poll, SSE), HEAD tells, DELETE deletes. The stream is the
// path below the mount. Storage is a StreamStore (memory or Redis, picked from the adapter);
// live readers wait on Wakeups. Every answer carries the protocol's browser security headers.
import { randomUUID } from 'node:crypto';
import { Router, type Request, type Response } from 'express';
import { readBody } from './body';
import { responseCursor } from './cursor';
import {
  ALLOW_HEADERS, EXPOSE_HEADERS, PRODUCER_EPOCH, PRODUCER_EXPECTED_SEQ, PRODUCER_ID, PRODUCER_RECEIVED_SEQ, PRODUCER_SEQ, STREAM_CLOSED,
  STREAM_CURSOR, STREAM_EXPIRES_AT, STREAM_NEXT_OFFSET, STREAM_SEQ, STREAM_SSE_DATA_ENCODING, STREAM_TTL, STREAM_UP_TO_DATE,
} from './headers';
import { jsonArray, jsonMessages } from './json-mode';
import { formatOffset, parseRequestedOffset, type StreamOffset } from './offsets';
import type { DurableStreamsSettings } from './options';
import { pageOf, type Page, type PageMode } from './page';
import { readProducerHeaders } from './producers';
import { controlEvent, dataEvent, isTextual } from './sse-framing';
import type { AppendOutcome, ReadOutcome, StreamInfo, StreamStore } from './store';
import type { WakeSource } from './wakeups';

/** What the router is built from. */
export interface RouterParts {
  readonly store: StreamStore;
  /** Reads of live readers woken by a change: shared between the readers woken together (SharedReads). */
  readonly afterWake: StreamStore;
  readonly wakeups: WakeSource;
  readonly settings: DurableStreamsSettings;
  readonly onError: (error: Error) => void;
  /** Only GET and HEAD (runs): the rest get 405. */
  readonly readOnly?: boolean;
}

const TTL = /^(0|[1-9]\d{0,15})$/;
/** RFC 3339 date-time (Date.parse alone accepts far more). */
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;
const MEDIA_TYPE = /^[A-Za-z0-9][\w!#$&^.+-]*\/[A-Za-z0-9][\w!#$&^.+-]*$/;
/**
 * A page that is not the tail never changes. `private`: streams may be anyone's data and the
 * router does not know who may read them (authentication is the app's), so no shared cache.
 */
const CACHE_PAGE = 'private, max-age=60, stale-while-revalidate=300';

/** The media type of a Content-Type (lower case, no parameters); '' when it is not one. */
export function mediaTypeOf(contentType: string | undefined): string {
  const type = (contentType ?? '').split(';', 1)[0]!.trim().toLowerCase();
  return MEDIA_TYPE.test(type) ? type : '';
}

function header(req: Request, name: string): string | undefined {
  const value = req.headers[name.toLowerCase()];
  return Array.isArray(value) ? value.join(', ') : value;
}

function fail(res: Response, status: number, message: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  res.set(headers);
  res.status(status).type('text/plain; charset=utf-8').send(`express-sse-hub: ${message}\n`);
}

/** Checks a stream path (below the mount): `undefined` when fine, else why not. */
function pathProblem(path: string, max: number): string | undefined {
  if (path.length <= 1 || path === '/') return 'a stream URL needs a name below the mount';
  if (path.length > max) return `the stream URL must be at most ${max} characters, got ${path.length}`;
  // eslint-disable-next-line no-control-regex -- control characters are what is refused
  if (/[\x00-\x20\x7f]/.test(path)) return 'the stream URL must not contain spaces or control characters';
  for (const segment of path.split('/')) {
    if (segment === '.' || segment === '..' || /^%2e(%2e)?$/i.test(segment) || /^\.%2e$|^%2e\.$/i.test(segment)) return 'the stream URL must not contain "." or ".." segments';
  }
  return undefined;
}

function describeOffset(info: StreamInfo, position: number): string {
  return formatOffset({ generation: info.generation, position });
}

function sendAppendOutcome(res: Response, outcome: AppendOutcome, withProducer: boolean, closeOnly: boolean, epoch: number | undefined, seq: number | undefined): void {
  switch (outcome.kind) {
    case 'appended': {
      res.set(STREAM_NEXT_OFFSET, formatOffset({ generation: outcome.generation, position: outcome.tail }));
      if (outcome.closed) res.set(STREAM_CLOSED, 'true');
      if (withProducer) res.set({ [PRODUCER_EPOCH]: String(epoch), [PRODUCER_SEQ]: String(seq) });
      // 200 tells a producer its batch was new data; a close without body has none (204).
      res.status(withProducer && !closeOnly ? 200 : 204).end();
      return;
    }
    case 'duplicate': {
      res.set(STREAM_NEXT_OFFSET, formatOffset({ generation: outcome.generation, position: outcome.tail }));
      if (outcome.closed) res.set(STREAM_CLOSED, 'true');
      res.set({ [PRODUCER_EPOCH]: String(epoch), [PRODUCER_SEQ]: String(outcome.lastSeq) });
      res.status(204).end();
      return;
    }
    case 'closed': {
      const offset = { [STREAM_NEXT_OFFSET]: formatOffset({ generation: outcome.generation, position: outcome.tail }), [STREAM_CLOSED]: 'true' };
      if (outcome.conflict) fail(res, 409, 'the stream is closed: nothing more can be appended', offset);
      else res.set(offset).status(204).end();
      return;
    }
    case 'not-found':
      fail(res, 404, 'no such stream');
      return;
    case 'content-type-mismatch':
      fail(res, 409, `Content-Type must be the stream's, ${outcome.contentType}`);
      return;
    case 'seq-conflict':
      fail(res, 409, `Stream-Seq must sort after the last one accepted, ${JSON.stringify(outcome.last)}`);
      return;
    case 'stale-epoch':
      fail(res, 403, `Producer-Epoch is stale: the producer is at epoch ${outcome.currentEpoch}`, { [PRODUCER_EPOCH]: String(outcome.currentEpoch) });
      return;
    case 'epoch-needs-seq-0':
      fail(res, 400, 'a new Producer-Epoch must start at Producer-Seq 0');
      return;
    case 'gap':
      fail(res, 409, `Producer-Seq must be ${outcome.expected}, got ${outcome.received}`, {
        [PRODUCER_EXPECTED_SEQ]: String(outcome.expected),
        [PRODUCER_RECEIVED_SEQ]: String(outcome.received),
      });
      return;
    case 'too-large':
      fail(res, 413, `the stream would exceed its limit of ${outcome.limit} bytes`);
      return;
    case 'full':
      fail(res, 507, 'this server holds as much stream data as it may (maxStreams, maxTotalBytes)');
      return;
  }
}

/** The Express router serving the protocol; see `durableStreams()`. */
export function createRouter(parts: RouterParts): Router {
  const { store, afterWake, wakeups, settings, onError } = parts;
  const router = Router();
  // SSE readers woken together share one read (afterWake), and so the data event made of it:
  // formatted once per read and position, not once per reader.
  const frames = new WeakMap<ReadOutcome, Map<number, { readonly page: Page; readonly text: string }>>();

  const notify = (path: string): void => {
    wakeups.notify(path).catch((error: unknown) => onError(new Error(`express-sse-hub: could not wake the readers of ${path}: ${(error as Error).message}`)));
  };

  async function create(req: Request, res: Response, path: string): Promise<void> {
    const contentType = mediaTypeOf(header(req, 'content-type')) === '' ? 'application/octet-stream' : header(req, 'content-type')!.trim();
    const mediaType = mediaTypeOf(contentType);
    const ttl = header(req, STREAM_TTL);
    const expiresAt = header(req, STREAM_EXPIRES_AT);
    if (ttl !== undefined && expiresAt !== undefined) return fail(res, 400, 'send Stream-TTL or Stream-Expires-At, not both');
    if (ttl !== undefined && !TTL.test(ttl)) return fail(res, 400, `Stream-TTL must be a whole number of seconds without sign or leading zeros, got ${JSON.stringify(ttl.slice(0, 40))}`);
    if (expiresAt !== undefined && !(RFC3339.test(expiresAt) && Number.isFinite(Date.parse(expiresAt)))) {
      return fail(res, 400, `Stream-Expires-At must be an RFC 3339 time, got ${JSON.stringify(expiresAt.slice(0, 40))}`);
    }
    const read = await readBody(req, settings.maxBodyBytes);
    if ('tooLarge' in read) return fail(res, 413, `the body must be at most ${settings.maxBodyBytes} bytes`);
    if ('consumed' in read) return fail(res, 500, 'the request body was read before durableStreams() saw it: mount the router before body parsers (express.json(), …)');
    if ('aborted' in read) return;
    let messages: Buffer[] = read.body.length > 0 ? [read.body] : [];
    if (mediaType === 'application/json' && read.body.length > 0) {
      const parsed = jsonMessages(read.body, true);
      if ('error' in parsed) return fail(res, 400, parsed.error);
      messages = parsed.messages;
    }
    const closed = header(req, STREAM_CLOSED) === 'true';
    const ttlSeconds = ttl === undefined ? undefined : Number(ttl);
    const outcome = await store.create(path, { contentType, mediaType, ttlSeconds, expiresAt, closed, messages });
    if (outcome.kind === 'too-large') return fail(res, 413, `the stream would exceed its limit of ${settings.maxStreamBytes} bytes`);
    if (outcome.kind === 'full') return fail(res, 507, 'this server holds as much stream data as it may (maxStreams, maxTotalBytes)');
    const { info } = outcome;
    if (outcome.kind === 'exists') {
      const same = mediaTypeOf(info.contentType) === mediaType && info.ttlSeconds === ttlSeconds && info.expiresAt === expiresAt && info.closed === closed;
      if (!same) return fail(res, 409, 'a stream exists at this URL with another configuration (Content-Type, Stream-TTL, Stream-Expires-At or Stream-Closed)');
    }
    res.setHeader('Content-Type', info.contentType);
    res.set({ [STREAM_NEXT_OFFSET]: describeOffset(info, info.tail) });
    if (info.closed) res.set(STREAM_CLOSED, 'true');
    if (outcome.kind === 'created') res.set('Location', `${req.protocol}://${req.get('host') ?? 'localhost'}${req.baseUrl}${path}`);
    res.status(outcome.kind === 'created' ? 201 : 200).end();
  }

  async function append(req: Request, res: Response, path: string): Promise<void> {
    const producer = readProducerHeaders(header(req, PRODUCER_ID), header(req, PRODUCER_EPOCH), header(req, PRODUCER_SEQ));
    if ('error' in producer) return fail(res, 400, producer.error);
    const streamSeq = header(req, STREAM_SEQ);
    if (streamSeq !== undefined && (streamSeq === '' || streamSeq.length > 256)) return fail(res, 400, `Stream-Seq must be 1 to 256 characters, got ${streamSeq.length}`);
    const read = await readBody(req, settings.maxBodyBytes);
    if ('tooLarge' in read) return fail(res, 413, `the body must be at most ${settings.maxBodyBytes} bytes`);
    if ('consumed' in read) return fail(res, 500, 'the request body was read before durableStreams() saw it: mount the router before body parsers (express.json(), …)');
    if ('aborted' in read) return;
    const close = header(req, STREAM_CLOSED) === 'true';
    let messages: Buffer[] = [];
    let mediaType = '';
    if (read.body.length === 0) {
      if (!close) return fail(res, 400, 'an append needs a body (or Stream-Closed: true to close the stream)');
    } else {
      const contentType = header(req, 'content-type');
      mediaType = mediaTypeOf(contentType);
      if (mediaType === '') return fail(res, 400, `an append needs a Content-Type (the stream's), got ${JSON.stringify(contentType ?? '')}`);
      messages = [read.body];
      if (mediaType === 'application/json') {
        // Only a JSON stream splits JSON; the store refuses a mismatched type before that matters.
        const info = await store.info(path);
        if (info !== undefined && mediaTypeOf(info.contentType) === 'application/json') {
          const parsed = jsonMessages(read.body, false);
          if ('error' in parsed) return fail(res, 400, parsed.error);
          messages = parsed.messages;
        }
      }
    }
    const claim = producer.claim;
    const outcome = await store.append(path, { messages, mediaType, close, streamSeq, producer: claim, token: randomUUID() });
    sendAppendOutcome(res, outcome, claim !== undefined, messages.length === 0, claim?.epoch, claim?.seq);
    if (outcome.kind === 'appended') notify(path);
  }

  async function head(res: Response, path: string): Promise<void> {
    const info = await store.info(path);
    if (info === undefined) return fail(res, 404, 'no such stream');
    const tail = describeOffset(info, info.tail);
    res.setHeader('Content-Type', info.contentType);
    res.set({ [STREAM_NEXT_OFFSET]: tail, 'Cache-Control': 'no-store' });
    res.set('ETag', `"${Buffer.from(path).toString('base64url')}:-1:${tail}${info.closed ? ':c' : ''}"`);
    if (info.closed) res.set(STREAM_CLOSED, 'true');
    if (info.ttlSeconds !== undefined) res.set(STREAM_TTL, String(info.ttlSeconds));
    if (info.expiresAt !== undefined) res.set(STREAM_EXPIRES_AT, info.expiresAt);
    res.status(200).end();
  }

  async function remove(res: Response, path: string): Promise<void> {
    if (!(await store.delete(path))) return fail(res, 404, 'no such stream');
    notify(path);
    res.status(204).end();
  }

  // The position a read starts at, or an answer already sent.
  function startOf(res: Response, info: StreamInfo, requested: StreamOffset | 'start' | 'now'): number | undefined {
    if (requested === 'start') return 0;
    if (requested === 'now') return info.tail;
    if (requested.generation < info.generation) {
      fail(res, 410, 'the offset belongs to a stream that was deleted from this URL; read from -1');
      return undefined;
    }
    if (requested.generation > info.generation || requested.position > info.tail) {
      fail(res, 400, 'the offset is not one of this stream\'s');
      return undefined;
    }
    return requested.position;
  }

  function modeOf(info: StreamInfo): PageMode {
    return mediaTypeOf(info.contentType) === 'application/json' ? 'json' : 'bytes';
  }

  function bodyOf(page: Page, mode: PageMode): Buffer | string {
    return mode === 'json' ? jsonArray(page.pieces) : Buffer.concat(page.pieces, page.bytes);
  }

  // A 200 with a page (catch-up or long-poll).
  function sendPage(req: Request, res: Response, path: string, outcome: ReadOutcome, from: number, startToken: string, cursor: string | undefined): void {
    const { info } = outcome;
    const mode = modeOf(info);
    const page = pageOf(outcome.chunks, from, settings.maxReadBytes, mode);
    const upToDate = page.next >= info.tail;
    const closedHere = info.closed && upToDate;
    const next = describeOffset(info, page.next);
    const etag = `"${Buffer.from(path).toString('base64url')}:${startToken}:${next}${closedHere ? ':c' : ''}"`;
    res.setHeader('Content-Type', info.contentType);
    res.set({ [STREAM_NEXT_OFFSET]: next, ETag: etag, 'Cache-Control': upToDate ? 'no-cache' : CACHE_PAGE });
    if (upToDate) res.set(STREAM_UP_TO_DATE, 'true');
    if (closedHere) res.set(STREAM_CLOSED, 'true');
    if (cursor !== undefined) res.set(STREAM_CURSOR, cursor);
    if (header(req, 'if-none-match') === etag) {
      res.status(304).end();
      return;
    }
    res.status(200).end(bodyOf(page, mode));
  }

  async function get(req: Request, res: Response, path: string): Promise<void> {
    const query = new URL(req.originalUrl, 'http://localhost').searchParams;
    const offsets = query.getAll('offset');
    if (offsets.length > 1) return fail(res, 400, 'send one offset parameter, got ' + offsets.length);
    const offsetText = offsets[0];
    if (offsetText === '') return fail(res, 400, 'offset must not be empty (use -1 for the start)');
    const requested = parseRequestedOffset(offsetText);
    if (requested === undefined) return fail(res, 400, `offset must be -1, now or an offset this server sent, got ${JSON.stringify(offsetText!.slice(0, 80))}`);
    const live = query.get('live');
    if (live !== null && live !== 'long-poll' && live !== 'sse') return fail(res, 400, `live must be long-poll or sse, got ${JSON.stringify(live.slice(0, 40))}`);
    if (live !== null && offsetText === undefined) return fail(res, 400, `live=${live} needs an offset (-1 for the start, now for the tail)`);
    const clientCursor = query.get('cursor') ?? undefined;
    const start = requested.kind === 'at' ? requested.offset : requested.kind;
    const startToken = offsetText ?? '-1';

    if (live === 'sse') return sse(req, res, path, start, clientCursor);

    // `now` without live: the tail, and nothing else (section 6).
    const first = await store.read(path, start === 'start' ? 0 : start === 'now' ? Number.MAX_SAFE_INTEGER : start.position, settings.maxReadBytes, true);
    if (first === undefined) return fail(res, 404, 'no such stream');
    const from = startOf(res, first.info, start);
    if (from === undefined) return;
    if (start === 'now' && live === null) {
      const { info } = first;
      res.setHeader('Content-Type', info.contentType);
    res.set({ [STREAM_NEXT_OFFSET]: describeOffset(info, info.tail), [STREAM_UP_TO_DATE]: 'true', 'Cache-Control': 'no-store' });
      if (info.closed) res.set(STREAM_CLOSED, 'true');
      res.status(200).end(modeOf(info) === 'json' ? '[]' : '');
      return;
    }
    if (live === null) return sendPage(req, res, path, first, from, startToken, undefined);

    // Long-poll: answer at once when there is data; wait at the tail (section 5.6).
    const hasData = (outcome: ReadOutcome, position: number): boolean => outcome.chunks.some((chunk) => chunk.end > position);
    if (start !== 'now' && hasData(first, from)) return sendPage(req, res, path, first, from, startToken, responseCursor(clientCursor));
    const aborted = new AbortController();
    res.on('close', () => aborted.abort());
    const watch = await wakeups.watch(path, aborted.signal);
    try {
      const deadline = performance.now() + settings.longPollTimeout;
      let outcome: ReadOutcome | undefined = await store.read(path, from, settings.maxReadBytes, true);
      for (;;) {
        if (outcome === undefined) return fail(res, 404, 'no such stream (it was deleted)');
        if (outcome.info.generation !== first.info.generation) return fail(res, 410, 'the stream was deleted and created again; read from -1');
        if (hasData(outcome, from)) return sendPage(req, res, path, outcome, from, startToken, responseCursor(clientCursor));
        const left = deadline - performance.now();
        if (outcome.info.closed || left <= 0) {
          const { info } = outcome;
          res.set({ [STREAM_NEXT_OFFSET]: describeOffset(info, from), [STREAM_UP_TO_DATE]: 'true', [STREAM_CURSOR]: responseCursor(clientCursor), 'Cache-Control': 'no-store' });
          if (info.closed) res.set(STREAM_CLOSED, 'true');
          res.status(204).end();
          return;
        }
        const woken = await watch.next(Math.max(1, Math.min(left, settings.recheckInterval)));
        if (aborted.signal.aborted) return;
        outcome = await (woken ? afterWake : store).read(path, from, settings.maxReadBytes, true);
      }
    } finally {
      watch.release();
    }
  }

  async function sse(req: Request, res: Response, path: string, start: StreamOffset | 'start' | 'now', clientCursor: string | undefined): Promise<void> {
    const aborted = new AbortController();
    res.on('close', () => aborted.abort());
    // Watch before the first read: nothing appended after it goes unnoticed.
    const watch = await wakeups.watch(path, aborted.signal);
    try {
      let outcome = await store.read(path, start === 'start' ? 0 : start === 'now' ? Number.MAX_SAFE_INTEGER : start.position, settings.maxReadBytes, true);
      if (outcome === undefined) return fail(res, 404, 'no such stream');
      const { generation, contentType } = outcome.info;
      const from = startOf(res, outcome.info, start);
      if (from === undefined) return;
      let position: number = from;
      if (start === 'now') outcome = { info: outcome.info, chunks: [] };
      const mediaType = mediaTypeOf(contentType);
      const base64 = !isTextual(mediaType);
      const mode: PageMode = mediaType === 'application/json' ? 'json' : base64 ? 'bytes' : 'text';
      res.setHeader('Content-Type', 'text/event-stream');
      res.status(200).set({ 'Cache-Control': 'no-cache', 'X-Accel-Buffering': 'no' });
      if (base64) res.set(STREAM_SSE_DATA_ENCODING, 'base64');
      res.flushHeaders();
      const write = async (text: string): Promise<void> => {
        if (res.write(text) || aborted.signal.aborted) return;
        await new Promise<void>((resolve) => {
          const done = (): void => {
            res.off('drain', done);
            aborted.signal.removeEventListener('abort', done);
            resolve();
          };
          res.on('drain', done);
          aborted.signal.addEventListener('abort', done, { once: true });
        });
      };
      const deadline = performance.now() + settings.sseMaxDuration;
      let lastWrite = performance.now();
      let first = true;
      while (!aborted.signal.aborted) {
        if (outcome === undefined || outcome.info.generation !== generation) break;
        const { info } = outcome;
        let byPosition = frames.get(outcome);
        let frame: { readonly page: Page; readonly text: string } | undefined = byPosition?.get(position);
        if (frame === undefined) {
          const page = pageOf(outcome.chunks, position, settings.maxReadBytes, mode);
          let text = '';
          if (page.bytes > 0) {
            const bytes = (): Buffer => Buffer.concat(page.pieces, page.bytes);
            text = dataEvent(mode === 'json' ? jsonArray(page.pieces) : base64 ? bytes().toString('base64') : bytes().toString('utf8'));
          }
          frame = { page, text };
          if (byPosition === undefined) frames.set(outcome, (byPosition = new Map<number, { readonly page: Page; readonly text: string }>()));
          byPosition.set(position, frame);
        }
        const { page } = frame;
        const upToDate = page.next >= info.tail;
        const offset = describeOffset(info, page.next);
        // A data event and its control event leave in one write.
        let out = frame.text;
        position = page.next;
        if (info.closed && upToDate) {
          await write(out + controlEvent({ streamNextOffset: offset, streamClosed: true }));
          break;
        }
        if (page.bytes > 0 || first) {
          out += controlEvent({ streamNextOffset: offset, streamCursor: responseCursor(clientCursor), ...(upToDate ? { upToDate: true as const } : {}) });
          lastWrite = performance.now();
        }
        if (out !== '') await write(out);
        first = false;
        if (!upToDate) {
          outcome = await store.read(path, position, settings.maxReadBytes, true);
          continue;
        }
        const now = performance.now();
        if (now >= deadline) break;
        if (now - lastWrite >= settings.sseKeepAlive) {
          await write(controlEvent({ streamNextOffset: offset, streamCursor: responseCursor(clientCursor), upToDate: true }));
          lastWrite = now;
        }
        const wait = Math.max(1, Math.min(deadline - now, settings.recheckInterval, settings.sseKeepAlive - (now - lastWrite)));
        const woken = await watch.next(wait);
        if (aborted.signal.aborted) break;
        outcome = await (woken ? afterWake : store).read(path, position, settings.maxReadBytes, true);
      }
      res.end();
    } finally {
      watch.release();
    }
  }

  router.use((req, res) => {
    res.set({ 'X-Content-Type-Options': 'nosniff', 'Cross-Origin-Resource-Policy': 'cross-origin' });
    if (settings.allowOrigin !== false) {
      res.set({ 'Access-Control-Allow-Origin': settings.allowOrigin, 'Access-Control-Expose-Headers': EXPOSE_HEADERS });
    }
    if (req.method === 'OPTIONS') {
      res.set({ 'Access-Control-Allow-Methods': 'GET, HEAD, PUT, POST, DELETE, OPTIONS', 'Access-Control-Allow-Headers': ALLOW_HEADERS, 'Access-Control-Max-Age': '600' });
      res.status(204).end();
      return;
    }
    const path = req.path;
    if (parts.readOnly === true && req.method !== 'GET' && req.method !== 'HEAD') return fail(res, 405, 'these streams are read-only', { Allow: 'GET, HEAD, OPTIONS' });
    const problem = pathProblem(path, settings.maxPathLength);
    if (problem !== undefined) return fail(res, 400, problem);
    let handled: Promise<void>;
    switch (req.method) {
      case 'PUT':
        handled = create(req, res, path);
        break;
      case 'POST':
        handled = append(req, res, path);
        break;
      case 'GET':
        handled = get(req, res, path);
        break;
      case 'HEAD':
        handled = head(res, path);
        break;
      case 'DELETE':
        handled = remove(res, path);
        break;
      default:
        return fail(res, 405, `${req.method} is not a Durable Streams method`, { Allow: 'GET, HEAD, PUT, POST, DELETE, OPTIONS' });
    }
    handled.catch((error: unknown) => {
      onError(error instanceof Error ? error : new Error(String(error)));
      fail(res, 503, `the stream store failed: ${(error as Error).message}`);
    });
  });
  return router;
}
