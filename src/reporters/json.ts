/** summary.json: the contract (docs/architecture.md), plus the full analysis for tools that want more. */
import type { Analysis } from '../analysis/analysis.ts';
import { Spread, joinChunks, jsonChunks } from './chunks.ts';

export function jsonReport(a: Analysis): string {
  return joinChunks(jsonReportChunks(a));
}

/** items built one at a time, as they are written */
function* each<T, U>(items: Iterable<T>, f: (x: T) => U): Generator<U> {
  for (const x of items) yield f(x);
}

/** summary.json in pieces: a test case, a trial at a time (reporters/chunks.ts) */
export function jsonReportChunks(a: Analysis): Generator<string> {
  const summary = {
    suite: a.suite,
    passed: a.passed,
    complete: a.complete,
    exitCode: a.exitCode,
    runId: a.runId,
    startedAt: new Date(a.startedWallMs).toISOString(),
    target: a.target,
    injector: a.injector,
    expectations: a.expectations,
    // what JUnit and Allure count, and what the exit code follows: failed + errors > 0 ⇔ exitCode ≠ 0
    tests: {
      ...a.tests.counts,
      cases: new Spread(
        each(a.tests.cases, (c) => ({
          id: c.id,
          name: c.name,
          status: c.status,
          observation: c.observation,
          ...(c.message ? { message: c.message } : {}),
          ...(c.breaks ? { breaks: c.breaks } : {}),
        })),
      ),
    },
    verdict: {
      level: a.decision.verdict.level,
      headline: a.decision.verdict.headline,
      live: a.decision.verdict.live,
      limitedBy: a.decision.migration.limitedBy,
      quickMigration: a.decision.migration.overall.map((o) => ({ link: o.link, mbPerSec: o.mbPerSec, safeUpToBytes: Math.round(o.safeUpToBytes), atLeast: o.atLeast, text: o.text })),
      table: a.decision.migration.table,
      caveats: a.decision.migration.caveats,
    },
    sweep: a.sweep,
    search: a.decision.search,
    findings: a.decision.findings,
    trials: new Spread(
      each(a.trials, (t) => ({
        index: t.index,
        requestedMs: t.requestedMs,
        reason: t.reason,
        complete: t.complete,
        injected: t.injected && {
          cutAt: round(t.injected.cutAt),
          restoredAt: round(t.injected.restoredAt),
          durationMs: round(t.injected.durationMs),
          restoreReason: t.injected.restoreReason,
          restoredBy: t.injected.restoredBy,
          guardedBy: t.injected.guardedBy,
        },
        injectorInfo: t.injectorInfo,
        probes: Object.fromEntries(
          Object.entries(t.probes).map(([name, r]) => [
            name,
            {
              kind: r.kind,
              outcome: r.outcome,
              errorsDropped: r.errorsDropped,
              reason: r.reason,
              observedOutageMs: round(r.observedOutageMs),
              recoveryMs: round(r.recoveryMs),
              detectedAfterMs: round(r.detectedAfterMs),
              effectiveIntervalMs: round(r.effectiveIntervalMs),
              samples: r.samples,
              sessionsLost: r.sessionsLost,
              reconnects: r.reconnects,
              errors: r.errors.map((e) => ({ ...e, t: round(e.t) })),
              verifications: r.verifications,
            },
          ]),
        ),
      })),
    ),
    probes: Object.fromEntries(
      Object.entries(a.probes).map(([name, p]) => {
        const d = a.decision.probes.find((x) => x.probe === name)!;
        const mig = a.decision.migration.perProbe.find((x) => x.probe === name);
        return [
          name,
          {
            kind: p.kind,
            maxSurvivedMs: round(p.maxSurvivedMs),
            minFailedMs: round(p.minFailedMs),
            status: d.status,
            flaky: d.flaky,
            conflicts: d.bracket.conflicts,
            requestedBracket: { lo: d.bracket.lo, hi: d.bracket.hi },
            predicted: {
              breakingMs: d.prediction.breakingMs === null ? null : Number.isFinite(d.prediction.breakingMs) ? round(d.prediction.breakingMs) : 'never',
              range: d.prediction.range?.map((v) => (Number.isFinite(v) ? round(v) : 'never')) ?? null,
              mechanism: d.prediction.mechanism,
              basis: d.prediction.basis,
            },
            agreement: d.check.agreement,
            agreementText: d.check.text,
            quickMigration: mig?.links.map((l) => ({ link: l.link, safeUpToBytes: Math.round(l.safeUpToBytes), atLeast: l.atLeast })) ?? [],
            policy: p.info.policy,
            intervalMs: p.info.intervalMs,
            toleranceMs: p.info.toleranceMs,
          },
        ];
      }),
    ),
    heal: a.heal,
  };
  return (function* () {
    yield* jsonChunks(summary);
    yield '\n';
  })();
}

function round(v: number | null): number | null {
  return v === null ? null : Math.round(v * 10) / 10;
}
