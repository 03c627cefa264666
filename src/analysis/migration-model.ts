/**
 * The quick-migration model of the seeds: downtime ≈ 2 × VM memory / storage
 * link throughput (save the memory, then restore it). 512 MB on 1 GbE iSCSI
 * (125 MB/s) ≈ 8 s; 2 Gb FC ≈ 4 s; 4 Gb FC ≈ 2 s; 8 GB on 1 GbE ≈ 2 min.
 * MB = 2^20 bytes, like the seeds' tables. Live migration pauses the VM for
 * well under a second whatever its size: it has its own line in the verdict.
 *
 * Pure: besides the model, the verdict of a run — "quick migration is safe
 * for VMs up to X GB on link L", per probe and for the application (the
 * weakest session decides).
 */
import { formatBytes, formatLength } from '../core/format.ts';
import { z } from 'zod';
import { anyCase, byteSize, duration, inputForms } from '../core/schema-util.ts';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

/** Storage links of the seeds' table, payload throughput in MB/s. */
export const LINKS = {
  '1GbE': { label: '1 GbE iSCSI', mbPerSec: 125 },
  '2GbFC': { label: '2 Gb FC', mbPerSec: 250 },
  '4GbFC': { label: '4 Gb FC', mbPerSec: 500 },
  '10GbE': { label: '10 GbE', mbPerSec: 1250 },
} as const;
export type LinkName = keyof typeof LINKS;

/** The VM memory sizes of the seeds' table. */
export const SEED_MEMORY = [512 * MiB, 1 * GiB, 2 * GiB, 4 * GiB, 8 * GiB];

/** Live migration: the VM's final pause is sub-second (docs/architecture.md). */
export const DEFAULT_LIVE_PAUSE_MS = 1000;

/** "1GbE", "1 GbE iSCSI", "2Gb FC", "4gbfc", "10GbE" → the canonical name, or null. */
export function normalizeLink(s: string): LinkName | null {
  const k = s
    .toLowerCase()
    .replace(/[\s_-]+/g, '')
    .replace(/iscsi$/, '');
  for (const name of Object.keys(LINKS) as LinkName[]) if (name.toLowerCase() === k) return name;
  return null;
}

/** A link in a suite: one of LINKS by name, or a throughput in MB/s. */
export const linkSchema = z.union([z.string().max(40), z.number().positive().max(1e7)]).transform((v, ctx) => {
  if (typeof v === 'number') return { name: `${v} MB/s`, bytesPerSec: v * MiB };
  const n = normalizeLink(v);
  if (!n) {
    ctx.addIssue({ code: 'custom', message: `unknown link "${v}": expected one of ${Object.keys(LINKS).join(', ')} or a throughput in MB/s` });
    return z.NEVER;
  }
  return { name: n as string, bytesPerSec: LINKS[n].mbPerSec * MiB };
});
export type Link = z.infer<typeof linkSchema>;

/** Model quick-migration downtime in ms: save + restore of `memoryBytes` over the link. */
export function quickMigrationMs(memoryBytes: number, link: { bytesPerSec: number }): number {
  return ((2 * memoryBytes) / link.bytesPerSec) * 1000;
}

/** The largest VM memory (bytes) whose model downtime fits in `toleranceMs`. */
export function maxMemoryFor(toleranceMs: number, link: { bytesPerSec: number }): number {
  return ((toleranceMs / 1000) * link.bytesPerSec) / 2;
}

// ---------------------------------------------------------------- suite block

/** A throughput: a number of MB/s, or "125MB/s", "1.5GB/s", "1Gbit/s", "800Mbit/s". */
export const throughput = z.union([z.number().positive().max(1e7), z.string().max(40)]).transform((v, ctx) => {
  if (typeof v === 'number') return v;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(MB|MiB|GB|GiB|Mbit|Gbit|Mb|Gb)\/s\s*$/i.exec(v);
  if (!m) {
    ctx.addIssue({ code: 'custom', message: `expected a throughput like 125MB/s, 1GB/s or 1Gbit/s, got ${JSON.stringify(v)}` });
    return z.NEVER;
  }
  const n = Number(m[1]);
  const u = m[2]!;
  // result in MB/s (MB = 2^20 bytes, like the seeds); "Mb"/"Gb" and "…bit" are bits, decimal
  if (u === 'Mb' || /^mbit$/i.test(u)) return (n * 1e6) / 8 / MiB;
  if (u === 'Gb' || /^gbit$/i.test(u)) return (n * 1e9) / 8 / MiB;
  return /^g/i.test(u) ? n * 1024 : n;
});
inputForms.add(throughput, {
  type: ['string', 'number'],
  pattern: `^\\s*\\d+(\\.\\d+)?\\s*(${[...new Set(['MB', 'MiB', 'GB', 'GiB', 'Mbit', 'Gbit', 'Mb', 'Gb'].map(anyCase))].join('|')})/s\\s*$`,
  exclusiveMinimum: 0,
  maximum: 1e7,
});

/**
 * `migration:` in a suite (all optional):
 *   links:  { "1GbE iSCSI": 125MB/s, "16Gb FC": 1600MB/s }   (replaces the seed links)
 *   memory: [512MB, 1GB, 2GB, 4GB, 8GB, 16GB]                 (the sizes in the verdict table)
 *   livePause: 300ms                                          (live migration's pause to judge)
 */
export const migrationSchema = z
  .strictObject({
    links: z
      .record(z.string().min(1).max(40), throughput)
      .refine((r) => Object.keys(r).length <= 20, { message: 'expected at most 20 links' })
      .optional()
      .describe('the storage links of the verdict table, by name: { "1GbE iSCSI": 125MB/s } (replaces the built-in ones)'),
    memory: z.array(byteSize()).min(1).max(20).optional().describe('the VM memory sizes in the verdict table ("512MB", "4GB", …)'),
    livePause: duration({ min: 1, max: 60_000 }).optional().describe("the live migration's pause to judge"),
  })
  .optional();

export interface NamedLink {
  name: string;
  /** payload throughput, MB/s (MB = 2^20 bytes) */
  mbPerSec: number;
}

export interface MigrationSettings {
  links: NamedLink[];
  memoryBytes: number[];
  livePauseMs: number;
}

export function defaultLinks(): NamedLink[] {
  return Object.values(LINKS).map((l) => ({ name: l.label, mbPerSec: l.mbPerSec }));
}

/** The settings from a run's recorded (validated) suite config; tolerant of anything missing. */
export function migrationSettings(config: unknown): MigrationSettings {
  const m = (config as { migration?: { links?: unknown; memory?: unknown; livePause?: unknown } } | null)?.migration;
  let links = defaultLinks();
  if (m?.links && typeof m.links === 'object') {
    const entries = Object.entries(m.links as Record<string, unknown>).filter((e): e is [string, number] => typeof e[1] === 'number' && e[1] > 0);
    if (entries.length) links = entries.map(([name, mbPerSec]) => ({ name, mbPerSec }));
  }
  const memoryBytes = Array.isArray(m?.memory) && m.memory.every((x) => typeof x === 'number' && x > 0) ? (m.memory as number[]) : SEED_MEMORY;
  const livePauseMs = typeof m?.livePause === 'number' && m.livePause > 0 ? m.livePause : DEFAULT_LIVE_PAUSE_MS;
  return { links, memoryBytes, livePauseMs };
}

export const bytesPerSec = (l: NamedLink): number => l.mbPerSec * MiB;

// ---------------------------------------------------------------- the verdict

/** What a probe's sweep showed, as the verdict needs it. */
export interface Tolerance {
  probe: string;
  kind: string;
  /** the longest blackout it survived (ms), null when it survived none */
  maxSurvivedMs: number | null;
  /** the shortest blackout it did not survive, null when it survived every one */
  minFailedMs: number | null;
  flaky: boolean;
}

export interface LinkVerdict {
  link: string;
  mbPerSec: number;
  /** the largest VM memory whose model downtime the probe survived; 0 = none */
  safeUpToBytes: number;
  /** true when the probe never failed: the real limit is higher than the sweep showed */
  atLeast: boolean;
  text: string;
}

export interface ProbeMigrationVerdict {
  probe: string;
  kind: string;
  toleranceMs: number | null;
  links: LinkVerdict[];
}

export interface MigrationVerdict {
  settings: MigrationSettings;
  perProbe: ProbeMigrationVerdict[];
  /** the weakest session: the probe with the smallest demonstrated tolerance */
  limitedBy: string | null;
  /** the application's verdict, per link (weakest session decides) */
  overall: LinkVerdict[];
  /** one sentence per link */
  headline: string;
  /** VM memory × link: 'safe' | 'unsafe' | 'untested' (model downtime beyond every survived trial but below no failure) */
  table: Array<{ memoryBytes: number; cells: Array<{ link: string; downtimeMs: number; status: 'safe' | 'unsafe' | 'unproven' }> }>;
  live: { pauseMs: number; status: 'safe' | 'unsafe' | 'unproven'; text: string; failing: string[] };
  caveats: string[];
}

function linkVerdictFor(t: Tolerance | null, link: NamedLink): LinkVerdict {
  const tol = t?.maxSurvivedMs ?? 0;
  const safe = t && t.maxSurvivedMs !== null ? maxMemoryFor(tol, { bytesPerSec: bytesPerSec(link) }) : 0;
  const atLeast = !!t && t.minFailedMs === null && t.maxSurvivedMs !== null;
  const text = safe <= 0 ? `not safe at any VM size on ${link.name}` : `safe for VMs up to ${atLeast ? 'at least ' : ''}${formatBytes(safe)} on ${link.name}`;
  return { link: link.name, mbPerSec: link.mbPerSec, safeUpToBytes: safe, atLeast, text };
}

/**
 * The verdict: each probe's tolerance T (the longest blackout it was seen to
 * survive — a demonstrated figure, not an interpolation) becomes "safe for VMs
 * up to T × throughput / 2 on link L"; the application's verdict is its
 * weakest session's.
 */
export function migrationVerdict(tolerances: Tolerance[], settings: MigrationSettings): MigrationVerdict {
  const perProbe = tolerances.map((t) => ({
    probe: t.probe,
    kind: t.kind,
    toleranceMs: t.maxSurvivedMs,
    links: settings.links.map((l) => linkVerdictFor(t, l)),
  }));
  const caveats: string[] = [];
  // the weakest session: smallest demonstrated tolerance (none survived = 0)
  let weakest: Tolerance | null = null;
  for (const t of tolerances) {
    const v = t.maxSurvivedMs ?? 0;
    if (!weakest || v < (weakest.maxSurvivedMs ?? 0) || (v === (weakest.maxSurvivedMs ?? 0) && t.minFailedMs !== null && weakest.minFailedMs === null)) weakest = t;
  }
  for (const t of tolerances)
    if (t.flaky) caveats.push(`${t.probe}: outcomes were not monotonic in blackout length (flaky); its tolerance is the longest blackout it survived, which may not be repeatable`);
  const neverFailed = tolerances.filter((t) => t.minFailedMs === null && t.maxSurvivedMs !== null);
  // the application is only as tolerant as its weakest session; if the weakest never failed, the figure is a lower bound
  const overall = settings.links.map((l) => {
    const v = linkVerdictFor(weakest, l);
    if (weakest && weakest.minFailedMs === null && tolerances.some((t) => t.minFailedMs !== null)) v.atLeast = false;
    return v;
  });
  const headline = !weakest
    ? 'No probe ran: no verdict.'
    : weakest.maxSurvivedMs === null
      ? `Quick migration is not safe for this application at any VM size: ${weakest.probe} did not survive even the shortest blackout tried (${formatLength(weakest.minFailedMs)}).`
      : `Quick migration is safe for this application for VMs up to ${overall.map((o) => `${o.atLeast ? '≥ ' : ''}${formatBytes(o.safeUpToBytes)} on ${o.link}`).join(', ')}` +
        (neverFailed.length === tolerances.length
          ? ` (every session survived every blackout tried, up to ${formatLength(weakest.maxSurvivedMs)}; longer blackouts were not tried).`
          : weakest.flaky
            ? `; limited by ${weakest.probe} (${weakest.kind}), whose outcomes were not consistent (it survived up to ${formatLength(weakest.maxSurvivedMs)} but also failed at ${formatLength(weakest.minFailedMs)}).`
            : `; limited by ${weakest.probe} (${weakest.kind}), which survived ${formatLength(weakest.maxSurvivedMs)} but not ${formatLength(weakest.minFailedMs)}.`);

  const table = settings.memoryBytes.map((memoryBytes) => ({
    memoryBytes,
    cells: settings.links.map((l) => {
      const downtimeMs = quickMigrationMs(memoryBytes, { bytesPerSec: bytesPerSec(l) });
      let status: 'safe' | 'unsafe' | 'unproven' = 'unproven';
      if (tolerances.length && tolerances.every((t) => t.maxSurvivedMs !== null && downtimeMs <= t.maxSurvivedMs)) status = 'safe';
      else if (tolerances.some((t) => t.minFailedMs !== null && downtimeMs >= t.minFailedMs)) status = 'unsafe';
      return { link: l.name, downtimeMs, status };
    }),
  }));

  const pause = settings.livePauseMs;
  const failing = tolerances.filter((t) => t.minFailedMs !== null && t.minFailedMs <= pause).map((t) => t.probe);
  const unproven = tolerances.filter((t) => !failing.includes(t.probe) && (t.maxSurvivedMs === null || t.maxSurvivedMs < pause)).map((t) => t.probe);
  const live: MigrationVerdict['live'] = failing.length
    ? {
        pauseMs: pause,
        status: 'unsafe',
        failing,
        text: `Live migration (pause ≤ ${formatLength(pause)}): NOT safe — ${failing.join(', ')} did not survive a blackout of ${formatLength(pause)} or less.`,
      }
    : unproven.length
      ? {
          pauseMs: pause,
          status: 'unproven',
          failing: [],
          text: `Live migration (pause ≤ ${formatLength(pause)}): not demonstrated — ${unproven.join(', ')} had no survived blackout of ${formatLength(pause)} or longer.`,
        }
      : { pauseMs: pause, status: 'safe', failing: [], text: `Live migration (pause ≤ ${formatLength(pause)}): safe — every session survived blackouts of ${formatLength(pause)} and longer.` };

  return { settings, perProbe, limitedBy: weakest?.probe ?? null, overall, headline, table, live, caveats };
}
