// When the client reconnects, on a fake clock: the delay it announces in its error event
// (reconnectIn) is the delay it waits, to the millisecond, whatever the machine is doing. The
// network is a fetch double, so nothing here depends on real time.
import { EventSource, type SseErrorEvent } from '../src/client';

type Answer = () => Response;

function stream(body: string, init: ResponseInit = {}): Answer {
  return () => new Response(body, { status: 200, headers: { 'content-type': 'text/event-stream' }, ...init });
}

/** A stream that stays open. */
const openStream: Answer = () =>
  new Response(new ReadableStream({ start: (controller) => controller.enqueue(new TextEncoder().encode(': open\n\n')) }), { status: 200, headers: { 'content-type': 'text/event-stream' } });

/** A fetch that answers each call with the next answer (the last one repeats), and counts calls. */
function fetchDouble(answers: Answer[]): { fetch: (url: string, init: RequestInit) => Promise<Response>; calls: number } {
  const double = {
    calls: 0,
    fetch: (_url: string, _init: RequestInit): Promise<Response> => {
      const answer = answers[Math.min(double.calls, answers.length - 1)]!;
      double.calls += 1;
      return Promise.resolve(answer());
    },
  };
  return double;
}

/** Lets the client read what fetch gave it (microtasks and I/O callbacks, not timers). */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i += 1) await new Promise((resolve) => setImmediate(resolve));
}

describe('the client reconnects after exactly the delay it announces', () => {
  beforeEach(() => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask', 'setImmediate', 'clearImmediate', 'hrtime', 'performance'] });
  });
  afterEach(() => {
    jest.useRealTimers();
    jest.restoreAllMocks();
  });

  /** Opens a source, then returns its errors as they come; every random draw is `random`. */
  function open(double: ReturnType<typeof fetchDouble>, random = 0.5): { source: EventSource; errors: SseErrorEvent[] } {
    jest.spyOn(Math, 'random').mockReturnValue(random);
    const source = new EventSource('http://127.0.0.1:1/events', { fetch: double.fetch });
    const errors: SseErrorEvent[] = [];
    source.addEventListener('error', (event) => errors.push(event));
    return { source, errors };
  }

  /** Advances the clock to just before `ms`, checks nothing was fetched, then to `ms`. */
  async function expectFetchAfter(double: ReturnType<typeof fetchDouble>, ms: number): Promise<void> {
    const calls = double.calls;
    jest.advanceTimersByTime(ms - 1);
    await settle();
    expect(double.calls).toBe(calls);
    jest.advanceTimersByTime(1);
    await settle();
    expect(double.calls).toBe(calls + 1);
  }

  it('waits the reconnection time the server set with retry:', async () => {
    const double = fetchDouble([stream('retry: 300\ndata: x\n\n')]);
    const { source, errors } = open(double);
    await settle();
    expect(errors.map((e) => e.reconnectIn)).toEqual([300]);
    await expectFetchAfter(double, 300);
    await expectFetchAfter(double, 300);
    expect(errors.map((e) => e.reconnectIn)).toEqual([300, 300, 300]);
    source.close();
  });

  it('waits each backoff delay it announced after a 500', async () => {
    const double = fetchDouble([stream('retry: 100\n\n'), () => new Response('', { status: 500 }), () => new Response('', { status: 500 }), openStream]);
    // Draws that put the backoff between two milliseconds (a timer would wait the whole part).
    const { source, errors } = open(double, 0.377);
    await settle();
    expect(errors.map((e) => e.reconnectIn)).toEqual([100]);
    await expectFetchAfter(double, 100);
    const first = errors.at(-1)!;
    expect(first.status).toBe(500);
    await expectFetchAfter(double, first.reconnectIn!);
    const second = errors.at(-1)!;
    expect(second.status).toBe(500);
    expect(second.reconnectIn).toBeGreaterThan(first.reconnectIn!);
    await expectFetchAfter(double, second.reconnectIn!);
    expect(source.readyState).toBe(EventSource.OPEN);
    source.close();
  });

  it('never reconnects after close(), however long the clock runs', async () => {
    const double = fetchDouble([stream('retry: 50\n\n')]);
    const { source } = open(double);
    await settle();
    source.close();
    jest.advanceTimersByTime(60_000);
    await settle();
    expect(double.calls).toBe(1);
  });
});
