/**
 * Reports in pieces (src/reporters/chunks.ts): summary.json written item by
 * item is JSON.stringify(…, null, 2) of the same value, byte for byte, at any
 * depth, with empty arrays, nested and awkward values.
 */
import { describe, expect, it } from 'vitest';
import { Spread, joinChunks, jsonChunks } from '../../src/reporters/chunks.ts';

/** the value with every Spread replaced by the array of its items (what JSON.stringify would have been given) */
function plain(v: unknown): unknown {
  if (v instanceof Spread) return [...v.items].map(plain);
  if (Array.isArray(v)) return v.map(plain);
  if (v && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

describe('jsonChunks', () => {
  it('is JSON.stringify(value, null, 2), one piece per spread item', () => {
    const item = (i: number) => ({ i, name: `t${i}`, text: 'a "quoted"\nline\u0000 ≤ 😀', list: [1, [2, { x: null }]], empty: [], obj: {} });
    const values: unknown[] = [
      { trials: new Spread([item(1), item(2), item(3)]) },
      { a: 1, deep: { deeper: { cases: new Spread([item(4)]), after: true } }, end: 'x' },
      { none: new Spread([]), also: [], one: new Spread([7]) },
      { odd: new Spread([undefined, 'str', null, 0, [new Date(0)]]) },
      new Spread([item(5), item(6)]),
      { s: '"\\u0000blackout-spread:0"', t: new Spread([1]) },
    ];
    for (const v of values) {
      const pieces = [...jsonChunks(v)];
      expect(joinChunks(pieces)).toBe(JSON.stringify(plain(v), null, 2));
      expect(JSON.parse(joinChunks(pieces))).toEqual(JSON.parse(JSON.stringify(plain(v))));
    }
    // a piece per item: the trials are never one string
    expect([...jsonChunks({ trials: new Spread([item(1), item(2), item(3)]) })].length).toBeGreaterThanOrEqual(3 + 2);
  });

  it('asks for each item only as it is written', () => {
    let made = 0;
    function* items() {
      for (let i = 0; i < 3; i++) {
        made++;
        yield { i };
      }
    }
    const it = jsonChunks({ list: new Spread(items()) });
    it.next();
    expect(made).toBe(0);
    it.next();
    expect(made).toBe(1);
  });
});
