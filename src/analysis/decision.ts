/**
 * What the run decides (pure, from the analysis): each probe's breaking point
 * (bracket, flaky or not), its predicted breaking point from its policy and
 * whether they agree, the findings worth a reader's attention, and the
 * migration verdict (the weakest session decides).
 */
import type { RunFold } from './results.ts';
import { bracketsOf, linearSweepTrials, type BracketStatus, type ProbeBracket, type Sweep } from './search.ts';
import { checkPrediction, predictBreakingPoint, type Prediction, type PredictionCheck } from './predict.ts';
import { migrationSettings, migrationVerdict, type MigrationVerdict } from './migration-model.ts';
import { formatLength, survived } from '../core/format.ts';

export interface ProbeDecision {
  probe: string;
  kind: string;
  /** longest injected blackout survived / shortest not survived (ms, measured) */
  maxSurvivedMs: number | null;
  minFailedMs: number | null;
  /** the same on requested lengths, with the search status */
  bracket: ProbeBracket;
  status: BracketStatus;
  flaky: boolean;
  prediction: Prediction;
  check: PredictionCheck;
}

export interface Finding {
  severity: 'problem' | 'warning' | 'info';
  probe?: string;
  /** trial indexes that show it */
  trials?: number[];
  text: string;
}

export interface SearchSummary {
  mode: Sweep['mode'];
  trials: number;
  /** trials a linear sweep over the same range at the same resolution needs (search only) */
  linearTrials: number | null;
  stopReason: string;
}

export interface Decision {
  probes: ProbeDecision[];
  findings: Finding[];
  migration: MigrationVerdict;
  search: SearchSummary | null;
  /** headline: the decision; live: the live-migration line; second: the line shown under the headline */
  verdict: { level: 'safe' | 'limited' | 'unsafe' | 'no-data'; headline: string; live: string; second: string };
}

type PartialAnalysis = RunFold;

export function decide(a: PartialAnalysis): Decision {
  const names = a.probeInfo.map((p) => p.name);
  const observations = a.trials
    .filter((t) => t.injected)
    .map((t) => ({ index: t.index, requestedMs: t.requestedMs, outcomes: Object.fromEntries(Object.entries(t.probes).map(([n, r]) => [n, r.outcome])) }));
  const brackets = bracketsOf(names, observations, a.sweep ?? undefined);
  const findings: Finding[] = [];

  const probes: ProbeDecision[] = a.probeInfo.map((info, i) => {
    const run = a.probes[info.name]!;
    const bracket = brackets[i]!;
    const flaky = bracket.status === 'flaky';
    const prediction = predictBreakingPoint(info);
    const check = checkPrediction(prediction, run.maxSurvivedMs, run.minFailedMs, flaky);
    if (flaky) {
      const c = bracket.conflicts[0]!;
      findings.push({
        severity: 'warning',
        probe: info.name,
        trials: [...new Set(bracket.conflicts.flatMap((x) => [x.survived.trial, x.failed.trial]))].sort((x, y) => x - y),
        text: `${info.name} is flaky: it survived ${formatLength(c.survived.ms)} (trial ${c.survived.trial}) but not ${formatLength(c.failed.ms)} (trial ${c.failed.trial}); its outcome is not monotonic in the blackout length`,
      });
    }
    if (check.finding) findings.push({ severity: 'problem', probe: info.name, text: `${info.name}: ${check.text}` });
    return { probe: info.name, kind: info.kind, maxSurvivedMs: run.maxSurvivedMs, minFailedMs: run.minFailedMs, bracket, status: bracket.status, flaky, prediction, check };
  });

  // the harness's own health, as findings
  if (!a.complete) findings.push({ severity: 'warning', text: 'the run did not finish (no run-end): the figures cover the trials recorded up to its last event' });
  for (const t of a.trials) {
    const ie = t.injectorError;
    if (ie) {
      findings.push({
        severity: 'problem',
        trials: [t.index],
        text: ie.restored
          ? `trial ${t.index}: the injector failed (${ie.step}: ${ie.message}); the target was restored and the run stopped`
          : `trial ${t.index}: the injector failed (${ie.step}: ${ie.message})${ie.restoreError ? `, and the restore after it failed too (${ie.restoreError})` : ''}; the target was NOT verified restored (its kernel timeout / watchdog restores it at the deadline) and the run stopped`,
      });
    }
    if (t.injected && t.injected.restoredBy !== 'harness') {
      findings.push({
        severity: 'warning',
        trials: [t.index],
        text: `trial ${t.index}: the ${t.injected.restoredBy} restored the target ${formatLength(t.injected.harnessRestoredAt - t.injected.restoredAt)} before the harness did; the blackout is measured to that earlier restore`,
      });
    }
    if (t.injected && t.injected.restoreReason !== 'scheduled')
      findings.push({ severity: 'warning', trials: [t.index], text: `trial ${t.index}: the blackout was ended early (${t.injected.restoreReason})` });
    if (!t.complete)
      findings.push({ severity: 'warning', trials: [t.index], text: `trial ${t.index} (${formatLength(t.requestedMs)}) did not finish; its outcomes are unknown where not yet decided` });
    if (t.injected && Math.abs(t.injected.durationMs - t.requestedMs) > Math.max(200, 0.05 * t.requestedMs) && t.injected.restoreReason === 'scheduled') {
      findings.push({ severity: 'info', trials: [t.index], text: `trial ${t.index}: ${formatLength(t.injected.durationMs)} injected for ${formatLength(t.requestedMs)} requested` });
    }
  }
  for (const p of a.preflight) if (!p.ok) findings.push({ severity: 'warning', ...(p.probe ? { probe: p.probe } : {}), text: `preflight: ${p.message}` });

  const migration = migrationVerdict(
    probes.map((p) => ({ probe: p.probe, kind: p.kind, maxSurvivedMs: p.maxSurvivedMs, minFailedMs: p.minFailedMs, flaky: p.flaky })),
    migrationSettings(a.config),
  );

  let search: SearchSummary | null = null;
  if (a.sweep) {
    const s = a.sweep;
    const open = brackets.filter((b) => b.status === 'open' || b.status === 'no-data');
    const stopReason =
      s.mode === 'list'
        ? `${a.trials.length} trial(s) from the list`
        : !open.length
          ? `every probe resolved (bracket ≤ ${formatLength(s.resolution)}, or the range exhausted, or flaky)`
          : a.trials.length >= s.maxTrials
            ? `maxTrials (${s.maxTrials}) reached with ${open.map((b) => b.probe).join(', ')} still open`
            : `the run ended with ${open.map((b) => b.probe).join(', ')} still open`;
    search = { mode: s.mode, trials: a.trials.length, linearTrials: s.mode === 'search' ? linearSweepTrials(s.from, s.to, s.resolution) : null, stopReason };
  }

  // a run whose injector IS a live migration is direct evidence for the live line (its pauses are what they are)
  if (a.injector.migration === 'live') {
    const done = a.trials.filter((t) => t.injected);
    if (done.length) {
      const durations = done.map((t) => t.injected!.durationMs);
      const failing = a.probeInfo.map((p) => p.name).filter((n) => done.some((t) => t.probes[n] && t.probes[n]!.outcome !== 'unknown' && !survived(t.probes[n]!.outcome)));
      const span = `${done.length} live migration(s), pauses ${formatLength(Math.min(...durations))}–${formatLength(Math.max(...durations))}`;
      migration.live = failing.length
        ? { pauseMs: Math.max(...durations), status: 'unsafe', failing, text: `Live migration (measured: ${span}): NOT safe — ${failing.join(', ')} did not survive it.` }
        : { pauseMs: Math.max(...durations), status: 'safe', failing: [], text: `Live migration (measured: ${span}): safe — every session survived every one.` };
    }
  }

  const anyData = probes.some((p) => p.maxSurvivedMs !== null || p.minFailedMs !== null);
  const level: Decision['verdict']['level'] = !anyData ? 'no-data' : migration.overall.every((o) => o.safeUpToBytes <= 0) ? 'unsafe' : probes.every((p) => p.minFailedMs === null) ? 'safe' : 'limited';
  const live = a.injector.migration === 'live';
  const headline = !anyData ? 'No trial completed: no verdict.' : live ? migration.live.text : migration.headline;
  const liveLevel: Decision['verdict']['level'] = migration.live.status === 'safe' ? 'safe' : 'unsafe';
  const second = live ? 'Quick migration is not judged by this run: it measured live migrations only (see a cable-pull or quick-migration sweep).' : migration.live.text;
  return { probes, findings, migration, search, verdict: { level: live && anyData ? liveLevel : level, headline, live: migration.live.text, second } };
}
