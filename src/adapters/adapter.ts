// What a ChannelRegistry needs from a transport: assign positions to events, store them for
// replay, and deliver them, in one global order, to every process that has subscribers.

/** How an event's text was produced, so a receiving process can rebuild the value filters see. */
export type DataKind = 'text' | 'json' | 'other';

/** An event as the publishing process hands it to the adapter: already serialized. */
export interface PublishedEvent {
  readonly event: string | undefined;
  /** The data as text (what goes after `data:`). */
  readonly text: string;
  readonly kind: DataKind;
  /** An id chosen by the caller; otherwise the adapter's position is the id. */
  readonly id: string | undefined;
  /** The original value; only in-process adapters carry it along. */
  readonly data?: unknown;
}

/** An event with its position, as every process receives it. */
export interface AdapterEvent extends PublishedEvent {
  /** Position in the adapter's sequence: increasing across all channels. */
  readonly seq: number;
}

/** Why a replay could not start exactly after the client's id. */
export type ResetReason = 'unknown-id' | 'evicted';

export interface ReplayResult {
  readonly events: readonly AdapterEvent[];
  /** Set when events may have been missed: `events` is then all the history that remains. */
  readonly reset: ResetReason | undefined;
}

/** Receives a channel's events in order; returns how many local subscribers got the event. */
export type DeliverFunction = (event: AdapterEvent) => number;

/** What `publish()` resolves with. */
export interface PublishResult {
  /** The id written on the wire (undefined for an event without one). */
  readonly id: string | undefined;
  /** Local subscribers the event reached. */
  readonly delivered: number;
}

/**
 * The transport behind a registry. `MemoryAdapter` is the in-process default; `RedisAdapter`
 * (`express-sse-hub/redis`) shares channels between processes and machines.
 */
export interface Adapter {
  /**
   * Assigns the event its position, stores it in the channel's history when `history` > 0 and
   * delivers it to every process subscribed to the channel. Resolves with its id and the number
   * of local subscribers it reached, once it was delivered here. Rejects when the transport is
   * down.
   */
  publish(channel: string, event: PublishedEvent, history: number): Promise<PublishResult>;
  /** Starts delivering the channel's events to `deliver`, in position order. */
  subscribe(channel: string, deliver: DeliverFunction): void;
  /** Stops delivering the channel's events here. */
  unsubscribe(channel: string): void;
  /** The channel's stored events after `lastEventId`, oldest first. */
  readAfter(channel: string, lastEventId: string, history: number): Promise<ReplayResult>;
  /** The newest position this process knows of ('0' before any). */
  readonly lastEventId: string;
  /** Where the adapter reports trouble that has no caller to reject (set by the registry). */
  onError?: (error: Error) => void;
  /** Releases connections and timers. */
  close(): Promise<void>;
}

/** The id an event carries on the wire: the caller's, else its position when it has one. */
export function wireIdOf(event: AdapterEvent): string | undefined {
  return event.id ?? (event.seq > 0 ? String(event.seq) : undefined);
}

/** Turns the text back into what a subscriber's filter should see. */
export function dataOf(event: PublishedEvent): unknown {
  if ('data' in event) return event.data;
  if (event.kind === 'json') {
    try {
      return JSON.parse(event.text) as unknown;
    } catch {
      return event.text;
    }
  }
  return event.text;
}
