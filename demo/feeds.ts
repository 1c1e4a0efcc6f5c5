// Generators behind the demo's streams. Everything is local: no network, no API keys.
import { setTimeout as sleep } from 'node:timers/promises';

export const CAT_FACTS: readonly string[] = [
  'Cats sleep for around 13 to 16 hours a day.',
  'A group of cats is called a clowder.',
  'Cats have five toes on their front paws but only four on the back ones.',
  'A cat can jump up to six times its length.',
  'Cats use their whiskers to check whether they fit through a gap.',
  'The oldest known pet cat was found in a 9,500-year-old grave on Cyprus.',
  'A cat’s purr vibrates at 25 to 150 hertz.',
  'Cats cannot taste sweetness.',
  'Most cats are lactose intolerant.',
  'Each cat’s nose print is unique, like a fingerprint.',
  'Cats walk like camels and giraffes: both right feet, then both left feet.',
  'A house cat shares about 95.6% of its genome with a tiger.',
];

/** Meme images shipped in public/memes/ (no internet needed). */
export const MEMES: readonly string[] = ['/memes/this-is-fine.svg', '/memes/works-on-my-machine.svg', '/memes/one-does-not-simply.svg', '/memes/sse-vs-websockets.svg'];

export const RANDOM_EVENT_TYPES = ['coinToss', 'dieRoll', 'catFact', 'meme'] as const;
export type RandomEventType = (typeof RANDOM_EVENT_TYPES)[number];

function pick<T>(items: readonly T[]): T {
  return items[Math.floor(Math.random() * items.length)]!;
}

export function randomCatFact(): string {
  return pick(CAT_FACTS);
}

/** One event of the four-type demo (the last seed): its type and payload. */
export function randomEvent(): { type: RandomEventType; data: string | number } {
  const type = pick(RANDOM_EVENT_TYPES);
  switch (type) {
    case 'coinToss':
      return { type, data: Math.random() < 0.5 ? 'heads' : 'tails' };
    case 'dieRoll':
      return { type, data: 1 + Math.floor(Math.random() * 6) };
    case 'catFact':
      return { type, data: randomCatFact() };
    case 'meme':
      return { type, data: pick(MEMES) };
  }
}

export const CANNED_ANSWER =
  'Server-Sent Events keep one HTTP response open and let the server push text events down it. ' +
  'The browser parses them with EventSource, reconnects on its own, and sends Last-Event-ID so the ' +
  'server can resume exactly where the client left off. For one-way feeds such as notifications, ' +
  'dashboards and token streams, that is all you need.';

/**
 * Streams the canned answer word by word, as an LLM SDK would stream tokens. Stops at once when
 * `signal` aborts. `onToken` counts what was produced (the tests use it).
 */
export async function* tokenStream(signal: AbortSignal, paceMs: number, onToken?: () => void): AsyncGenerator<{ token: string }> {
  const words = CANNED_ANSWER.split(/(?<= )/);
  for (const word of words) {
    if (signal.aborted) return;
    try {
      await sleep(paceMs, undefined, { signal });
    } catch {
      return; // aborted while waiting
    }
    onToken?.();
    yield { token: word };
  }
}

/** AI SDK UI message chunks of an answer: start, one text part made of the tokens, finish. */
export async function* uiMessageChunks(tokens: AsyncIterable<{ token: string }>): AsyncGenerator<Record<string, string>> {
  yield { type: 'start' };
  yield { type: 'text-start', id: 'text-1' };
  for await (const { token } of tokens) yield { type: 'text-delta', id: 'text-1', delta: token };
  yield { type: 'text-end', id: 'text-1' };
  yield { type: 'finish' };
}
