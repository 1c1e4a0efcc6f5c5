// How a follower sees a run: the run's own events (`token`s, then `[DONE]` or `end`), or the
// AI SDK's UI message stream protocol (`x-vercel-ai-ui-message-stream: v1`), so an AI SDK
// `useChat({ resume: true })` app can resume from this package. Either way the stream closes
// after the run's end (its log is sealed there: nothing follows it).
import { isEndEvent } from './run';
import type { Stream } from '../stream/stream';
import type { ChannelEvent, Filter } from '../channels/subscription';

/** How `registry.followRun()` writes a run. */
export type RunFormat =
  /** The run's events as stored: each chunk an event (`token`) with an id, then the end. */
  | 'sse'
  /**
   * The AI SDK's UI message stream over SSE: `start`, `text-start`, a `text-delta` per chunk, then
   * `text-end` and `finish` (or `abort`, `error`), then `[DONE]`. Always from the start of the run
   * (an AI SDK client resumes by reading it again); a run that ended answers 204.
   */
  | 'ai-sdk';

export interface RunView {
  /** Written after the stream opened, before any of the run's events. */
  begin(): void;
  /** Sees every event of the run in order (replayed or live); returns whether to send it as it is. */
  readonly filter: Filter;
}

/** The header the AI SDK's clients expect on a UI message stream. */
export const UI_MESSAGE_STREAM_HEADER = 'x-vercel-ai-ui-message-stream';

/** Called with every event a follower sees (`ended`: it was the run's end). */
export type OnRunEvent = (ended: boolean) => void;

export function runView(format: RunFormat, stream: Stream, runId: string, onEvent: OnRunEvent): RunView {
  return format === 'ai-sdk' ? uiMessageView(stream, runId, onEvent) : sseView(stream, onEvent);
}

// Ends the stream once the run's end is queued (the end frame is queued right after the filter
// returns).
function closeSoon(stream: Stream): void {
  queueMicrotask(() => stream.close());
}

function sseView(stream: Stream, onEvent: OnRunEvent): RunView {
  return {
    begin: () => undefined,
    filter: (event) => {
      const ended = isEndEvent(event.event, event.data);
      onEvent(ended);
      if (ended) closeSoon(stream);
      return true;
    },
  };
}

/**
 * The text of a chunk, for `text-delta`: a string as it is; an object's string `token`, `text` or
 * `delta`. `undefined` for anything else (sent as a `data-<event>` part).
 */
export function textOf(data: unknown): string | undefined {
  if (typeof data === 'string') return data;
  if (data !== null && typeof data === 'object') {
    const { token, text, delta } = data as { token?: unknown; text?: unknown; delta?: unknown };
    for (const value of [token, text, delta]) if (typeof value === 'string') return value;
  }
  return undefined;
}

function uiMessageView(stream: Stream, runId: string, onEvent: OnRunEvent): RunView {
  const textId = 'text-0';
  const part = (value: object, id?: string): void => {
    stream.send(JSON.stringify(value), id === undefined ? undefined : { id });
  };
  const end = (event: ChannelEvent): void => {
    part({ type: 'text-end', id: textId });
    const reason = event.event === undefined ? 'done' : (event.data as { reason?: unknown } | null)?.reason;
    if (reason === 'done') part({ type: 'finish', finishReason: 'stop' });
    else if (reason === 'error') part({ type: 'error', errorText: 'the run failed' });
    else part({ type: 'abort', reason: typeof reason === 'string' ? reason : 'stopped' });
    stream.send('[DONE]', event.id === undefined ? undefined : { id: event.id });
    closeSoon(stream);
  };
  return {
    begin: () => {
      part({ type: 'start', messageId: runId });
      part({ type: 'text-start', id: textId });
    },
    filter: (event) => {
      const ended = isEndEvent(event.event, event.data);
      onEvent(ended);
      if (ended) {
        end(event);
        return false;
      }
      const delta = textOf(event.data);
      if (delta !== undefined) part({ type: 'text-delta', id: textId, delta }, event.id);
      else part({ type: `data-${event.event ?? 'message'}`, data: event.data }, event.id);
      return false;
    },
  };
}
