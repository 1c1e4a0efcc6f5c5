// Compile-only checks, run by `npm run typecheck` (tsc), never executed. Each @ts-expect-error
// must be an error, or tsc fails: that proves the wrong call is rejected.
import express from 'express';
import { ChannelRegistry, sse, type SseHandler, type SseResponse } from 'express-sse-hub';

interface ChatMessage {
  user: string;
  text: string;
}
interface ChatEvents {
  chat: ChatMessage;
  presence: number;
}

const app = express();

app.get('/untyped', sse(), (_req, res) => {
  res.sse.send('text');
  res.sse.send({ any: 'thing' }, { event: 'anything', id: 1, retry: 1000 });
  res.sse.comment('hi');
  const ok: boolean = res.sse.send('x');
  const id: string | undefined = res.sse.lastEventId;
  const signal: AbortSignal = res.sse.signal;
  void [ok, id, signal];
  // @ts-expect-error retry must be a number
  res.sse.send('x', { retry: '100' });
  // @ts-expect-error id must be a string or number
  res.sse.send('x', { id: {} });
});

// The event map of sse<ChatEvents>() reaches res.sse in the handlers after it, unannotated.
app.get('/chat/:room', sse<ChatEvents>(), (req, res) => {
  const room: string = req.params.room; // the route's params are still inferred from its path
  void room;
  res.sse.send({ user: 'ann', text: 'hi' }, { event: 'chat', id: 1 });
  res.sse.send(3, { event: 'presence' });
  // @ts-expect-error a presence event carries a number
  res.sse.send('three', { event: 'presence' });
  // @ts-expect-error chat messages need a text
  res.sse.send({ user: 'ann' }, { event: 'chat' });
  // @ts-expect-error the map has no such event
  res.sse.send(1, { event: 'typo' });
  // @ts-expect-error the map has no plain message event
  res.sse.send({ user: 'ann', text: 'hi' });
  const someName: string = 'presence';
  // @ts-expect-error an event name must come from the map, not any string
  res.sse.send(3, { event: someName });
});

// A handler written apart from its route names the map with SseResponse.
const chatHandler = (_req: express.Request, res: SseResponse<ChatEvents>): void => {
  res.sse.send(3, { event: 'presence' });
  // @ts-expect-error a presence event carries a number
  res.sse.send('three', { event: 'presence' });
};
app.get('/chat-apart', sse<ChatEvents>(), chatHandler);
// (Written inline, sse() takes its map from such a handler: `app.get(path, sse(), chatHandler)`.)
const untyped = sse();
// @ts-expect-error SseResponse<ChatEvents> needs sse<ChatEvents>(), not an untyped sse()
app.get('/chat-lie', untyped, chatHandler);

// A map with a message event allows send(data) without a name.
app.get('/messages', sse<{ message: string; ping: number }>(), (_req, res) => {
  res.sse.send('hello');
  res.sse.send(1, { event: 'ping' });
  // @ts-expect-error message events carry strings
  res.sse.send(1);
});

// Mounted app-wide, res.sse is untyped in every route.
app.use(sse());
app.get('/anything', (_req, res) => {
  res.sse.send({ any: 'thing' }, { event: 'whatever' });
  const name: string | undefined = Math.random() > 0.5 ? 'x' : undefined;
  res.sse.send('x', { event: name });
});

// SseHandler names any of them, typed or not (to keep them for close()).
const handlers: SseHandler[] = [sse<ChatEvents>(), sse()];
void handlers;

// @ts-expect-error heartbeat is a number or false
sse({ heartbeat: true });
// @ts-expect-error unknown option
sse({ hearbeat: 1000 });

// Another middleware between sse<ChatEvents>() and the handler keeps the map.
const auth: express.RequestHandler = (_req, _res, next) => next();
app.get('/chat-auth', sse<ChatEvents>(), auth, (_req, res) => {
  res.sse.send(3, { event: 'presence' });
  // @ts-expect-error a presence event carries a number
  res.sse.send('three', { event: 'presence' });
});

// A typed route's res goes to channels and runs like any other.
const registry = new ChannelRegistry();
app.get('/chat-channel', sse<ChatEvents>(), (_req, res) => {
  registry.subscribe(res, ['chat']);
  registry.channel('chat').subscribe(res);
  void registry.followRun(res, 'run-1');
});
