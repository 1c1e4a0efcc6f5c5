// Streams in Redis (standalone or Cluster), through the RedisAdapter's own commands connection.
//
// Each stream is a few keys sharing the hash tag `{<prefix>:<path>}`, so on a Cluster a stream
// lives in one slot and every script below runs on one master:
// - `…:m` a hash: content type, TTL, expiry, generation, tail, closed, who closed it, Stream-Seq;
// - `…:d` a sorted set of the stored messages, scored by the position they end at, each member
//   that position (16 digits, keeping members unique) followed by the bytes;
// - `…:p` a hash of producer states (`epoch:lastSeq:updatedMs`);
// - `…:g` after a delete, the deleted stream's generation (kept a week): the next stream at the
//   URL gets a larger one, so old offsets never name its bytes;
// - `…:a:<token>` the outcome of one append for a minute: ioredis resends a command whose reply
//   was lost once it reconnects, and the script must not append twice then.
// Each operation is one Lua script, so an append, its Stream-Seq and producer checks, the
// producer's new state and a close commit together or not at all. Expiry is Redis's own: a
// sliding TTL is a PEXPIRE on every read and write, Stream-Expires-At a PEXPIREAT.
import type { Cluster, Redis } from 'ioredis';
import type { Adapter } from '../adapters/adapter';
import type { AppendOutcome, AppendRequest, CreateOutcome, CreateRequest, ReadOutcome, StoredChunk, StreamInfo, StreamStore } from './store';

/** Milliseconds the outcome of an append is kept for a resent command. */
const RESEND_WINDOW_MS = 60_000;
/** Milliseconds a deleted stream's generation is kept (the clock alone orders later ones). */
const TOMBSTONE_MS = 7 * 24 * 3600 * 1000;
const PRODUCER_TTL_MS = 7 * 24 * 3600 * 1000;
/** Messages a read script fetches per step while it fills a page. */
const READ_STEP = 256;

// Shared by every script: numbers as text without exponent, and a stream's expiry applied to
// its keys (KEYS[1..3]) after a read or write.
const COMMON = `
local function num(x) return string.format('%.0f', x) end
local function expire(meta)
  local ttl = redis.call('HGET', KEYS[1], 'ttl')
  local at = redis.call('HGET', KEYS[1], 'expms')
  for i = 1, 3 do
    if ttl and ttl ~= '' then
      redis.call('PEXPIRE', KEYS[i], tonumber(ttl) * 1000)
    elseif at and at ~= '' then
      redis.call('PEXPIREAT', KEYS[i], at)
    end
  end
end
local function info()
  local m = redis.call('HMGET', KEYS[1], 'ct', 'ttl', 'exp', 'gen', 'tail', 'closed')
  return { m[1], m[2] or '', m[3] or '', m[4], m[5], m[6] }
end`;

// KEYS: meta, data, producers, tombstone. ARGV: content type, ttl seconds (''), expires-at
// (''), expires-at ms (''), closed (0/1), max bytes, then the messages.
// Returns { 'created' | 'exists' | 'too-large', ...info }.
const CREATE_SCRIPT = `${COMMON}
if redis.call('EXISTS', KEYS[1]) == 1 then
  local i = info()
  return { 'exists', i[1], i[2], i[3], i[4], i[5], i[6] }
end
local size = 0
for i = 7, #ARGV do size = size + #ARGV[i] end
if size > tonumber(ARGV[6]) then return { 'too-large' } end
local t = redis.call('TIME')
local gen = tonumber(t[1]) * 1000000 + tonumber(t[2])
local last = redis.call('GET', KEYS[4])
if last and tonumber(last) >= gen then gen = tonumber(last) + 1 end
redis.call('DEL', KEYS[2], KEYS[3])
local tail = 0
for i = 7, #ARGV do
  tail = tail + #ARGV[i]
  redis.call('ZADD', KEYS[2], tail, string.format('%016.0f', tail) .. ARGV[i])
end
redis.call('HSET', KEYS[1], 'ct', ARGV[1], 'ttl', ARGV[2], 'exp', ARGV[3], 'expms', ARGV[4], 'gen', num(gen), 'tail', num(tail), 'closed', ARGV[5])
expire()
local i = info()
return { 'created', i[1], i[2], i[3], i[4], i[5], i[6] }
`;

// KEYS: meta, data, producers, resend key. ARGV: media type ('' for a close without body),
// close (0/1), Stream-Seq ('' for none), producer id ('' for none), epoch, seq, max bytes,
// now ms, resend window ms, then the messages. Returns the outcome as a list of strings, its
// kind first (see AppendOutcome); 'again' and the first outcome's JSON for a resent command.
const APPEND_SCRIPT = `${COMMON}
local again = redis.call('GET', KEYS[4])
if again then return { 'again', again } end
local function finish(reply)
  redis.call('SET', KEYS[4], cjson.encode(reply), 'PX', ARGV[9])
  return reply
end
if redis.call('EXISTS', KEYS[1]) == 0 then return finish({ 'not-found' }) end
local m = redis.call('HMGET', KEYS[1], 'ct', 'gen', 'tail', 'closed', 'cb', 'sseq')
local gen, tail = m[2], m[3]
local claim = ''
if ARGV[4] ~= '' then claim = ARGV[4] .. '\\0' .. ARGV[5] .. '\\0' .. ARGV[6] end
local messages = #ARGV - 9
if m[4] == '1' then
  if claim ~= '' and m[5] == claim then return finish({ 'duplicate', ARGV[6], tail, gen, '1' }) end
  if messages == 0 and claim == '' then
    expire()
    return finish({ 'closed', tail, gen, '0' })
  end
  return finish({ 'closed', tail, gen, '1' })
end
if messages > 0 then
  local media = string.lower(string.match(m[1], '^[^;]*'))
  media = string.gsub(media, '^%s+', '')
  media = string.gsub(media, '%s+$', '')
  if media ~= ARGV[1] then return finish({ 'content-type-mismatch', m[1] }) end
end
local now = tonumber(ARGV[8])
if claim ~= '' then
  local epoch, seq = tonumber(ARGV[5]), tonumber(ARGV[6])
  local state = redis.call('HGET', KEYS[3], ARGV[4])
  local se, ss
  if state then
    local a, b, c = string.match(state, '^(%d+):(%d+):(%d+)$')
    if now - tonumber(c) <= ${PRODUCER_TTL_MS} then se, ss = tonumber(a), tonumber(b) end
  end
  if not se then
    if seq ~= 0 then return finish({ 'gap', '0', ARGV[6] }) end
  elseif epoch < se then
    return finish({ 'stale-epoch', num(se) })
  elseif epoch > se then
    if seq ~= 0 then return finish({ 'epoch-needs-seq-0' }) end
  elseif seq <= ss then
    return finish({ 'duplicate', num(ss), tail, gen, '0' })
  elseif seq ~= ss + 1 then
    return finish({ 'gap', num(ss + 1), ARGV[6] })
  end
end
if ARGV[3] ~= '' and m[6] and m[6] ~= '' and ARGV[3] <= m[6] then return finish({ 'seq-conflict', m[6] }) end
local size = tonumber(tail)
for i = 10, #ARGV do size = size + #ARGV[i] end
if size > tonumber(ARGV[7]) then return finish({ 'too-large', ARGV[7] }) end
local position = tonumber(tail)
for i = 10, #ARGV do
  position = position + #ARGV[i]
  redis.call('ZADD', KEYS[2], position, string.format('%016.0f', position) .. ARGV[i])
end
tail = num(position)
redis.call('HSET', KEYS[1], 'tail', tail)
if claim ~= '' then redis.call('HSET', KEYS[3], ARGV[4], ARGV[5] .. ':' .. ARGV[6] .. ':' .. ARGV[8]) end
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'sseq', ARGV[3]) end
local closed = '0'
if ARGV[2] == '1' then
  closed = '1'
  redis.call('HSET', KEYS[1], 'closed', '1', 'cb', claim)
end
expire()
return finish({ 'appended', tail, gen, closed })
`;

// KEYS: meta, data, producers. ARGV: position, max bytes, touch (0/1). Returns {} for no
// stream, else the info and the members of the messages ending after the position.
const READ_SCRIPT = `${COMMON}
if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
if ARGV[3] == '1' then expire() end
local reply = info()
local position = tonumber(ARGV[1])
local budget = tonumber(ARGV[2])
local bytes = 0
local skip = 0
while bytes < budget do
  local items = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. ARGV[1], '+inf', 'LIMIT', skip, ${READ_STEP})
  if #items == 0 then break end
  for _, item in ipairs(items) do
    if bytes >= budget then break end
    local finish = tonumber(string.sub(item, 1, 16))
    local length = #item - 16
    local start = finish - length
    if start < position then start = position end
    bytes = bytes + finish - start
    table.insert(reply, item)
  end
  if #items < ${READ_STEP} then break end
  skip = skip + #items
end
return reply
`;

// KEYS: meta, data, producers, tombstone. ARGV: tombstone ms. Returns 1 when deleted.
const DELETE_SCRIPT = `
local gen = redis.call('HGET', KEYS[1], 'gen')
if not gen then return 0 end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
redis.call('SET', KEYS[4], gen, 'PX', ARGV[1])
return 1
`;

type Reply = (string | Buffer)[];

interface Scripted {
  dsCreate(...args: (string | Buffer)[]): Promise<string[]>;
  dsAppend(...args: (string | Buffer)[]): Promise<string[]>;
  dsReadBuffer(...args: (string | Buffer)[]): Promise<Buffer[]>;
  dsDelete(...args: (string | Buffer)[]): Promise<number>;
}

type Client = (Redis | Cluster) & Scripted;

/** The Redis client behind a RedisAdapter (its `client` accessor); `undefined` for other adapters. */
export function redisClientOf(adapter: Adapter): Redis | Cluster | undefined {
  const client = (adapter as { client?: unknown }).client;
  if (client === undefined || client === null || typeof (client as { defineCommand?: unknown }).defineCommand !== 'function') return undefined;
  return client as Redis | Cluster;
}

export interface RedisStreamStoreOptions {
  readonly prefix: string;
  readonly maxStreamBytes: number;
}

function text(value: string | Buffer | undefined): string {
  return value === undefined ? '' : value.toString();
}

function infoOf(reply: Reply, at: number): StreamInfo {
  const ttl = text(reply[at + 1]);
  const expiresAt = text(reply[at + 2]);
  return {
    contentType: text(reply[at]),
    ttlSeconds: ttl === '' ? undefined : Number(ttl),
    expiresAt: expiresAt === '' ? undefined : expiresAt,
    generation: Number(text(reply[at + 3])),
    tail: Number(text(reply[at + 4])),
    closed: text(reply[at + 5]) === '1',
  };
}

function appendOutcomeOf(reply: readonly string[]): AppendOutcome {
  const [kind, a = '', b = '', c = '', d = ''] = reply;
  switch (kind) {
    case 'appended':
      return { kind, tail: Number(a), generation: Number(b), closed: c === '1' };
    case 'duplicate':
      return { kind, lastSeq: Number(a), tail: Number(b), generation: Number(c), closed: d === '1' };
    case 'closed':
      return { kind, tail: Number(a), generation: Number(b), conflict: c === '1' };
    case 'not-found':
    case 'epoch-needs-seq-0':
      return { kind };
    case 'content-type-mismatch':
      return { kind, contentType: a };
    case 'seq-conflict':
      return { kind, last: a };
    case 'stale-epoch':
      return { kind, currentEpoch: Number(a) };
    case 'gap':
      return { kind, expected: Number(a), received: Number(b) };
    case 'too-large':
      return { kind, limit: Number(a) };
    case 'again':
      return appendOutcomeOf(JSON.parse(a) as string[]);
    default:
      throw new Error(`express-sse-hub: the append script answered ${JSON.stringify(kind)}, which this version does not know`);
  }
}

export class RedisStreamStore implements StreamStore {
  readonly #client: Client;
  readonly #prefix: string;
  readonly #maxStreamBytes: number;

  constructor(client: Redis | Cluster, options: RedisStreamStoreOptions) {
    this.#client = client as Client;
    this.#prefix = options.prefix;
    this.#maxStreamBytes = options.maxStreamBytes;
    // defineCommand is idempotent per name; every router on the connection defines the same.
    this.#client.defineCommand('dsCreate', { numberOfKeys: 4, lua: CREATE_SCRIPT });
    this.#client.defineCommand('dsAppend', { numberOfKeys: 4, lua: APPEND_SCRIPT });
    this.#client.defineCommand('dsRead', { numberOfKeys: 3, lua: READ_SCRIPT });
    this.#client.defineCommand('dsDelete', { numberOfKeys: 4, lua: DELETE_SCRIPT });
  }

  #tag(path: string): string {
    return `{${this.#prefix}:${path}}`;
  }

  #keys(path: string): [meta: string, data: string, producers: string] {
    const tag = this.#tag(path);
    return [`${tag}:m`, `${tag}:d`, `${tag}:p`];
  }

  async create(path: string, request: CreateRequest): Promise<CreateOutcome> {
    const expiresMs = request.expiresAt === undefined ? '' : String(Date.parse(request.expiresAt));
    const reply = await this.#client.dsCreate(
      ...this.#keys(path),
      `${this.#tag(path)}:g`,
      request.contentType,
      request.ttlSeconds === undefined ? '' : String(request.ttlSeconds),
      request.expiresAt ?? '',
      expiresMs,
      request.closed ? '1' : '0',
      String(this.#maxStreamBytes),
      ...request.messages,
    );
    if (reply[0] === 'too-large') return { kind: 'too-large' };
    return { kind: reply[0] === 'created' ? 'created' : 'exists', info: infoOf(reply, 1) };
  }

  async append(path: string, request: AppendRequest): Promise<AppendOutcome> {
    const producer = request.producer;
    const reply = await this.#client.dsAppend(
      ...this.#keys(path),
      `${this.#tag(path)}:a:${request.token}`,
      request.mediaType,
      request.close ? '1' : '0',
      request.streamSeq ?? '',
      producer?.id ?? '',
      producer === undefined ? '0' : String(producer.epoch),
      producer === undefined ? '0' : String(producer.seq),
      String(this.#maxStreamBytes),
      String(Date.now()),
      String(RESEND_WINDOW_MS),
      ...request.messages,
    );
    return appendOutcomeOf(reply);
  }

  async read(path: string, position: number, maxBytes: number, touch: boolean): Promise<ReadOutcome | undefined> {
    const reply = await this.#client.dsReadBuffer(...this.#keys(path), String(position), String(maxBytes), touch ? '1' : '0');
    if (reply.length === 0) return undefined;
    const chunks: StoredChunk[] = [];
    for (let i = 6; i < reply.length; i++) {
      const member = reply[i]!;
      chunks.push({ end: Number(member.subarray(0, 16).toString()), data: member.subarray(16) });
    }
    return { info: infoOf(reply, 0), chunks };
  }

  async info(path: string): Promise<StreamInfo | undefined> {
    return (await this.read(path, Number.MAX_SAFE_INTEGER, 1, false))?.info;
  }

  async delete(path: string): Promise<boolean> {
    return (await this.#client.dsDelete(...this.#keys(path), `${this.#tag(path)}:g`, String(TOMBSTONE_MS))) === 1;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
