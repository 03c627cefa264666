/**
 * The quick-migration model of the seeds: downtime ≈ 2 × VM memory / storage
 * link throughput (save the memory, then restore it). 512 MB on 1 GbE iSCSI
 * (125 MB/s) ≈ 8 s; 2 Gb FC ≈ 4 s; 4 Gb FC ≈ 2 s; 8 GB on 1 GbE ≈ 2 min.
 * MB = 2^20 bytes, like the seeds' tables.
 */
import { z } from 'zod';

const MiB = 1024 ** 2;

/** Storage links of the seeds' table, payload throughput in MB/s. */
export const LINKS = {
  '1GbE': { label: '1 GbE iSCSI', mbPerSec: 125 },
  '2GbFC': { label: '2 Gb FC', mbPerSec: 250 },
  '4GbFC': { label: '4 Gb FC', mbPerSec: 500 },
  '10GbE': { label: '10 GbE', mbPerSec: 1250 },
} as const;
export type LinkName = keyof typeof LINKS;

/** "1GbE", "1 GbE iSCSI", "2Gb FC", "4gbfc", "10GbE" → the canonical name, or null. */
export function normalizeLink(s: string): LinkName | null {
  const k = s.toLowerCase().replace(/[\s_-]+/g, '').replace(/iscsi$/, '');
  for (const name of Object.keys(LINKS) as LinkName[]) if (name.toLowerCase() === k) return name;
  return null;
}

/** A link in a suite: one of LINKS by name, or a throughput in MB/s. */
export const linkSchema = z.union([z.string(), z.number().positive()]).transform((v, ctx) => {
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
