/** Shared zod building blocks for suite files, probes and injectors. */
import { z } from 'zod';
import { parseDuration } from './clock.ts';

/** A duration: "250ms", "10s", "2m", or a number of ms; ≥ 0. Parsed to ms. */
export function duration(opts: { min?: number; max?: number } = {}) {
  const min = opts.min ?? 0;
  return z.union([z.string(), z.number()]).transform((v, ctx) => {
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
    if (opts.max !== undefined && ms > opts.max) {
      ctx.addIssue({ code: 'custom', message: `expected a duration ≤ ${opts.max} ms, got ${JSON.stringify(v)}` });
      return z.NEVER;
    }
    return ms;
  });
}

/** A byte size: "64MB", "2GB", "512KiB", or a number of bytes. MB = 2^20 like the seeds' tables. */
export function byteSize() {
  return z.union([z.string(), z.number()]).transform((v, ctx) => {
    if (typeof v === 'number' && Number.isFinite(v) && v >= 0) return v;
    const m = /^\s*(\d+(?:\.\d+)?)\s*(B|KB|KiB|MB|MiB|GB|GiB)?\s*$/i.exec(String(v));
    if (!m) {
      ctx.addIssue({ code: 'custom', message: `expected a size like 64MB or 2GB, got ${JSON.stringify(v)}` });
      return z.NEVER;
    }
    const unit = (m[2] ?? 'B').toLowerCase();
    const f = unit.startsWith('k') ? 1024 : unit.startsWith('m') ? 1024 ** 2 : unit.startsWith('g') ? 1024 ** 3 : 1;
    return Math.round(Number(m[1]) * f);
  });
}

/** The fields every probe has. `kind` is the discriminator. */
export function probeBase<K extends string>(kind: K, defaults: { interval: number; tolerance?: number }) {
  return {
    name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'expected 1–64 letters, digits, "_", "." or "-"'),
    kind: z.literal(kind),
    interval: duration({ min: 1, max: 3_600_000 }).default(defaults.interval),
    tolerance: duration({ max: 3_600_000 }).default(defaults.tolerance ?? 500),
  };
}

/** A secret is never inline: the name of an environment variable or a file. */
export const secretRef = {
  passwordEnv: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected an environment variable name').optional(),
  passwordFile: z.string().min(1).optional(),
};
