// Idempotent producers (protocol section 5.2.1): Producer-Id, Producer-Epoch and Producer-Seq,
// all three or none. What a store decides for a batch, given the producer's state, is the same
// everywhere; the memory store runs `judgeProducer`, the Redis store the same rules in its Lua
// append script (so the decision and the append commit together).

/** A producer's place: its epoch and the newest sequence number accepted in it. */
export interface ProducerState {
  readonly epoch: number;
  readonly lastSeq: number;
}

/** The producer headers of one request. */
export interface ProducerClaim {
  readonly id: string;
  readonly epoch: number;
  readonly seq: number;
}

/** What a store decides for a producer's batch. */
export type ProducerVerdict =
  | { readonly kind: 'accept' }
  | { readonly kind: 'duplicate'; readonly lastSeq: number }
  | { readonly kind: 'stale-epoch'; readonly currentEpoch: number }
  | { readonly kind: 'epoch-needs-seq-0' }
  | { readonly kind: 'gap'; readonly expected: number; readonly received: number };

/** The rules of section 5.2.1, for a producer with `state` (undefined: never seen). */
export function judgeProducer(state: ProducerState | undefined, claim: ProducerClaim): ProducerVerdict {
  if (state === undefined) return claim.seq === 0 ? { kind: 'accept' } : { kind: 'gap', expected: 0, received: claim.seq };
  if (claim.epoch < state.epoch) return { kind: 'stale-epoch', currentEpoch: state.epoch };
  if (claim.epoch > state.epoch) return claim.seq === 0 ? { kind: 'accept' } : { kind: 'epoch-needs-seq-0' };
  if (claim.seq <= state.lastSeq) return { kind: 'duplicate', lastSeq: state.lastSeq };
  if (claim.seq === state.lastSeq + 1) return { kind: 'accept' };
  return { kind: 'gap', expected: state.lastSeq + 1, received: claim.seq };
}

/** The producer headers, checked: a claim, none, or what is wrong with them. */
export type ProducerHeaders = { readonly claim: ProducerClaim | undefined } | { readonly error: string };

const DECIMAL = /^(0|[1-9]\d*)$/;

function integer(value: string, name: string): number | string {
  if (!DECIMAL.test(value)) return `${name} must be a non-negative decimal integer, got ${JSON.stringify(value.slice(0, 40))}`;
  const number = Number(value);
  if (!Number.isSafeInteger(number)) return `${name} must be at most 2^53-1, got ${value.slice(0, 40)}`;
  return number;
}

/** Reads Producer-Id, Producer-Epoch and Producer-Seq (lower-cased header values). */
export function readProducerHeaders(id: string | undefined, epoch: string | undefined, seq: string | undefined): ProducerHeaders {
  if (id === undefined && epoch === undefined && seq === undefined) return { claim: undefined };
  if (id === undefined || epoch === undefined || seq === undefined) {
    return { error: 'Producer-Id, Producer-Epoch and Producer-Seq must be sent together' };
  }
  if (id === '') return { error: 'Producer-Id must not be empty' };
  if (id.length > 256) return { error: `Producer-Id must be at most 256 characters, got ${id.length}` };
  const epochValue = integer(epoch, 'Producer-Epoch');
  if (typeof epochValue === 'string') return { error: epochValue };
  const seqValue = integer(seq, 'Producer-Seq');
  if (typeof seqValue === 'string') return { error: seqValue };
  return { claim: { id, epoch: epochValue, seq: seqValue } };
}
