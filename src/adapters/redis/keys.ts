// Where a channel lives in Redis. Its keys and its Pub/Sub channel share the hash tag {name}: on a
// Redis Cluster each channel lives on one master (its script touches only its own keys), and the
// channels spread over all of them.
//
// A hash tag ends at the first "}", so a name holding one would cut the tag short and scatter the
// channel's keys over several slots (CROSSSLOT). Inside the tag, "}" is written %7D and "%" %25;
// every other name is its own tag, as before.

/** The part of a key inside `{…}` for `channel`. */
function tagOf(channel: string): string {
  return channel.includes('%') || channel.includes('}') ? channel.replace(/%/g, '%25').replace(/\}/g, '%7D') : channel;
}

function channelOfTag(tag: string): string {
  return tag.includes('%') ? tag.replace(/%7D/g, '}').replace(/%25/g, '%') : tag;
}

export interface ChannelKeys {
  /** Hash: epoch, head (newest offset), sealed. */
  readonly meta: string;
  /** Stream: the newest events, ids `<offset>-0`. */
  readonly log: string;
  /** Sorted set: ids of the latest publishes (score: their offset), so a resent append is not stored twice. */
  readonly publishes: string;
  /** Pub/Sub channel of its new entries. */
  readonly pubsub: string;
}

export function channelKeys(prefix: string, channel: string): ChannelKeys {
  const pubsub = `${prefix}:{${tagOf(channel)}}`;
  return { meta: `${pubsub}:meta`, log: `${pubsub}:log`, publishes: `${pubsub}:ids`, pubsub };
}

/** The channel a Pub/Sub channel name of this prefix belongs to; undefined for anything else. */
export function channelOfPubsub(prefix: string, name: string): string | undefined {
  const head = `${prefix}:{`;
  if (!name.startsWith(head) || !name.endsWith('}') || name.length <= head.length + 1) return undefined;
  return channelOfTag(name.slice(head.length, -1));
}
