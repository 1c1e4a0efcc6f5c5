// The running totals of one registry, for metrics. Channels add to them as they go (a field
// increment per broadcast, per fan-out and per join or leave: no allocation on the hot path), so
// the totals survive channels that are collected once nobody uses them; per-channel stats do not.
import type { DropReason } from '../stream/connection';
import type { ResetReason } from './subscription';

/** Running totals of a registry since it was created; they only grow. */
export interface Counters {
  /** Events broadcast from this process. */
  events: number;
  /** Frames queued to connections (one event to 1 000 connections: 1 000), replays included. */
  deliveries: number;
  /** Bytes of those frames. */
  bytes: number;
  /** Subscriptions that replayed history. */
  replays: number;
  /** Connections dropped while subscribed, by why (a connection in three channels counts once per channel). */
  readonly dropped: Record<DropReason, number>;
  /** `reset` events sent, by reason. */
  readonly resets: Record<ResetReason, number>;
  /** Errors the adapter reported, and subscriptions or catch-ups it could not serve. */
  adapterErrors: number;
  /** Messages and log entries from the adapter that were skipped: they did not read as entries. */
  invalidMessages: number;
}

export const DROP_REASONS: readonly DropReason[] = ['slow-client', 'write-failed'];
export const RESET_REASONS: readonly ResetReason[] = ['unknown-id', 'evicted', 'lost'];

export function newCounters(): Counters {
  return {
    events: 0,
    deliveries: 0,
    bytes: 0,
    replays: 0,
    dropped: { 'slow-client': 0, 'write-failed': 0 },
    resets: { 'unknown-id': 0, evicted: 0, lost: 0 },
    adapterErrors: 0,
    invalidMessages: 0,
  };
}

/** Sum of one of the by-reason records. */
export function total(record: Readonly<Record<string, number>>): number {
  let sum = 0;
  for (const key in record) sum += record[key]!;
  return sum;
}
