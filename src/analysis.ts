/**
 * Analysis: a pure function of the events. Per trial the injected window; per
 * probe its observed outage, recovery time, outcome and errors; per probe over
 * the run the largest blackout it survived and the smallest it did not.
 *
 * Definitions (DESIGN.md):
 *  - effective interval: the median gap between good samples before the cut
 *    (ping -i 0.01 really sends every 16 ms; measuring beats trusting config);
 *  - observed outage: the longest gap between good samples that overlaps the
 *    injected window, minus one effective interval;
 *  - recovery: restore → first good sample after it;
 *  - outcome: transparent (no gap beyond interval + tolerance), stalled (a
 *    longer gap, same session, no error reached the application), recovered
 *    (session lost, the probe's reconnect policy brought a new one), failed
 *    (an error reached the application, a verification failed, or no recovery
 *    before the recovery window closed), unknown (the trial never finished).
 *  - a probe survives a trial when it is transparent or stalled.
 */
import type { BlackoutEvent, EventOf, Outcome, ProbeInfo } from './events.ts';

export interface ProbeErrorSummary {
  t: number;
  message: string;
  code?: string;
  fatal: boolean;
}

export interface ProbeTrialResult {
  kind: string;
  outcome: Outcome;
  /** the longest gap overlapping the blackout, minus one interval; null when the session never came back */
  observedOutageMs: number | null;
  /** restore → first good sample; null when none came */
  recoveryMs: number | null;
  /** the cut → the first sample that missed its interval (detection edge) */
  detectedAfterMs: number | null;
  effectiveIntervalMs: number;
  samples: number;
  /** first and last good sample around the outage, run clock */
  lastOkBeforeMs: number | null;
  firstOkAfterMs: number | null;
  sessionsLost: number;
  reconnects: number;
  errors: ProbeErrorSummary[];
  verifications: Array<{ ok: boolean; message: string; data?: Record<string, unknown> }>;
  /** one sentence: why this outcome */
  reason: string;
  /** spans of steady good samples [from, to] on the run clock, for timelines */
  segments: Array<[number, number]>;
}

export interface TrialResult {
  index: number;
  requestedMs: number;
  /** false when the run ended before the trial did */
  complete: boolean;
  startedAt: number;
  endedAt: number | null;
  injected: { cutAt: number; restoredAt: number; durationMs: number; cutBefore: number; restoreBefore: number; deadline: number; restoreReason: string } | null;
  injectorInfo: Array<Record<string, unknown>>;
  probes: Record<string, ProbeTrialResult>;
}

export interface ProbeRunResult {
  kind: string;
  info: ProbeInfo;
  maxSurvivedMs: number | null;
  minFailedMs: number | null;
  /** outcomes by trial index */
  outcomes: Outcome[];
}

export interface ExpectationResult {
  probe: string;
  survivesMs: number;
  passed: boolean;
  message: string;
}

export interface Analysis {
  suite: string;
  runId: string;
  startedWallMs: number;
  host: string;
  version: string;
  target: { name: string; address: string };
  injector: Record<string, unknown> & { kind: string };
  config: unknown;
  probeInfo: ProbeInfo[];
  complete: boolean;
  exitCode: number | null;
  endReason: string | null;
  preflight: Array<EventOf<'preflight'>>;
  heal: string[];
  trials: TrialResult[];
  probes: Record<string, ProbeRunResult>;
  expectations: ExpectationResult[];
  passed: boolean;
  attachments: Array<EventOf<'attachment'>>;
}

export function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export const survived = (o: Outcome): boolean => o === 'transparent' || o === 'stalled';

interface TrialEvents {
  start: EventOf<'trial-start'>;
  end: EventOf<'trial-end'> | null;
  cut: EventOf<'cut'> | null;
  restore: EventOf<'restore'> | null;
  info: Array<Record<string, unknown>>;
  byProbe: Map<string, BlackoutEvent[]>;
}

export function analyze(events: readonly BlackoutEvent[]): Analysis {
  const start = events[0];
  if (!start || start.type !== 'run-start') throw new Error('the event log does not begin with run-start');
  // expectations travel in the run's own record of its suite, so a report needs nothing but the log
  const expectations = ((start.config as { expect?: Record<string, { survives?: number }> } | null)?.expect ?? {});
  const runEnd = events.find((e): e is EventOf<'run-end'> => e.type === 'run-end') ?? null;
  const trialsEv = new Map<number, TrialEvents>();
  for (const e of events) {
    if (e.type === 'trial-start') trialsEv.set(e.trial, { start: e, end: null, cut: null, restore: null, info: [], byProbe: new Map() });
    else if ('trial' in e && typeof e.trial === 'number') {
      const tr = trialsEv.get(e.trial);
      if (!tr) continue;
      if (e.type === 'trial-end') tr.end = e;
      else if (e.type === 'cut') tr.cut = e;
      else if (e.type === 'restore') tr.restore = e;
      else if (e.type === 'injector-info') tr.info.push(e.data);
      else if ('probe' in e && typeof e.probe === 'string') {
        const list = tr.byProbe.get(e.probe) ?? [];
        list.push(e);
        tr.byProbe.set(e.probe, list);
      }
    }
  }

  const trials: TrialResult[] = [];
  for (const [index, tr] of [...trialsEv.entries()].sort((a, b) => a[0] - b[0])) {
    const injected =
      tr.cut && tr.restore
        ? {
            cutAt: tr.cut.t,
            restoredAt: tr.restore.t,
            durationMs: tr.restore.t - tr.cut.t,
            cutBefore: tr.cut.before,
            restoreBefore: tr.restore.before,
            deadline: tr.cut.deadline,
            restoreReason: tr.restore.reason,
          }
        : null;
    const probes: Record<string, ProbeTrialResult> = {};
    for (const info of start.probes) {
      probes[info.name] = analyzeProbe(info, tr.byProbe.get(info.name) ?? [], injected, tr.end !== null);
    }
    trials.push({
      index,
      requestedMs: tr.start.requestedMs,
      complete: tr.end !== null,
      startedAt: tr.start.t,
      endedAt: tr.end?.t ?? null,
      injected,
      injectorInfo: tr.info,
      probes,
    });
  }

  const probes: Record<string, ProbeRunResult> = {};
  for (const info of start.probes) {
    let maxSurvivedMs: number | null = null;
    let minFailedMs: number | null = null;
    for (const t of trials) {
      const r = t.probes[info.name];
      if (!r || !t.injected || r.outcome === 'unknown') continue;
      const d = t.injected.durationMs;
      if (survived(r.outcome)) maxSurvivedMs = Math.max(maxSurvivedMs ?? -Infinity, d);
      else minFailedMs = Math.min(minFailedMs ?? Infinity, d);
    }
    probes[info.name] = { kind: info.kind, info, maxSurvivedMs, minFailedMs, outcomes: trials.map((t) => t.probes[info.name]?.outcome ?? 'unknown') };
  }

  const expectationResults: ExpectationResult[] = [];
  for (const [probe, exp] of Object.entries(expectations)) {
    if (exp.survives === undefined) continue;
    const X = exp.survives;
    const relevant = trials.filter((t) => t.injected && t.probes[probe]);
    const failedBelow = relevant.filter((t) => t.requestedMs <= X && !survived(t.probes[probe]!.outcome));
    const survivedAtLeast = relevant.some((t) => t.requestedMs >= X && survived(t.probes[probe]!.outcome));
    const passed = failedBelow.length === 0 && survivedAtLeast;
    const message = passed
      ? `${probe} survives a ${fmt(X)} blackout`
      : failedBelow.length
        ? `${probe} did not survive a ${fmt(failedBelow[0]!.requestedMs)} blackout (${failedBelow[0]!.probes[probe]!.outcome}: ${failedBelow[0]!.probes[probe]!.reason}); expected to survive ${fmt(X)}`
        : `no completed trial of ${fmt(X)} or longer that ${probe} survived; expected to survive ${fmt(X)}`;
    expectationResults.push({ probe, survivesMs: X, passed, message });
  }

  return {
    suite: start.suite,
    runId: start.runId,
    startedWallMs: start.wallMs,
    host: start.host,
    version: start.version,
    target: { name: start.target.name, address: start.target.address },
    injector: start.injector,
    config: start.config,
    probeInfo: start.probes,
    complete: runEnd !== null,
    exitCode: runEnd?.exitCode ?? null,
    endReason: runEnd?.reason ?? null,
    preflight: events.filter((e): e is EventOf<'preflight'> => e.type === 'preflight'),
    heal: events.flatMap((e) => (e.type === 'heal' ? e.actions : [])),
    trials,
    probes,
    expectations: expectationResults,
    passed: runEnd !== null && runEnd.exitCode === 0 && expectationResults.every((x) => x.passed),
    attachments: events.filter((e): e is EventOf<'attachment'> => e.type === 'attachment'),
  };
}

function fmt(ms: number): string {
  if (ms === 0) return 'natural-length'; // a requested 0: the injector's own length
  return ms >= 1000 ? `${+(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`;
}

function analyzeProbe(
  info: ProbeInfo,
  evs: BlackoutEvent[],
  injected: TrialResult['injected'],
  complete: boolean,
): ProbeTrialResult {
  const samples = evs.filter((e): e is EventOf<'sample'> => e.type === 'sample').sort((a, b) => a.t - b.t);
  const errors = evs
    .filter((e): e is EventOf<'probe-error'> => e.type === 'probe-error')
    .map((e) => ({ t: e.t, message: e.message, ...(e.code ? { code: e.code } : {}), fatal: e.fatal }));
  const lost = evs.filter((e): e is EventOf<'session-lost'> => e.type === 'session-lost');
  const reopened = evs.filter((e): e is EventOf<'session-open'> => e.type === 'session-open' && e.reconnect);
  const verifications = evs
    .filter((e): e is EventOf<'verify'> => e.type === 'verify')
    .map((e) => ({ ok: e.ok, message: e.message, ...(e.data ? { data: e.data } : {}) }));

  const cutAt = injected?.cutAt ?? Infinity;
  const restoredAt = injected?.restoredAt ?? Infinity;
  const before = samples.filter((s) => s.t <= cutAt);
  const gapsBefore: number[] = [];
  for (let i = 1; i < before.length; i++) gapsBefore.push(before[i]!.t - before[i - 1]!.t);
  const effectiveIntervalMs = median(gapsBefore) ?? info.intervalMs;

  // steady spans: split wherever a gap is visibly longer than the sampling rhythm
  const split = 2 * effectiveIntervalMs + 20;
  const segments: Array<[number, number]> = [];
  for (const smp of samples) {
    const last = segments.at(-1);
    if (last && smp.t - last[1] <= split) last[1] = smp.t;
    else segments.push([smp.t, smp.t]);
  }
  const base: Omit<ProbeTrialResult, 'outcome' | 'reason'> = {
    segments,
    kind: info.kind,
    observedOutageMs: null,
    recoveryMs: null,
    detectedAfterMs: null,
    effectiveIntervalMs,
    samples: samples.length,
    lastOkBeforeMs: null,
    firstOkAfterMs: null,
    sessionsLost: lost.length,
    reconnects: reopened.length,
    errors,
    verifications,
  };
  if (!injected) {
    return { ...base, outcome: 'unknown', reason: complete ? 'no blackout was injected in this trial' : 'the run ended before the blackout was injected and restored' };
  }

  // the outage: the longest gap between consecutive good samples that overlaps [cut, restore]
  let worst: { from: number; to: number } | null = null;
  for (let i = 0; i <= samples.length; i++) {
    const from = i === 0 ? null : samples[i - 1]!.t;
    const to = i === samples.length ? null : samples[i]!.t;
    if (from === null || to === null) continue;
    if (to <= cutAt || from >= restoredAt) continue; // only gaps that span part of the blackout
    if (!worst || to - from > worst.to - worst.from) worst = { from, to };
  }
  const lastOkBefore = before.at(-1)?.t ?? null;
  const firstAfter = samples.find((s) => s.t > restoredAt)?.t ?? null;
  base.lastOkBeforeMs = worst?.from ?? lastOkBefore;
  base.firstOkAfterMs = worst?.to ?? firstAfter;
  if (firstAfter !== null) base.recoveryMs = firstAfter - restoredAt;
  // no good sample after the restore: the outage never ended (within this trial), so it has no length
  if (worst && firstAfter !== null) base.observedOutageMs = Math.max(0, worst.to - worst.from - effectiveIntervalMs);
  if (base.lastOkBeforeMs !== null) {
    const edge = base.lastOkBeforeMs + effectiveIntervalMs;
    base.detectedAfterMs = Math.max(0, edge - cutAt);
  }

  const gap = worst ? worst.to - worst.from : 0;
  const limit = effectiveIntervalMs + info.toleranceMs;
  const failedVerify = verifications.find((v) => !v.ok);
  const fatal = errors.find((e) => e.fatal && e.t >= cutAt);
  const firstLost = lost[0];
  const lastLost = lost.at(-1);
  const reconnectedAfterLoss = lastLost ? reopened.find((r) => r.t >= lastLost.t) : undefined;
  const okAfterReconnect = reconnectedAfterLoss ? samples.some((s) => s.t >= reconnectedAfterLoss.t) : false;

  const result = (outcome: Outcome, reason: string): ProbeTrialResult => ({ ...base, outcome, reason });
  if (failedVerify) return result('failed', failedVerify.message);
  if (!complete && firstAfter === null && !lost.length) return result('unknown', 'the run ended before the probe was seen to recover');
  if (firstLost) {
    if (reconnectedAfterLoss && okAfterReconnect) {
      return result('recovered', `session lost (${firstLost.message}); reconnected after ${fmt(reconnectedAfterLoss.t - firstLost.t)}`);
    }
    return result('failed', `session lost: ${firstLost.message}${reopened.length ? '; reconnect did not bring a working session' : ''}`);
  }
  if (fatal) return result('failed', `error reached the application: ${fatal.message}`);
  if (firstAfter === null) {
    return result(complete ? 'failed' : 'unknown', complete ? 'no good sample after the restore before the recovery window closed' : 'the run ended during recovery');
  }
  if (gap > limit) return result('stalled', `no answer for ${fmt(gap)}; the same session resumed ${fmt(base.recoveryMs ?? 0)} after the restore`);
  return result('transparent', `longest gap ${fmt(gap)} ≤ interval ${fmt(effectiveIntervalMs)} + tolerance ${fmt(info.toleranceMs)}`);
}
