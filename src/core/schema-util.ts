/** Shared zod building blocks for suite files, probes and injectors. */
import { z } from 'zod';
import { parseDuration } from './clock.ts';

/**
 * The longest duration any field takes unless it says otherwise: 24 h. Node's
 * timers fire at once for 2^31 ms (24.8 days) or more, so an unbounded
 * `blackouts: [600h]` would restore immediately.
 */
export const MAX_DURATION_MS = 24 * 3_600_000;
/** The largest byte size any field takes unless it says otherwise: 1 TiB. */
export const MAX_BYTES = 1024 ** 4;

/**
 * What a user may write for a field zod reads through a transform (a duration,
 * a size, a throughput), as JSON Schema: the transform's input side alone says
 * only "a string or a number". The suite's JSON Schema (run/suite-schema.ts)
 * puts this in place of it. A bound on the written string ("1ms" below a
 * minimum of 1 s) is beyond a pattern: only `validate` checks it.
 */
export interface InputForm {
  type: Array<'string' | 'number'>;
  /** the strings accepted (JSON Schema patterns have no flags: case-insensitive units are spelled out) */
  pattern: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
}
export const inputForms = z.registry<InputForm>();

/** a number and a unit as parseDuration (core/clock.ts) reads them; negative durations are refused anyway */
export const DURATION_PATTERN = '^\\s*\\d+(\\.\\d+)?\\s*(ms|s|m|h)?\\s*$';

/** `[Kk][Ii][Bb]`: a case-insensitive word in a pattern without flags */
export const anyCase = (word: string) => word.replace(/[A-Za-z]/g, (c) => `[${c.toUpperCase()}${c.toLowerCase()}]`);

/** A duration: "250ms", "10s", "2m", or a number of ms; ≥ 0 and ≤ max (default 24 h). Parsed to ms. */
export function duration(opts: { min?: number; max?: number } = {}) {
  const min = opts.min ?? 0;
  const max = Math.min(opts.max ?? MAX_DURATION_MS, MAX_DURATION_MS);
  const schema = z.union([z.string(), z.number()]).transform((v, ctx) => {
    let ms: number;
    try {
      ms = parseDuration(v);
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message });
      return z.NEVER;
    }
    if (ms < min) {
      ctx.addIssue({ code: 'custom', message: `expected a duration ≥ ${min} ms, got ${JSON.stringify(v)}` });
      return z.NEVER;
    }
    if (!(ms <= max)) {
      ctx.addIssue({ code: 'custom', message: `expected a duration ≤ ${max} ms (${fmtMax(max)}), got ${JSON.stringify(v)}` });
      return z.NEVER;
    }
    return ms;
  });
  inputForms.add(schema, { type: ['string', 'number'], pattern: DURATION_PATTERN, minimum: min, maximum: max });
  return schema;
}

function fmtMax(ms: number): string {
  return ms % 3_600_000 === 0 ? `${ms / 3_600_000} h` : ms % 60_000 === 0 ? `${ms / 60_000} min` : ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}

/** A byte size: "64MB", "2GB", "512KiB", or a number of bytes; ≤ max (default 1 TiB). MB = 2^20 like the seeds' tables. */
export function byteSize(opts: { max?: number } = {}) {
  const max = Math.min(opts.max ?? MAX_BYTES, MAX_BYTES);
  const schema = z.union([z.string(), z.number()]).transform((v, ctx) => {
    let bytes: number;
    if (typeof v === 'number' && Number.isFinite(v) && v >= 0) bytes = v;
    else {
      const m = /^\s*(\d+(?:\.\d+)?)\s*(B|KB|KiB|MB|MiB|GB|GiB|TB|TiB)?\s*$/i.exec(String(v));
      if (!m) {
        ctx.addIssue({ code: 'custom', message: `expected a size like 64MB or 2GB, got ${JSON.stringify(v)}` });
        return z.NEVER;
      }
      const unit = (m[2] ?? 'B').toLowerCase();
      const f = unit.startsWith('k') ? 1024 : unit.startsWith('m') ? 1024 ** 2 : unit.startsWith('g') ? 1024 ** 3 : unit.startsWith('t') ? 1024 ** 4 : 1;
      bytes = Math.round(Number(m[1]) * f);
    }
    if (bytes > max) {
      ctx.addIssue({ code: 'custom', message: `expected a size ≤ ${max} bytes (${max / 1024 ** 3} GiB), got ${JSON.stringify(v)}` });
      return z.NEVER;
    }
    return bytes;
  });
  const units = ['B', 'KB', 'KiB', 'MB', 'MiB', 'GB', 'GiB', 'TB', 'TiB'].map(anyCase).join('|');
  inputForms.add(schema, { type: ['string', 'number'], pattern: `^\\s*\\d+(\\.\\d+)?\\s*(${units})?\\s*$`, minimum: 0, maximum: max });
  return schema;
}

/** The fields every probe has. `kind` is the discriminator. */
export function probeBase<K extends string>(kind: K, defaults: { interval: number; tolerance?: number }) {
  return {
    name: z
      .string()
      .regex(/^[A-Za-z0-9_.-]{1,64}$/, 'expected 1–64 letters, digits, "_", "." or "-"')
      .describe("the probe's name in the report (unique in the suite; `expect` refers to it)"),
    kind: z.literal(kind).describe('the probe kind'),
    interval: duration({ min: 1, max: 3_600_000 }).default(defaults.interval).describe('how often the probe sends a request or takes a sample ("100ms", "1s" or a number of ms)'),
    tolerance: duration({ max: 3_600_000 })
      .default(defaults.tolerance ?? 500)
      .describe('a gap between samples longer than interval + tolerance counts as a stall'),
  };
}

/** A secret is never inline: the name of an environment variable or a file. */
export const secretRef = {
  passwordEnv: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected an environment variable name')
    .optional()
    .describe('the environment variable holding the password (never the password itself)'),
  passwordFile: z.string().min(1).optional().describe('a file holding the password'),
};

/** A regular expression a user writes as a string (a suite field): refused when it does not compile, naming `what`. */
export function regexString(what: string) {
  return z
    .string()
    .min(1)
    .superRefine((v, ctx) => {
      try {
        new RegExp(v);
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: `expected a regular expression for ${what}: ${(e as Error).message}` });
      }
    });
}
