/**
 * Sweeps: which blackout length the next trial gets. Pure; the runner asks a
 * Planner for the next length and shows it each finished trial's outcomes.
 *
 *  - list: the suite's lengths in order, each `repeat` times.
 *  - search: an adaptive search for every probe's breaking point that shares
 *    trials across probes. Each probe has a bracket [max survived, min failed]
 *    (its breaking point lies inside). The next length is the one that cuts
 *    the most remaining uncertainty summed over the probes still unresolved:
 *    a probe's uncertainty is log2(bracket width / resolution) bits, and a
 *    trial at x splits its bracket with the probability of each side taken
 *    as proportional to its width. A probe is resolved when its bracket is no
 *    wider than the resolution, when it survived `to` (the range is
 *    exhausted upwards) or failed at `from` (downwards), or when its outcomes
 *    are not monotonic in the length (flaky: it survived a longer blackout
 *    than one it did not survive; the trials are kept to show). The search
 *    stops when every probe is resolved, or at `maxTrials`.
 *
 * "survived" is the architecture page's (docs/architecture.md): outcome transparent or stalled. Unknown outcomes
 * (a trial that did not finish) carry no information.
 */
import type { Outcome } from '../core/events.ts';
import { formatLength, survived } from '../core/format.ts';

export type Sweep = { mode: 'list'; lengths: number[]; repeat: number } | { mode: 'search'; from: number; to: number; resolution: number; maxTrials: number };

export interface PlannedTrial {
  lengthMs: number;
  /** one sentence: why this length (recorded in trial-start.reason) */
  reason: string;
  /** machine-readable context (brackets before the trial, expected gain) */
  plan?: Record<string, unknown>;
}

export interface TrialObservation {
  index: number;
  requestedMs: number;
  outcomes: Record<string, Outcome>;
}

export type BracketStatus = 'open' | 'resolved' | 'survives-range' | 'fails-below-range' | 'flaky' | 'no-data';

export interface ProbeBracket {
  probe: string;
  /** longest requested blackout survived */
  lo: number | null;
  /** shortest requested blackout not survived */
  hi: number | null;
  status: BracketStatus;
  /** for flaky probes: the trials that contradict each other (a survived one longer than a failed one) */
  conflicts: Array<{ survived: { trial: number; ms: number }; failed: { trial: number; ms: number } }>;
  /** every informative trial of this probe: requested length → survived? */
  points: Array<{ trial: number; ms: number; survived: boolean }>;
}

export interface Planner {
  readonly sweep: Sweep;
  /** the next trial, or null when the sweep is done (see stopReason) */
  next(): PlannedTrial | null;
  observe(o: TrialObservation): void;
  brackets(): ProbeBracket[];
  stopReason(): string | null;
  /** for the live view: the number of trials when known in advance */
  readonly plannedTrials: number | null;
}

// ------------------------------------------------------------------ brackets

/** The brackets of every probe from a set of observations (pure; used by the planner and the analysis). */
export function bracketsOf(probes: string[], observations: TrialObservation[], sweep?: Sweep): ProbeBracket[] {
  return probes.map((probe) => {
    const points: ProbeBracket['points'] = [];
    for (const o of observations) {
      const oc = o.outcomes[probe];
      if (!oc || oc === 'unknown') continue;
      points.push({ trial: o.index, ms: o.requestedMs, survived: survived(oc) });
    }
    let lo: number | null = null;
    let hi: number | null = null;
    for (const p of points) {
      if (p.survived) lo = Math.max(lo ?? -Infinity, p.ms);
      else hi = Math.min(hi ?? Infinity, p.ms);
    }
    const conflicts: ProbeBracket['conflicts'] = [];
    if (lo !== null && hi !== null && lo >= hi) {
      // every survived/failed pair out of order, longest survived vs shortest failed first
      const surv = points.filter((p) => p.survived).sort((a, b) => b.ms - a.ms);
      const fail = points.filter((p) => !p.survived).sort((a, b) => a.ms - b.ms);
      for (const s of surv) for (const f of fail) if (s.ms >= f.ms && conflicts.length < 20) conflicts.push({ survived: { trial: s.trial, ms: s.ms }, failed: { trial: f.trial, ms: f.ms } });
    }
    let status: BracketStatus;
    if (!points.length) status = 'no-data';
    else if (conflicts.length) status = 'flaky';
    else if (sweep?.mode === 'search') {
      const { L, H } = virtualBracket(lo, hi, sweep);
      if (lo !== null && lo >= sweep.to) status = 'survives-range';
      else if (hi !== null && hi <= sweep.from) status = 'fails-below-range';
      else status = H - L <= sweep.resolution + 1e-9 ? 'resolved' : 'open';
    } else {
      status = hi === null ? 'survives-range' : lo === null ? 'fails-below-range' : 'resolved';
    }
    return { probe, lo, hi, status, conflicts, points };
  });
}

/** A bracket with its open ends replaced by one resolution beyond the range (so testing `from`/`to` resolves them). */
function virtualBracket(lo: number | null, hi: number | null, s: { from: number; to: number; resolution: number }): { L: number; H: number } {
  return { L: lo ?? s.from - s.resolution, H: hi ?? s.to + s.resolution };
}

// ------------------------------------------------------------------ planners

export function createPlanner(sweep: Sweep, probes: string[]): Planner {
  return sweep.mode === 'list' ? listPlanner(sweep, probes) : searchPlanner(sweep, probes);
}

function listPlanner(sweep: Extract<Sweep, { mode: 'list' }>, probes: string[]): Planner {
  const order = sweep.lengths.flatMap((l, i) => Array.from({ length: sweep.repeat }, (_, r) => ({ l, i, r })));
  const seen: TrialObservation[] = [];
  let k = 0;
  return {
    sweep,
    plannedTrials: order.length,
    next() {
      const step = order[k];
      if (!step) return null;
      k++;
      return {
        lengthMs: step.l,
        reason: `list: length ${step.i + 1} of ${sweep.lengths.length}${sweep.repeat > 1 ? `, repeat ${step.r + 1} of ${sweep.repeat}` : ''}`,
      };
    },
    observe: (o) => void seen.push(o),
    brackets: () => bracketsOf(probes, seen, sweep),
    stopReason: () => (k >= order.length ? `the list of ${order.length} trial(s) is done` : null),
  };
}

const log2 = Math.log2;

/** Remaining uncertainty of a bracket of width w, in bits of the resolution. */
function bits(w: number, res: number): number {
  return w <= res ? 0 : log2(w / res);
}

/** Expected bits a trial at x removes from the bracket (L, H). */
export function expectedGain(x: number, L: number, H: number, res: number): number {
  if (!(x > L && x < H)) return 0;
  const w = H - L;
  const pl = (x - L) / w;
  return bits(w, res) - (pl * bits(x - L, res) + (1 - pl) * bits(H - x, res));
}

/** A round step for candidate lengths: about a quarter of the resolution, on a 1-2-2.5-5 scale. */
export function gridStep(resolution: number): number {
  const raw = resolution / 4;
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= raw * 0.999) return Math.max(1, m * p);
  return Math.max(1, raw);
}

function bracketText(b: { lo: number | null; hi: number | null }): string {
  return `[${b.lo === null ? '?' : formatLength(b.lo)}, ${b.hi === null ? '?' : formatLength(b.hi)}]`;
}

function searchPlanner(sweep: Extract<Sweep, { mode: 'search' }>, probes: string[]): Planner {
  const { from, to, resolution: res } = sweep;
  const step = gridStep(res);
  const candidates: number[] = [];
  for (let x = from; x < to - 1e-9; x += step) candidates.push(Math.round(x * 1000) / 1000);
  candidates.push(to);
  const seen: TrialObservation[] = [];
  let stop: string | null = null;
  let uninformative = 0;

  return {
    sweep,
    plannedTrials: null,
    next() {
      if (stop) return null;
      const brackets = bracketsOf(probes, seen, sweep);
      const open = brackets.filter((b) => b.status === 'open' || b.status === 'no-data');
      if (!open.length) {
        stop = `every probe is resolved after ${seen.length} trial(s): ${brackets.map((b) => `${b.probe} ${b.status}`).join(', ')}`;
        return null;
      }
      if (seen.length >= sweep.maxTrials) {
        stop = `maxTrials (${sweep.maxTrials}) reached with ${open.length} probe(s) still open: ${open.map((b) => `${b.probe} ${bracketText(b)}`).join(', ')}`;
        return null;
      }
      if (uninformative >= 3) {
        stop = 'three trials in a row gave no outcome for the open probes (could not open sessions, or interrupted)';
        return null;
      }
      let best = { x: NaN, gain: -1, helped: [] as string[] };
      for (const x of candidates) {
        let gain = 0;
        const helped: string[] = [];
        for (const b of open) {
          const { L, H } = virtualBracket(b.lo, b.hi, sweep);
          const g = expectedGain(x, L, H, res);
          if (g > 1e-12) {
            gain += g;
            helped.push(b.probe);
          }
        }
        // ties go to the shorter blackout (a cheaper trial)
        if (gain > best.gain + 1e-9) best = { x, gain, helped };
      }
      if (!(best.gain > 0)) {
        stop = 'no length in the range can narrow an open bracket further';
        return null;
      }
      const n = seen.length + 1;
      const parts = open.filter((b) => best.helped.includes(b.probe)).map((b) => `${b.probe} ${bracketText(b)}`);
      const reason =
        n === 1 && seen.length === 0
          ? `search step 1: ${formatLength(best.x)} halves the range [${formatLength(from)}, ${formatLength(to)}] for all ${open.length} probe(s)`
          : `search step ${n}: ${formatLength(best.x)} cuts the most remaining uncertainty (${best.gain.toFixed(2)} bits expected) over ${parts.join(', ')}`;
      return {
        lengthMs: best.x,
        reason,
        plan: {
          step: n,
          expectedGainBits: Math.round(best.gain * 1000) / 1000,
          brackets: Object.fromEntries(brackets.map((b) => [b.probe, { lo: b.lo, hi: b.hi, status: b.status }])),
          splits: best.helped,
        },
      };
    },
    observe(o) {
      const before = bracketsOf(probes, seen, sweep);
      seen.push(o);
      const informative = before.some((b) => (b.status === 'open' || b.status === 'no-data') && o.outcomes[b.probe] && o.outcomes[b.probe] !== 'unknown');
      uninformative = informative ? 0 : uninformative + 1;
    },
    brackets: () => bracketsOf(probes, seen, sweep),
    stopReason: () => stop,
  };
}

/** Trials a linear sweep needs for brackets no wider than `resolution` over [from, to] (from, from+res, …, to). */
export function linearSweepTrials(from: number, to: number, resolution: number): number {
  return Math.ceil((to - from) / resolution - 1e-9) + 1;
}

/**
 * Runs a planner against synthetic probes with known breaking points (a probe
 * survives a blackout ≤ its threshold), for tests and the benchmark.
 */
export function simulateSearch(
  sweep: Sweep,
  thresholds: Record<string, number | ((ms: number, trial: number) => boolean)>,
): { trials: Array<{ ms: number; reason: string }>; brackets: ProbeBracket[]; stopReason: string | null } {
  const probes = Object.keys(thresholds);
  const planner = createPlanner(sweep, probes);
  const trials: Array<{ ms: number; reason: string }> = [];
  for (let i = 0; i < 1000; i++) {
    const p = planner.next();
    if (!p) break;
    trials.push({ ms: p.lengthMs, reason: p.reason });
    const outcomes: Record<string, Outcome> = {};
    for (const [name, th] of Object.entries(thresholds)) {
      const ok = typeof th === 'function' ? th(p.lengthMs, i) : p.lengthMs <= th;
      outcomes[name] = ok ? 'stalled' : 'failed';
    }
    planner.observe({ index: i, requestedMs: p.lengthMs, outcomes });
  }
  return { trials, brackets: planner.brackets(), stopReason: planner.stopReason() };
}
