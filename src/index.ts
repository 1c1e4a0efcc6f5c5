import './stream/express';

/** Express middleware that attaches `res.sse`. */
export { sse } from './stream/middleware';
export type { SseHandler, SseResponse } from './stream/middleware';
/** The event stream behind `res.sse`. */
export { SseStream } from './stream/sse-stream';
export type { EventData, EventMap, PipeOptions, PipeSource, SendOptions, StreamTarget } from './stream/sse-stream';
/** A named group of subscribers with broadcast, history and replay. */
export { Channel } from './channels/channel';
export type { BroadcastOptions, BroadcastResult } from './channels/channel';
export { RESET_EVENT } from './channels/fan-out';
export type { ChannelStats } from './channels/fan-out';
export type { ChannelOptions } from './channels/options';
export type { Authorize, ChannelEvent, Filter, ResetReason, SubscribeOptions } from './channels/subscription';
/** Get-or-create channels sharing one id sequence; stats; graceful close. */
export { ChannelRegistry } from './registry';
export type { RegistryEvents, RegistryOptions, RegistryStats } from './registry';
export type { CloseOptions } from './stream/shutdown';
/** Runs: generations that outlive their request, followed from any process (`registry.run()`). */
export type { Run, RunDefaults, RunEnd, RunEndReason, RunOptions, RunSource } from './runs/run';
export type { FollowOptions, FollowOutcome } from './runs/runs';
export type { RunFormat } from './runs/run-views';
/** The transport interface a registry uses, and its in-process default. */
export { MemoryAdapter } from './adapters/memory';
export type { Adapter, DataKind, EntryListener, LogEntry, LogOptions, Position, PublishedEvent, ReadOptions, ReadResult } from './adapters/adapter';
/** Errors with stable `code`s. */
export { SseError } from './common/errors';
export type { SseErrorCode, SseTypeError } from './common/errors';
export type { SseOptions } from './stream/options';
export type { ConnectionStats } from './stream/limits';
export type { Serializer } from './stream/serializer';
/** Names of the node:diagnostics_channel hooks (tracing without a dependency), and the broadcast span's context. */
export { DIAGNOSTICS } from './common/diagnostics';
export type { BroadcastContext } from './common/diagnostics';
