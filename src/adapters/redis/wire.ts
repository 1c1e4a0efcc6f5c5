// What this adapter writes to Redis and reads back: Pub/Sub messages (JSON) and log entries
// (Stream fields). Anything can arrive there: another version, another service, redis-cli,
// garbage. Every field is checked where it enters; what does not fit is skipped with a reason,
// never thrown (a throw inside the Redis client's message handler would crash the process).
import type { DataKind, LogEntry, PublishedEvent } from '../../log/entry';
import { isEpoch } from '../../log/position';
import { isEventId, isEventName } from '../../stream/serializer';

/** Version of the messages and log entries written here; readers skip other versions. */
export const FORMAT = '1';

/** Longest origin a message may carry (ours are about 50 characters). */
const MAX_ORIGIN = 256;
const OFFSET = /^(0|[1-9]\d{0,14})$/;
const KINDS: ReadonlySet<string> = new Set<DataKind>(['text', 'json', 'other']);

/** A Pub/Sub message, as JSON. */
interface WireMessage {
  /** format version */
  v?: unknown;
  /** epoch ('' without history) */
  e?: unknown;
  /** offset, as text ('0' without history) */
  o?: unknown;
  /** event name */
  n?: unknown;
  /** text */
  t?: unknown;
  /** kind */
  k?: unknown;
  /** custom id (only without history) */
  c?: unknown;
  /** origin: the publishing call */
  r?: unknown;
}

/** A decoded message or entry, or why it was skipped. */
export type Decoded = { readonly entry: LogEntry } | { readonly skipped: string };

/** The message of an event without history (with history the append script writes it). */
export function encodeMessage(event: PublishedEvent): string {
  const message: WireMessage = { v: FORMAT, e: '', o: '0', t: event.text, k: event.kind };
  if (event.event !== undefined) message.n = event.event;
  if (event.id !== undefined) message.c = event.id;
  if (event.origin !== undefined) message.r = event.origin;
  return JSON.stringify(message);
}

// The fields every entry has, checked: undefined when one does not fit.
function fields(text: unknown, kind: unknown, event: unknown, origin: unknown): Pick<LogEntry, 'text' | 'kind' | 'event' | 'origin'> | string {
  if (typeof text !== 'string') return 'its text is not a string';
  if (kind !== undefined && (typeof kind !== 'string' || !KINDS.has(kind))) return 'its kind is not text, json or other';
  if (event !== undefined && !isEventName(event)) return 'its event name is not one line of text';
  if (origin !== undefined && (typeof origin !== 'string' || origin.length > MAX_ORIGIN)) return 'its origin is not a short string';
  return { text, kind: (kind as DataKind | undefined) ?? 'text', event: event, origin: origin };
}

export function decodeMessage(raw: string): Decoded {
  let message: unknown;
  try {
    message = JSON.parse(raw);
  } catch {
    return { skipped: 'it is not JSON' };
  }
  if (typeof message !== 'object' || message === null || Array.isArray(message)) return { skipped: 'it is not a JSON object' };
  const { v, e = '', o = '0', n, t, k, c, r } = message as WireMessage;
  // Another format (a newer version during a rolling upgrade): skipped. With history, the channel
  // notices the gap at the next message it understands and reads the log.
  if (v !== FORMAT) return { skipped: `its format is ${JSON.stringify(v)}, not ${FORMAT} (is a newer version publishing?)` };
  if (typeof o !== 'string' || !OFFSET.test(o)) return { skipped: 'its offset is not a whole number' };
  const offset = Number(o);
  if (offset > 0 ? !isEpoch(e) : e !== '') return { skipped: 'its epoch does not fit its offset' };
  if (c !== undefined && (offset > 0 || !isEventId(c))) return { skipped: 'its id is not one line of text without NUL' };
  const common = fields(t, k, n, r);
  if (typeof common === 'string') return { skipped: common };
  return { entry: { epoch: e as string, offset, ...common, id: c } };
}

/** An entry of a log Stream: `[id, [field, value, …]]`. */
export type StreamEntry = [id: string, fields: string[]];

export function decodeEntry(raw: StreamEntry, epoch: string): Decoded {
  const [id, list] = raw;
  const match = typeof id === 'string' ? /^([1-9]\d{0,14})-0$/.exec(id) : null;
  if (match === null) return { skipped: `its id ${JSON.stringify(id)} is not <offset>-0` };
  if (!Array.isArray(list)) return { skipped: 'it has no fields' };
  const values = new Map<string, string>();
  for (let i = 0; i + 1 < list.length; i += 2) values.set(String(list[i]), String(list[i + 1]));
  if (values.get('v') !== FORMAT) return { skipped: `its format is ${JSON.stringify(values.get('v'))}, not ${FORMAT}` };
  const common = fields(values.get('t'), values.get('k'), values.get('n'), values.get('r'));
  if (typeof common === 'string') return { skipped: common };
  return { entry: { epoch, offset: Number(match[1]), ...common, id: undefined } };
}
