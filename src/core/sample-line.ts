/**
 * The reader's fast path for the one line that makes up most of a log: a
 * sample, read from its bytes without decoding the line to a string or
 * handing it to JSON.parse. A long run writes a million of them, and a
 * generic parse (decode, tokenise, build, then check the object) was most of
 * the report's fold.
 *
 * It reads exactly the lines the writer writes: a flat object that starts
 * with `{"type":"sample"`, then only the sample's own keys, with numbers and
 * one plain string (the probe's name), no spaces. Anything else (an escape, an
 * exponent, an unknown key, a space, a torn line) returns null, and the line
 * takes the generic path, so the two always agree: a line is never read
 * differently, only faster.
 *
 * Numbers of up to 15 significant digits and no exponent (the run clock's
 * times are whole nanoseconds in ms: at most 6 decimals) are built as an
 * integer over a power of ten: both are exact doubles, so the one division is
 * correctly rounded, the same double JSON.parse gives. Longer ones go through
 * Number(), which is also correctly rounded.
 */

const PREFIX = Buffer.from('{"type":"sample"');
const QUOTE = 34;
const COMMA = 44;
const MINUS = 45;
const DOT = 46;
const ZERO = 48;
const NINE = 57;
const COLON = 58;
const BACKSLASH = 92;
const CLOSE = 125;
const LOWER_E = 101;
const UPPER_E = 69;

/** 10^0 … 10^22: every one an exact double */
const POW10 = Array.from({ length: 23 }, (_, k) => Number(`1e${k}`));

/** the sample's keys as bytes, and which of them holds a string */
const KEYS: ReadonlyArray<{ name: string; bytes: Buffer; text: boolean }> = ['t', 'probe', 'trial', 'latencyMs', 'seq', 'value', 'lateMs'].map((name) => ({
  name,
  bytes: Buffer.from(name),
  text: name === 'probe',
}));
const [KEY_T, KEY_PROBE, KEY_TRIAL, KEY_LATENCY, KEY_SEQ, KEY_VALUE, KEY_LATE] = KEYS as [
  (typeof KEYS)[number],
  (typeof KEYS)[number],
  (typeof KEYS)[number],
  (typeof KEYS)[number],
  (typeof KEYS)[number],
  (typeof KEYS)[number],
  (typeof KEYS)[number],
];

/**
 * Probe names seen, by a hash of their bytes: a log names the same few probes a million times, and
 * decoding each one again made a string per line for the garbage collector. Bounded: a log with more
 * names than this decodes the rest.
 */
const NAMES = new Map<number, { bytes: Buffer; text: string }>();
const MAX_NAMES = 4096;

function nameAt(b: Buffer, from: number, to: number, hash: number): string {
  const known = NAMES.get(hash);
  if (known && known.bytes.length === to - from) {
    let same = true;
    for (let i = 0; i < known.bytes.length; i++) {
      if (known.bytes[i] !== b[from + i]) {
        same = false;
        break;
      }
    }
    if (same) return known.text;
  }
  const text = b.toString('utf8', from, to);
  if (!known && NAMES.size < MAX_NAMES) NAMES.set(hash, { bytes: Buffer.from(b.subarray(from, to)), text });
  return text;
}

function keyAt(b: Uint8Array, from: number, to: number): (typeof KEYS)[number] | null {
  const n = to - from;
  // by length and first byte first: most keys are told apart there, and only the candidate is compared
  const c = b[from];
  const k = n === 1 ? KEY_T : n === 3 ? KEY_SEQ : n === 5 ? (c === 112 ? KEY_PROBE : c === 116 ? KEY_TRIAL : KEY_VALUE) : n === 6 ? KEY_LATE : n === 9 ? KEY_LATENCY : null;
  if (k === null) return null;
  for (let i = 0; i < n; i++) if (b[from + i] !== k.bytes[i]) return null;
  return k;
}

/** The sample on bytes [start, end) of `b` (no newline), exactly as JSON.parse reads it; null when the line is not one the fast path reads. */
export function sampleFromBytes(b: Buffer, start: number, end: number): Record<string, unknown> | null {
  if (end - start <= PREFIX.length) return null;
  for (let i = 0; i < PREFIX.length; i++) if (b[start + i] !== PREFIX[i]) return null;
  const ev: Record<string, unknown> = { type: 'sample' };
  let i = start + PREFIX.length;
  for (;;) {
    const c = b[i];
    if (c === CLOSE) return i + 1 === end ? ev : null;
    if (c !== COMMA || b[i + 1] !== QUOTE) return null;
    i += 2;
    const k0 = i;
    while (i < end && b[i] !== QUOTE && b[i] !== BACKSLASH) i++;
    if (b[i] !== QUOTE || i >= end) return null;
    const key = keyAt(b, k0, i);
    if (key === null || b[i + 1] !== COLON) return null;
    i += 2;
    if (key.text) {
      if (b[i] !== QUOTE) return null;
      const s0 = ++i;
      let hash = 0;
      // a backslash (an escape) or a control byte (not JSON): the generic path decides
      while (i < end && b[i]! >= 0x20 && b[i] !== QUOTE && b[i] !== BACKSLASH) hash = (Math.imul(hash, 31) + b[i++]!) | 0;
      if (i >= end || b[i] !== QUOTE) return null;
      ev[key.name] = nameAt(b, s0, i, hash);
      i++;
      continue;
    }
    // a JSON number: -? (0 | [1-9][0-9]*) (. [0-9]+)?   (an exponent: the generic path)
    const n0 = i;
    const negative = b[i] === MINUS;
    if (negative) i++;
    let m = 0;
    let digits = 0;
    let decimals = 0;
    if (b[i] === ZERO) {
      i++;
    } else if (b[i]! > ZERO && b[i]! <= NINE) {
      while (i < end && b[i]! >= ZERO && b[i]! <= NINE) {
        m = m * 10 + (b[i]! - ZERO);
        digits++;
        i++;
      }
    } else return null;
    if (b[i] === DOT) {
      i++;
      if (!(b[i]! >= ZERO && b[i]! <= NINE)) return null;
      while (i < end && b[i]! >= ZERO && b[i]! <= NINE) {
        m = m * 10 + (b[i]! - ZERO);
        digits++;
        decimals++;
        i++;
      }
    }
    if (b[i] === LOWER_E || b[i] === UPPER_E) return null;
    // up to 15 digits the integer is exact (< 2^53) and the division by an exact power of ten rounds once
    const x = digits <= 15 ? m / POW10[decimals]! : Number(b.toString('latin1', negative ? n0 + 1 : n0, i));
    ev[key.name] = negative ? -x : x;
  }
}
