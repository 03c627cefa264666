/**
 * A real migration reports its own figures (QEMU's `query-migrate`: downtime,
 * total time; the quick migration's stop→cont against the seed model). The
 * report sets them beside what the harness measured — the outage each session
 * saw — because the two differ (the bridge relearning the MAC, TCP backoff),
 * and that difference is what an application lives through.
 */
import type { TrialResult } from '../analysis/analysis.ts';

export interface FigureRow {
  label: string;
  ms: number;
  source: 'hypervisor' | 'harness';
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

export function hypervisorFigures(t: TrialResult): FigureRow[] {
  const rows: FigureRow[] = [];
  for (const info of t.injectorInfo) {
    const push = (label: string, v: unknown) => {
      const ms = num(v);
      if (ms !== null) rows.push({ label, ms, source: 'hypervisor' });
    };
    push('QEMU-reported downtime', info.qemuDowntimeMs);
    push('QEMU stop → resume (its events)', info.stopToResumeMs);
    push('QEMU total migration time', info.qemuTotalTimeMs);
    push('quick migration stop → cont', info.stopToContMs);
    push('seed model downtime', info.modelMs);
    const save = info.save as Record<string, unknown> | undefined;
    push('QEMU save (state to file)', info.saveMs ?? save?.totalTimeMs);
    push('QEMU restore (file to new QEMU)', info.restoreMs);
  }
  if (!rows.length) return [];
  if (t.injected) rows.push({ label: 'injected window (cut → restore)', ms: t.injected.durationMs, source: 'harness' });
  for (const [name, r] of Object.entries(t.probes)) {
    if (r.observedOutageMs !== null) rows.push({ label: `outage seen by ${name} (${r.kind})`, ms: r.observedOutageMs, source: 'harness' });
  }
  return rows;
}
