/**
 * The reader's byte-level fast path for sample lines must read every line
 * exactly as JSON.parse does, or leave it to the generic path (null): the same
 * keys in the same order, the same doubles bit for bit (-0 included).
 */
import { describe, expect, it } from 'vitest';
import { sampleFromBytes } from '../../src/core/sample-line.ts';

/** a seeded generator: the cases are the same on every run */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let x = s;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 2 ** 32;
  };
}

const fast = (line: string) => {
  // inside a larger buffer, with the next line after it, as the reader meets it
  const b = Buffer.from(`${line}\n{"type":"sample","t":9}\n`);
  return sampleFromBytes(b, 0, Buffer.byteLength(line));
};

/** the fast path agrees with JSON.parse: same entries in the same order, numbers compared with Object.is */
function agrees(line: string): 'fast' | 'generic' {
  const got = fast(line);
  let want: unknown;
  try {
    want = JSON.parse(line);
  } catch {
    expect(got, `not JSON, yet read: ${line}`).toBeNull();
    return 'generic';
  }
  if (got === null) return 'generic';
  const g = Object.entries(got);
  const w = Object.entries(want as Record<string, unknown>);
  const same = g.length === w.length && g.every(([k, v], i) => k === w[i]![0] && Object.is(v, w[i]![1]));
  // one assertion per line (20 000 of them): the message shows both readings when they differ
  if (!same) expect(g, line).toEqual(w);
  if (!same) expect.fail(`${line}: read ${JSON.stringify(g.map(([k, v]) => [k, Object.is(v, -0) ? '-0' : v]))}`);
  return 'fast';
}

describe('sample lines read from their bytes', () => {
  it('reads what the writer writes, bit for bit, on the fast path', () => {
    const r = rng(1);
    let viaFast = 0;
    for (let i = 0; i < 20_000; i++) {
      // the run clock: whole nanoseconds in ms; latencies that are differences of such times (full doubles)
      const t = Math.round(r() * 1e15) / 1e6;
      const e: Record<string, unknown> = { type: 'sample', t, probe: `p${i % 50}`, trial: i % 300 };
      if (i % 2) e.latencyMs = r() < 0.5 ? Math.round(r() * 1e6) / 1e3 : r() * 100 - r() * 100;
      if (i % 3 === 0) e.seq = Math.floor(r() * 2 ** 32);
      if (i % 5 === 0) e.value = r() < 0.2 ? 0 : r() < 0.5 ? -Math.round(r() * 1e4) / 100 : r() * 1e12;
      if (i % 7 === 0) e.lateMs = Math.round((r() - 0.5) * 1e4) / 100;
      if (agrees(JSON.stringify(e)) === 'fast') viaFast++;
    }
    // every one of them is the writer's own format: none may need the generic path
    expect(viaFast).toBe(20_000);
  });

  it('numbers at the edges: zeros, -0, 15 and 17 digits, exponents, huge and tiny', () => {
    const numbers = [
      '0',
      '-0',
      '0.0',
      '1',
      '-1',
      '123456789012345',
      '1234567890123456',
      '12345678901234567890',
      '0.1',
      '0.30000000000000004',
      '-0.000001',
      '999999.999999',
      '1e3',
      '1E-7',
      '2.5e+10',
      '1.7976931348623157e308',
      '5e-324',
      '9007199254740993',
      '0.1234567890123456789',
    ];
    for (const n of numbers) agrees(`{"type":"sample","t":${n},"probe":"p","trial":0}`);
    expect(fast('{"type":"sample","t":1e3,"probe":"p","trial":0}')).toBeNull(); // an exponent: the generic path
    expect(fast('{"type":"sample","t":123456789012.345,"probe":"p","trial":0}')).not.toBeNull();
  });

  it('anything unusual goes to the generic path: escapes, spaces, unknown or repeated type keys, bad numbers', () => {
    const lines = [
      '{"type":"sample","t":1,"probe":"a\\"b","trial":0}',
      '{"type":"sample","t":1,"probe":"a\\\\b","trial":0}',
      '{"type":"sample","t":1,"probe":"a\\u0041","trial":0}',
      '{"type":"sample", "t":1,"probe":"a","trial":0}',
      '{"type":"sample","t": 1,"probe":"a","trial":0}',
      '{"type":"sample","t":1,"probe":"a","trial":0} ',
      '{"type":"sample","t":1,"probe":"a","trial":0,"extra":1}',
      '{"type":"sample","t":1,"probe":"a","trial":0,"type":"cut"}',
      '{"type":"sample","t":01,"probe":"a","trial":0}',
      '{"type":"sample","t":1.,"probe":"a","trial":0}',
      '{"type":"sample","t":.5,"probe":"a","trial":0}',
      '{"type":"sample","t":-,"probe":"a","trial":0}',
      '{"type":"sample","t":+1,"probe":"a","trial":0}',
      '{"type":"sample","t":"1","probe":"a","trial":0}',
      '{"type":"sample","t":1,"probe":1,"trial":0}',
      '{"type":"sample","t":1,"probe":"a","trial":null}',
      '{"type":"sample","t":1,"probe":"a","trial":true}',
      '{"type":"sample","t":1,"probe":"a\tb","trial":0}',
      '{"type":"sample","t":1,"probe":"a","trial":0}}',
      '{"type":"sample","t":1,,"probe":"a","trial":0}',
      '{"type":"samples","t":1,"probe":"a","trial":0}',
      '{"type":"sample"',
      '{"type":"sample",}',
    ];
    for (const line of lines) expect(agrees(line), line).toBe('generic');
    // a repeated known key: JSON.parse keeps the last value at the first one's place, and so does the fast path
    expect(agrees('{"type":"sample","t":1,"probe":"a","trial":0,"t":2}')).toBe('fast');
    // names are kept by a hash of their bytes: "Aa" and "BB" share one (31 × 65 + 97 = 31 × 66 + 66), each reads as itself
    for (const name of ['Aa', 'BB', 'Aa', 'BB']) expect(fast(`{"type":"sample","t":1,"probe":"${name}","trial":0}`)?.probe).toBe(name);
    // a name in any script is plain UTF-8 bytes
    expect(agrees('{"type":"sample","t":1,"probe":"Überweisung-数据库 🚀","trial":0}')).toBe('fast');
  });

  it('a line torn anywhere is never read as a sample unless JSON.parse reads it too', () => {
    const line = JSON.stringify({ type: 'sample', t: 10716.186872, probe: 'web-kicked', trial: 3, latencyMs: 162.25, lateMs: -0.16, seq: 42, value: 12 });
    for (let cut = 0; cut < line.length; cut++) expect(agrees(line.slice(0, cut)), line.slice(0, cut)).toBe('generic');
    expect(agrees(line)).toBe('fast');
  });
});
