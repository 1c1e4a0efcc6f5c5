// Where a client is in a channel's log, and how that travels as an SSE id.
//
// Every channel with history is a log: events numbered 1, 2, 3, … (the offset) within one epoch,
// a random name the log gets when it is created. A restart of an in-memory log, a Redis that lost
// its data, a log that expired: each starts a new epoch, so a position from before is recognised
// as unknown rather than confused with a new event that has the same number.
//
// On the wire a position is `<offset>.<epoch>` ("42.k3f9a2"). A connection in several channels
// with history carries one position per channel, comma-separated ("42.k3f9a2,7.p0q1z8"): an
// EventSource sends back only the last id it saw, so that id must say where the client is in
// every channel. Epochs are random per log, so each entry finds its channel by its epoch.
import { randomBytes } from 'node:crypto';

/** A position in a channel's log: the last event a client has. Offset 0 is "before the first". */
export interface Position {
  readonly epoch: string;
  readonly offset: number;
}

/** What a Last-Event-ID said. */
export interface ClientPosition {
  /** The positions it carried, one per channel. */
  readonly positions: readonly Position[];
  /** False when the id could not be read as positions at all: every channel resets. */
  readonly valid: boolean;
}

/** Most entries read from one id; a longer id is treated as unknown. */
export const MAX_ID_ENTRIES = 64;

const ENTRY = /^(0|[1-9]\d{0,14})\.([0-9a-z]{1,16})$/;
const EPOCH = /^[0-9a-z]{1,16}$/;

/** The wire form of one position. */
export function formatPosition(position: Position): string {
  return `${position.offset}.${position.epoch}`;
}

/** Whether `epoch` has the form of an epoch (1 to 16 lower-case letters and digits). */
export function isEpoch(epoch: unknown): epoch is string {
  return typeof epoch === 'string' && EPOCH.test(epoch);
}

/** A new epoch: 8 random base-36 characters (about 41 bits). */
export function newEpoch(): string {
  let epoch = '';
  for (const byte of randomBytes(8)) epoch += (byte % 36).toString(36);
  return epoch;
}

/** Reads a Last-Event-ID; `undefined` when the client sent none (a first connection). */
export function parseLastEventId(id: string | undefined): ClientPosition | undefined {
  if (id === undefined || id === '') return undefined;
  const parts = id.split(',', MAX_ID_ENTRIES + 1);
  if (parts.length > MAX_ID_ENTRIES) return { positions: [], valid: false };
  const positions: Position[] = [];
  for (const part of parts) {
    const match = ENTRY.exec(part);
    if (match === null) return { positions: [], valid: false };
    positions.push({ offset: Number(match[1]), epoch: match[2]! });
  }
  return { positions, valid: true };
}

/** Two positions are the same point in the same log. */
export function samePosition(a: Position, b: Position): boolean {
  return a.offset === b.offset && a.epoch === b.epoch;
}
