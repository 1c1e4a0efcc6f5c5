// The Lua scripts that keep a channel's log in Redis, each one atomic and run in one round trip.
// KEYS are always the channel's meta hash, log Stream and publishes set (see keys.ts), which
// share a hash tag: one Cluster slot per channel.
import type { Cluster, Redis } from 'ioredis';
import type { StreamEntry } from './wire';

/**
 * How many of a channel's latest publishes are remembered, so that an append sent again (a
 * reply lost, then the command resent after a reconnect, by the Redis client or by a retry) is
 * recognised and not stored twice. A resend comes within seconds; this many publishes on one
 * channel in that time would be needed to miss it.
 */
export const PUBLISH_MEMORY = 1024;

// The append and the read start here: a log with no meta is from before (its data was lost or its
// keys expired); it starts again, empty, with the new epoch the caller passed — unless the caller
// may not create it (`create: false`: ARGV[mayCreate] is '0'), then the script returns `lost`.
const ENSURE_LOG = (epochArgument: number, mayCreate: number, lost: string): string => `
local created = 0
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  if ARGV[${mayCreate}] ~= '1' then
    ${lost}
  end
  epoch = ARGV[${epochArgument}]
  created = 1
  redis.call('DEL', KEYS[2], KEYS[3])
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'head', 0)
end`;

// Sets a key's expiry to ttl ms unless it is kept longer already: a run's log, kept long while it
// runs, is not cut short by a reader.
const EXTEND = `
local function extend(key, ttl)
  local left = redis.call('PTTL', key)
  if left >= 0 and left >= ttl then return end
  redis.call('PEXPIRE', key, ttl)
end`;

// KEYS: meta, log, publishes. ARGV: history, ttl ms (0: none), new epoch, Pub/Sub channel,
// sharded (1/0), format, text, kind, event ('' for none), has event (1/0), origin ('' for none),
// seal (1/0), publish id, may create (1/0).
// Returns { epoch, offset }: offset -1 when the log is sealed, -2 when it does not exist and may
// not be created (nothing appended or published then). An append whose publish id is among the
// latest returns the position it got the first time, and appends and publishes nothing.
// A log Stream whose newest id is past its head (someone else wrote into it) cannot take the
// next offset: it starts a new epoch, so clients get a reset rather than a broken channel.
export const APPEND_SCRIPT = `${ENSURE_LOG(3, 14, "return { '', -2 }")}
local seen = redis.call('ZSCORE', KEYS[3], ARGV[13])
if seen then
  return { epoch, tonumber(seen) }
end
if redis.call('HEXISTS', KEYS[1], 'sealed') == 1 then
  return { epoch, -1 }
end
local offset = redis.call('HINCRBY', KEYS[1], 'head', 1)
local fields = { 'v', ARGV[6], 't', ARGV[7], 'k', ARGV[8] }
if ARGV[10] == '1' then
  table.insert(fields, 'n'); table.insert(fields, ARGV[9])
end
if ARGV[11] ~= '' then
  table.insert(fields, 'r'); table.insert(fields, ARGV[11])
end
local added = redis.pcall('XADD', KEYS[2], 'MAXLEN', ARGV[1], tostring(offset) .. '-0', unpack(fields))
if type(added) == 'table' and added.err then
  epoch = ARGV[3]
  offset = 1
  redis.call('DEL', KEYS[2], KEYS[3])
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'head', 1)
  redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[1], '1-0', unpack(fields))
end
if ARGV[12] == '1' then
  redis.call('HSET', KEYS[1], 'sealed', 1)
end
redis.call('ZADD', KEYS[3], offset, ARGV[13])
redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -${PUBLISH_MEMORY + 1})
if tonumber(ARGV[2]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  redis.call('PEXPIRE', KEYS[3], ARGV[2])
end
local message = { v = ARGV[6], e = epoch, o = tostring(offset), t = ARGV[7], k = ARGV[8] }
if ARGV[10] == '1' then message.n = ARGV[9] end
if ARGV[11] ~= '' then message.r = ARGV[11] end
if ARGV[5] == '1' then
  redis.call('SPUBLISH', ARGV[4], cjson.encode(message))
else
  redis.call('PUBLISH', ARGV[4], cjson.encode(message))
end
return { epoch, offset }
`;

// Who published the log's event at an offset ('' when there is none, or no origin).
const ORIGIN_AT = `
local function originAt(offset)
  local found = redis.call('XRANGE', KEYS[2], tostring(offset) .. '-0', tostring(offset) .. '-0')
  if #found == 0 then return '' end
  local fields = found[1][2]
  for i = 1, #fields - 1, 2 do
    if fields[i] == 'r' then return fields[i + 1] end
  end
  return ''
end`;

// KEYS: meta, log, publishes. ARGV: new epoch, may create (1/0), ttl ms (0: none), mode ('head'
// | 'after'), then epoch and offset pairs of the client's positions. Returns epoch
// ('' for a missing log), head, matched index (0-based, -1), evicted (1/0), entries, the origin
// of the event at the matched position ('' for none), sealed (1/0), created (1/0).
export const READ_SCRIPT = `${ORIGIN_AT}
${EXTEND}
${ENSURE_LOG(1, 2, "return { '', 0, -1, 0, {}, '', 0, 0 }")}
if tonumber(ARGV[3]) > 0 then
  extend(KEYS[1], tonumber(ARGV[3]))
  extend(KEYS[2], tonumber(ARGV[3]))
  extend(KEYS[3], tonumber(ARGV[3]))
end
local sealed = redis.call('HEXISTS', KEYS[1], 'sealed')
local head = tonumber(redis.call('HGET', KEYS[1], 'head'))
if ARGV[4] == 'head' then
  return { epoch, head, -1, 0, {}, '', sealed, created }
end
local matched = -1
local offset = 0
for i = 5, #ARGV - 1, 2 do
  local o = tonumber(ARGV[i + 1])
  if ARGV[i] == epoch and o <= head then
    matched = (i - 5) / 2
    offset = o
    break
  end
end
if matched == -1 then
  return { epoch, head, -1, 0, redis.call('XRANGE', KEYS[2], '-', '+'), '', sealed, created }
end
local oldest = head - redis.call('XLEN', KEYS[2]) + 1
if offset < oldest - 1 then
  return { epoch, head, matched, 1, redis.call('XRANGE', KEYS[2], '-', '+'), '', sealed, created }
end
local origin = ''
if offset >= oldest then
  origin = originAt(offset)
end
return { epoch, head, matched, 0, redis.call('XRANGE', KEYS[2], '(' .. tostring(offset) .. '-0', '+'), origin, sealed, created }
`;

// KEYS: meta, log, publishes. ARGV: ttl ms (0: none). Keeps a subscribed channel's log alive
// and returns its epoch and head (nil when it does not exist).
export const HEAD_SCRIPT = `${EXTEND}
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  return false
end
if tonumber(ARGV[1]) > 0 then
  extend(KEYS[1], tonumber(ARGV[1]))
  extend(KEYS[2], tonumber(ARGV[1]))
  extend(KEYS[3], tonumber(ARGV[1]))
end
return { epoch, redis.call('HGET', KEYS[1], 'head') }
`;

// KEYS: meta, log, publishes. ARGV: epoch seen, new epoch, offset seen, origin seen ('' for
// unknown). A process saw that event in the log, which no longer holds it there: Redis came back
// from an older snapshot and would hand those offsets out again, with other events. The log
// starts a new epoch (unless another process renewed it already), so every position in the old
// one is unknown and clients get a reset instead of wrong events.
export const RENEW_SCRIPT = `${ORIGIN_AT}
if redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[1] then
  return 0
end
local rolled = tonumber(redis.call('HGET', KEYS[1], 'head')) < tonumber(ARGV[3])
if not rolled and ARGV[4] ~= '' then
  local origin = originAt(ARGV[3])
  rolled = origin ~= '' and origin ~= ARGV[4]
end
if not rolled then
  return 0
end
redis.call('DEL', KEYS[2], KEYS[3])
redis.call('HSET', KEYS[1], 'epoch', ARGV[2], 'head', 0)
return 1
`;

export type ReadReply = [epoch: string, head: number, matched: number, evicted: number, entries: StreamEntry[], origin: string, sealed: number, created: number];

/** The scripts, as commands of a connection. */
export interface Scripted {
  sseAppend(...args: (string | number)[]): Promise<[string, number]>;
  sseRead(...args: (string | number)[]): Promise<ReadReply>;
  sseHead(...args: (string | number)[]): Promise<[string, string] | null>;
  sseRenew(...args: (string | number)[]): Promise<number>;
}

export type ScriptedClient = (Redis | Cluster) & Scripted;

/** Defines the scripts on `client` (ioredis sends EVALSHA, and the script once when Redis lacks it). */
export function defineScripts(client: Redis | Cluster): ScriptedClient {
  client.defineCommand('sseAppend', { numberOfKeys: 3, lua: APPEND_SCRIPT });
  client.defineCommand('sseRead', { numberOfKeys: 3, lua: READ_SCRIPT });
  client.defineCommand('sseHead', { numberOfKeys: 3, lua: HEAD_SCRIPT });
  client.defineCommand('sseRenew', { numberOfKeys: 3, lua: RENEW_SCRIPT });
  return client as ScriptedClient;
}
