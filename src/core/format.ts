/**
 * The one place that turns numbers and outcomes into text: every report, the
 * live view and the CLI use these, so a length reads the same everywhere.
 *
 *  - formatMs: a measured duration (an outage, a recovery): fixed precision,
 *    so columns line up ("850 ms", "2.00 s", "13.4 s", "2.5 min");
 *  - formatLength: a length someone asked for or configured (a blackout, a
 *    timeout, a bracket): the shortest exact form ("500 ms", "2 s", "1.25 s");
 *    0 is a blackout of the injector's natural length (a real migration);
 *  - formatBytes: sizes in the units of the migration table;
 *  - OUTCOME_GLYPH: one glyph per outcome, in every report and view;
 *  - fileNamePart: a name as one part of a file or folder name.
 */
import { pc } from './color.ts';
import type { Outcome } from './events.ts';

export function formatMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '–';
  if (!Number.isFinite(ms)) return '∞';
  if (Math.abs(ms) < 1000) return `${Math.round(ms)} ms`;
  if (Math.abs(ms) < 120_000) return `${(ms / 1000).toFixed(Math.abs(ms) < 10_000 ? 2 : 1)} s`;
  return `${(ms / 60_000).toFixed(1)} min`;
}

export function formatLength(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '–';
  if (!Number.isFinite(ms)) return '∞';
  if (ms === 0) return 'natural length';
  return Math.abs(ms) >= 1000 ? `${+(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`;
}

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** a name as one part of a file or folder name: anything but letters, digits, . _ - becomes _ (no /, no space) */
export function fileNamePart(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]/g, '_');
}

export function formatBytes(b: number): string {
  if (!Number.isFinite(b)) return '∞';
  if (b >= GiB) return `${+(b / GiB).toFixed(b >= 10 * GiB ? 0 : 1)} GB`;
  return `${Math.round(b / MiB)} MB`;
}

export const OUTCOME_GLYPH: Record<Outcome, string> = {
  transparent: '✓',
  stalled: '‖',
  recovered: '↻',
  failed: '✗',
  unknown: '?',
};

/** A probe survives a blackout when its session carried on: transparent or stalled (recovered means a new session). */
export const survived = (o: Outcome): boolean => o === 'transparent' || o === 'stalled';

/** The colour of an outcome on a terminal (green survived, yellow stalled, red lost or failed, dim unknown). */
export function outcomeColour(o: Outcome): (s: string) => string {
  return o === 'transparent' ? pc.green : o === 'stalled' ? pc.yellow : o === 'unknown' ? pc.dim : pc.red;
}

/**
 * One session's state as a terminal cell: LOST with its message, opening…,
 * STALLED with its silence (a session silent for over a second), or ok with
 * its latency. The live view and the manual injector's screen show the same.
 */
export function sessionStateText(s: { lastOkAt: number | null; latencyMs: number | null; lost: string | null; lastError?: string | null }, now: number): string {
  const since = s.lastOkAt === null ? null : now - s.lastOkAt;
  if (s.lost) return pc.red(`LOST  ${s.lost.slice(0, 60)}`);
  if (since === null) return pc.dim('opening…');
  if (since > 1000) return pc.yellow(`STALLED ${formatMs(since)}`) + (s.lastError ? pc.dim(`  ${s.lastError.slice(0, 50)}`) : '');
  return pc.green('ok') + pc.dim(s.latencyMs !== null ? `  ${s.latencyMs.toFixed(1)} ms` : '');
}
