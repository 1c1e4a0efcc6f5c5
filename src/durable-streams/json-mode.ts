// JSON mode (protocol section 7.1): a stream created as application/json keeps message
// boundaries. An append's body must be JSON; an array is flattened one level into its values;
// each value is stored as its compact JSON text. Reads return the values as one JSON array.

/** The messages of a JSON body, or why it is refused. */
export type JsonMessages = { readonly messages: Buffer[] } | { readonly error: string };

/** Splits a JSON body into stored messages; `create`: an empty array is allowed (no messages). */
export function jsonMessages(body: Buffer, create: boolean): JsonMessages {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
  } catch (error) {
    return { error: `the body must be JSON (${(error as Error).message})` };
  }
  if (!Array.isArray(value)) return { messages: [Buffer.from(JSON.stringify(value))] };
  if (value.length === 0 && !create) return { error: 'an append must not be an empty JSON array' };
  return { messages: value.map((item: unknown) => Buffer.from(JSON.stringify(item) ?? 'null')) };
}

/** The JSON array text of stored messages. */
export function jsonArray(messages: readonly Buffer[]): string {
  let text = '';
  // An empty piece is no message (a run's finish, which has an offset but no value).
  for (const message of messages) if (message.length > 0) text += (text === '' ? '' : ',') + message.toString('utf8');
  return `[${text}]`;
}
