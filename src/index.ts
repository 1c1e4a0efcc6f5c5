import './express';

/** Express middleware that attaches `res.sse`. */
export { sse } from './middleware';
export type { SseHandler, SseResponse } from './middleware';
/** The event stream behind `res.sse`. */
export { SseStream } from './stream';
export type { EventData, EventMap, PipeOptions, PipeSource, SendOptions, StreamTarget } from './stream';
/** A named group of subscribers with broadcast, history and replay. */
export { Channel, RESET_EVENT } from './channel';
export type { BroadcastOptions, BroadcastResult, ChannelOptions, ChannelStats } from './channel';
export type { Authorize, ChannelEvent, Filter, ResetReason, SubscribeOptions } from './subscription';
/** Get-or-create channels sharing one id sequence; stats; graceful close. */
export { ChannelRegistry } from './registry';
export type { RegistryEvents, RegistryOptions, RegistryStats } from './registry';
export type { CloseOptions } from './shutdown';
/** Runs: generations that outlive their request, followed from any process (`registry.run()`). */
export type { Run, RunDefaults, RunEnd, RunEndReason, RunOptions, RunSource } from './run';
export type { FollowOptions, FollowOutcome } from './runs';
export type { RunFormat } from './run-views';
/** The transport interface a registry uses, and its in-process default. */
export { MemoryAdapter } from './adapters/memory';
export type { Adapter, DataKind, EntryListener, LogEntry, LogOptions, Position, PublishedEvent, ReadOptions, ReadResult } from './adapters/adapter';
/** Errors with stable `code`s. */
export { SseError } from './errors';
export type { SseErrorCode, SseTypeError } from './errors';
export type { SseOptions } from './options';
export type { ConnectionStats } from './limits';
export type { Serializer } from './serializer';
/** Names of the node:diagnostics_channel hooks (tracing without a dependency), and the broadcast span's context. */
export { DIAGNOSTICS } from './diagnostics';
export type { BroadcastContext } from './diagnostics';
