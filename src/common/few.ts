// A small list kept as its single item while it has one: most connections have one close hook and
// are in one channel with history, and an array per connection would be one more object for
// each of tens of thousands of idle connections.

/** No item, one item, or an array of two or more. */
export type Few<T extends object> = T | T[] | undefined;

/** `list` with `item` added. */
export function addTo<T extends object>(list: Few<T>, item: T): Few<T> {
  if (list === undefined) return item;
  if (Array.isArray(list)) {
    list.push(item);
    return list;
  }
  return [list, item];
}

/** `list` without `item` (its first occurrence). */
export function removeFrom<T extends object>(list: Few<T>, item: T): Few<T> {
  if (list === item) return undefined;
  if (!Array.isArray(list)) return list;
  const at = list.indexOf(item);
  if (at !== -1) list.splice(at, 1);
  return list.length === 1 ? list[0] : list;
}

/** How many items `list` has. */
export function sizeOf<T extends object>(list: Few<T>): number {
  return list === undefined ? 0 : Array.isArray(list) ? list.length : 1;
}
