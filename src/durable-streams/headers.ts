// Header names of the Durable Streams protocol, and the CORS lists built from them.

export const STREAM_NEXT_OFFSET = 'Stream-Next-Offset';
export const STREAM_CURSOR = 'Stream-Cursor';
export const STREAM_UP_TO_DATE = 'Stream-Up-To-Date';
export const STREAM_CLOSED = 'Stream-Closed';
export const STREAM_SEQ = 'Stream-Seq';
export const STREAM_TTL = 'Stream-TTL';
export const STREAM_EXPIRES_AT = 'Stream-Expires-At';
export const STREAM_SSE_DATA_ENCODING = 'Stream-SSE-Data-Encoding';
export const PRODUCER_ID = 'Producer-Id';
export const PRODUCER_EPOCH = 'Producer-Epoch';
export const PRODUCER_SEQ = 'Producer-Seq';
export const PRODUCER_EXPECTED_SEQ = 'Producer-Expected-Seq';
export const PRODUCER_RECEIVED_SEQ = 'Producer-Received-Seq';

/** Request headers a browser may send cross-origin. */
export const ALLOW_HEADERS = [
  'Content-Type', 'Authorization', 'If-None-Match', STREAM_SEQ, STREAM_TTL, STREAM_EXPIRES_AT, STREAM_CLOSED, PRODUCER_ID, PRODUCER_EPOCH, PRODUCER_SEQ,
].join(', ');

/** Response headers a cross-origin page may read. */
export const EXPOSE_HEADERS = [
  STREAM_NEXT_OFFSET, STREAM_CURSOR, STREAM_UP_TO_DATE, STREAM_CLOSED, STREAM_TTL, STREAM_EXPIRES_AT, STREAM_SSE_DATA_ENCODING, PRODUCER_EPOCH,
  PRODUCER_SEQ, PRODUCER_EXPECTED_SEQ, PRODUCER_RECEIVED_SEQ, 'ETag', 'Location', 'Content-Type',
].join(', ');
