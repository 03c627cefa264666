/**
 * Reports as pieces. A report of a long run is tens of megabytes (report.html
 * of 303 trials × 50 probes: 16 MB); built as one string, it was held whole
 * beside the pieces it was joined from and its UTF-8 bytes, and the peak
 * memory of `blackout report` grew with the log. A reporter yields its report
 * in pieces (a trial, a test case) that are written as they come
 * (reporters/index.ts); the same pieces joined are the report as a string.
 */

/** the pieces joined: the whole report as one string */
export function joinChunks(chunks: Iterable<string>): string {
  let s = '';
  for (const c of chunks) s += c;
  return s;
}

/** an array that `jsonChunks` writes item by item instead of as one string */
export class Spread {
  constructor(readonly items: Iterable<unknown>) {}
}

const MARK = '\u0000blackout-spread:';
const MARKED = /"\\u0000blackout-spread:(\d+)"/g;

/**
 * `JSON.stringify(value, null, 2)` in pieces, byte for byte: every `Spread`
 * in the value is written as the array of its items, one piece per item, so
 * only one item's text is held at a time.
 */
export function* jsonChunks(value: unknown): Generator<string> {
  const spreads: Spread[] = [];
  // the rest of the value at once, each Spread left as a marker string in it
  const text = JSON.stringify(value, (_k, v: unknown) => (v instanceof Spread ? `${MARK}${spreads.push(v) - 1}` : v), 2);
  let from = 0;
  for (const m of text.matchAll(MARKED)) {
    const at = m.index;
    yield text.slice(from, at);
    from = at + m[0].length;
    // the indent of the line the marker is on: the array's items go one level deeper
    const line = text.lastIndexOf('\n', at) + 1;
    let indent = 0;
    while (text.charCodeAt(line + indent) === 32) indent++;
    const pad = '\n' + ' '.repeat(indent + 2);
    let first = true;
    for (const item of spreads[Number(m[1])]!.items) {
      // as JSON.stringify writes an array's item: undefined and functions as null
      const json = JSON.stringify(item, null, 2) ?? 'null';
      yield (first ? '[' : ',') + pad + json.replaceAll('\n', pad);
      first = false;
    }
    yield first ? '[]' : '\n' + ' '.repeat(indent) + ']';
  }
  yield text.slice(from);
}
