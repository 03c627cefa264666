/** summary.json: the contract (DESIGN.md), plus the full analysis for tools that want more. */
import type { Analysis } from '../analysis.ts';

export function jsonReport(a: Analysis): string {
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
    trials: a.trials.map((t) => ({
      index: t.index,
      requestedMs: t.requestedMs,
      complete: t.complete,
      injected: t.injected && { cutAt: round(t.injected.cutAt), restoredAt: round(t.injected.restoredAt), durationMs: round(t.injected.durationMs), restoreReason: t.injected.restoreReason },
      injectorInfo: t.injectorInfo,
      probes: Object.fromEntries(
        Object.entries(t.probes).map(([name, r]) => [
          name,
          {
            kind: r.kind,
            outcome: r.outcome,
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
    probes: Object.fromEntries(
      Object.entries(a.probes).map(([name, p]) => [
        name,
        { kind: p.kind, maxSurvivedMs: round(p.maxSurvivedMs), minFailedMs: round(p.minFailedMs), policy: p.info.policy, intervalMs: p.info.intervalMs, toleranceMs: p.info.toleranceMs },
      ]),
    ),
    heal: a.heal,
  };
  return JSON.stringify(summary, null, 2) + '\n';
}

function round(v: number | null): number | null {
  return v === null ? null : Math.round(v * 10) / 10;
}
