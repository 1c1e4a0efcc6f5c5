// The page's Durable Streams panel, bundled for the browser by the demo (GET /durable.js):
// a chat answered by a resumable run, read through /v1/stream with the AI SDK's Durable Streams
// transport. The chat id is kept in sessionStorage, so after a reload the answer resumes from
// the stream instead of being lost.
import { createDurableChatTransport } from '@durable-streams/aisdk-transport';
import { readUIMessageStream } from 'ai';

const $ = (id) => document.getElementById(id);
const transport = createDurableChatTransport({ api: '/ai/durable-chat' });
const KEY = 'durable-chat-id';

function textOf(message) {
  return message.parts.filter((part) => part.type === 'text').map((part) => part.text).join('');
}

async function show(stream, resumed) {
  const state = $('durable-state');
  state.dataset.state = 'streaming';
  state.textContent = resumed ? 'resumed from the stream' : 'streaming';
  let text = '';
  // Only a `finish` chunk says the answer is whole: a stream cut by leaving the page also ends.
  let finished = false;
  const watched = stream.pipeThrough(
    new TransformStream({
      transform(chunk, controller) {
        if (chunk.type === 'finish') finished = true;
        controller.enqueue(chunk);
      },
    }),
  );
  for await (const message of readUIMessageStream({ stream: watched })) {
    text = textOf(message);
    $('durable-answer').textContent = text;
  }
  if (!finished) {
    state.dataset.state = 'cut';
    state.textContent = 'cut off: reload to resume';
    return text;
  }
  state.dataset.state = 'done';
  state.textContent = resumed ? 'done (resumed after a reload)' : 'done';
  sessionStorage.removeItem(KEY);
  return text;
}

async function ask() {
  const chatId = crypto.randomUUID();
  sessionStorage.setItem(KEY, chatId);
  $('durable-chat-id').textContent = chatId;
  const messages = [{ id: crypto.randomUUID(), role: 'user', parts: [{ type: 'text', text: $('durable-prompt').value || 'Explain SSE' }] }];
  const stream = await transport.sendMessages({ trigger: 'submit-message', chatId, messageId: undefined, messages, abortSignal: undefined });
  return show(stream, false);
}

async function resume() {
  const chatId = sessionStorage.getItem(KEY);
  if (chatId === null) return;
  $('durable-chat-id').textContent = chatId;
  const stream = await transport.reconnectToStream({ chatId });
  if (stream === null) {
    sessionStorage.removeItem(KEY);
    return;
  }
  await show(stream, true);
}

$('durable-ask').addEventListener('click', () => {
  ask().catch((error) => ($('durable-state').textContent = `failed: ${error.message}`));
});
resume().catch((error) => ($('durable-state').textContent = `failed: ${error.message}`));
