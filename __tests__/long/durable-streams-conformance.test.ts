// The Durable Streams conformance suite on a real redis-server and on a 3-master Redis Cluster,
// each started for the run (see helpers/ds-conformance.ts). CI runs both.
import { describeConformance } from '../helpers/ds-conformance';

describeConformance(['redis', 'cluster']);
