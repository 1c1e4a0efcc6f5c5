// express-sse-hub/redis: the Redis adapter. The only part of the package that loads ioredis (an
// optional peer dependency), so the core keeps no runtime dependency.
export { RedisAdapter, createRedisAdapter } from './adapter';
export type { CreateRedisAdapterOptions, RedisAdapterOptions } from './adapter';
