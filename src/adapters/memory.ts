import { wireIdOf, type Adapter, type AdapterEvent, type DeliverFunction, type PublishResult, type PublishedEvent, type ReplayResult } from './adapter';
import { History } from '../history';

/**
 * The default, in-process adapter: positions from a counter, history in a ring per channel,
 * delivery synchronous within `publish()`. Everything is lost when the process exits.
 */
export class MemoryAdapter implements Adapter {
  #seq = 0;
  readonly #histories = new Map<string, History>();
  readonly #subscribers = new Map<string, DeliverFunction>();
  onError?: (error: Error) => void;

  get lastEventId(): string {
    return String(this.#seq);
  }

  publish(channel: string, published: PublishedEvent, history: number): Promise<PublishResult> {
    const event: AdapterEvent = { ...published, seq: history > 0 ? (this.#seq += 1) : 0 };
    if (history > 0) this.#historyOf(channel, history).append(event);
    const deliver = this.#subscribers.get(channel);
    return Promise.resolve({ id: wireIdOf(event), delivered: deliver === undefined ? 0 : deliver(event) });
  }

  subscribe(channel: string, deliver: DeliverFunction): void {
    this.#subscribers.set(channel, deliver);
  }

  unsubscribe(channel: string): void {
    this.#subscribers.delete(channel);
  }

  readAfter(channel: string, lastEventId: string, history: number): Promise<ReplayResult> {
    return Promise.resolve(this.#historyOf(channel, history).readAfter(lastEventId, this.#seq));
  }

  close(): Promise<void> {
    this.#subscribers.clear();
    return Promise.resolve();
  }

  #historyOf(channel: string, capacity: number): History {
    let history = this.#histories.get(channel);
    if (history === undefined) {
      history = new History(Math.max(1, capacity));
      this.#histories.set(channel, history);
    }
    return history;
  }
}
