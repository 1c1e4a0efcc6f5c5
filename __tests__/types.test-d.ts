// Compile-only checks, run by `npm run typecheck` (tsc), never executed. Each @ts-expect-error
// must be an error, or tsc fails: that proves the wrong call is rejected.
import express from 'express';
import { sse, type SseResponse } from 'express-sse-hub';

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

app.get('/chat', sse<ChatEvents>(), (_req, res: SseResponse<ChatEvents>) => {
  res.sse.send({ user: 'ann', text: 'hi' }, { event: 'chat' });
  res.sse.send(3, { event: 'presence' });
  // @ts-expect-error a presence event carries a number
  res.sse.send('three', { event: 'presence' });
  // @ts-expect-error chat messages need a text
  res.sse.send({ user: 'ann' }, { event: 'chat' });
  // @ts-expect-error the map has no such event
  res.sse.send(1, { event: 'typo' });
  // @ts-expect-error the map has no plain message event
  res.sse.send({ user: 'ann', text: 'hi' });
});

// @ts-expect-error heartbeat is a number or false
sse({ heartbeat: true });
// @ts-expect-error unknown option
sse({ hearbeat: 1000 });
