// The Durable Streams conformance suite on the in-memory backend (see helpers/ds-conformance.ts);
// the Redis and Redis Cluster runs are in __tests__/long (npm run test:long).
import { describeConformance } from './helpers/ds-conformance';

describeConformance(['memory']);
