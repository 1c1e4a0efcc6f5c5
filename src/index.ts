// express-sse-hub: the public API. Every name here is listed, with who needs it, in the README
// ("Everything exported"); a test keeps the two equal. Types for writing an adapter of your own
// are in 'express-sse-hub/adapter'.
import './stream/express';

/** Express middleware that attaches `res.sse`, and its options. */
export { sse } from './stream/middleware';
export type { SseHandler, SseResponse } from './stream/middleware';
export type { SseOptions } from './stream/options';
/** What `res.sse` is. */
export { SseStream } from './stream/sse-stream';
export type { EventMap, PipeOptions, SendOptions, StreamTarget } from './stream/sse-stream';
/** Channels: broadcast, history and replay. */
export { Channel } from './channels/channel';
export type { BroadcastOptions, BroadcastResult } from './channels/channel';
export { RESET_EVENT } from './channels/fan-out';
export type { ChannelStats } from './channels/fan-out';
export type { ChannelOptions } from './channels/options';
export type { Authorize, ChannelEvent, Filter, ResetReason, SubscribeOptions } from './channels/subscription';
/** Named channels on one adapter: authorize, runs, stats, graceful close. */
export { ChannelRegistry } from './registry';
export type { RegistryOptions, RegistryStats } from './registry';
export type { CloseOptions } from './stream/shutdown';
/** Runs: generations that outlive their request, followed from any process (`registry.run()`). */
export type { Run, RunEnd, RunEndReason, RunOptions, RunSource } from './runs/run';
export type { FollowOptions, FollowOutcome } from './runs/runs';
/** The in-process adapter (the default). */
export { MemoryAdapter } from './adapters/memory';
/** Errors with stable `code`s. */
export { SseError } from './common/errors';
export type { SseErrorCode } from './common/errors';
/** Names of the node:diagnostics_channel hooks (tracing without a dependency), and the broadcast span's context. */
export { DIAGNOSTICS } from './common/diagnostics';
export type { BroadcastContext } from './common/diagnostics';
