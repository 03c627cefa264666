/** The tolerance matrix (probe × blackout length), shared by every reporter. */
import { formatLength } from '../core/format.ts';
import type { Analysis } from '../analysis/analysis.ts';
import type { Outcome } from '../core/events.ts';

export interface MatrixCell {
  trial: number;
  outcome: Outcome;
  observedOutageMs: number | null;
  injectedMs: number | null;
}

export interface Matrix {
  /** requested lengths, ascending, distinct */
  lengths: number[];
  probes: string[];
  cells: Record<string, Record<number, MatrixCell[]>>;
}

export function toleranceMatrix(a: Analysis): Matrix {
  const lengths = [...new Set(a.trials.map((t) => t.requestedMs))].sort((x, y) => x - y);
  const probes = a.probeInfo.map((p) => p.name);
  const cells: Matrix['cells'] = {};
  for (const p of probes) {
    cells[p] = {};
    for (const t of a.trials) {
      const r = t.probes[p];
      if (!r) continue;
      (cells[p]![t.requestedMs] ??= []).push({ trial: t.index, outcome: r.outcome, observedOutageMs: r.observedOutageMs, injectedMs: t.injected?.durationMs ?? null });
    }
  }
  return { lengths, probes, cells };
}

/** a column's blackout length (0: the injector's own length, a real migration) */
export const lengthLabel = (ms: number): string => formatLength(ms);
