/** The analysis is a pure function of events: synthetic logs, exact answers. */
import { describe, expect, it } from 'vitest';
import { analyze } from '../../src/analysis/analysis.ts';
import type { BlackoutEvent } from '../../src/core/events.ts';
import { parseDuration } from '../../src/core/clock.ts';
import { htmlReport } from '../../src/reporters/html.ts';
import { junitReport } from '../../src/reporters/junit.ts';
import { markdownReport } from '../../src/reporters/markdown.ts';
import { jsonReport } from '../../src/reporters/json.ts';

const probes = [
  { name: 'a', kind: 'tcp', intervalMs: 100, toleranceMs: 500, policy: { reconnect: 'none' } },
  { name: 'b', kind: 'tcp', intervalMs: 100, toleranceMs: 500, policy: { reconnect: 'backoff' } },
];

function trialEvents(trial: number, t0: number, len: number, per: Record<string, 'flow' | 'stall' | 'lose' | 'reconnect' | 'tiny'>): BlackoutEvent[] {
  const ev: BlackoutEvent[] = [{ type: 'trial-start', t: t0, trial, requestedMs: len }];
  const cut = t0 + 1000;
  const restore = cut + len;
  ev.push({ type: 'cut', t: cut, before: cut - 5, deadline: restore + 500, trial });
  ev.push({ type: 'restore', t: restore, before: restore - 5, trial, reason: 'scheduled' });
  for (const [probe, mode] of Object.entries(per)) {
    for (let t = t0; t <= restore + 3000; t += 100) {
      const inCut = t > cut && t < restore;
      if (mode === 'stall' && inCut) continue;
      if (mode === 'stall' && t >= restore && t < restore + 1300) continue; // TCP backoff after the restore
      if ((mode === 'lose' || mode === 'reconnect') && t > cut) continue;
      ev.push({ type: 'sample', t, probe, trial });
    }
    if (mode === 'lose' || mode === 'reconnect') ev.push({ type: 'session-lost', t: cut + 300, probe, trial, message: 'read ETIMEDOUT' });
    if (mode === 'reconnect') {
      ev.push({ type: 'session-open', t: restore + 200, probe, trial, reconnect: true });
      ev.push({ type: 'sample', t: restore + 300, probe, trial });
    }
  }
  ev.push({ type: 'trial-end', t: restore + 3100, trial });
  return ev.sort((x, y) => x.t - y.t);
}

const start: BlackoutEvent = {
  type: 'run-start',
  t: 0,
  schema: 1,
  runId: 'r',
  suite: 'synthetic',
  config: { expect: { a: { survives: 2000 } } },
  wallMs: Date.UTC(2026, 0, 1),
  host: 'h',
  target: { name: 'lab', address: '10.213.0.2' },
  injector: { kind: 'cable-pull' },
  probes,
  version: '0',
};

describe('analysis', () => {
  const events: BlackoutEvent[] = [
    start,
    ...trialEvents(0, 0, 2000, { a: 'stall', b: 'flow' }),
    ...trialEvents(1, 10_000, 5000, { a: 'lose', b: 'reconnect' }),
    { type: 'run-end', t: 30_000, exitCode: 0, reason: 'completed' },
  ];
  const a = analyze(events);

  it('classifies outcomes and measures outage and recovery', () => {
    const t0 = a.trials[0]!;
    expect(t0.injected!.durationMs).toBe(2000);
    expect(t0.probes.a!.outcome).toBe('stalled');
    // last sample at cut (1000), next at restore + 1300 (4300): gap 3300 − interval 100
    expect(t0.probes.a!.observedOutageMs).toBe(3200);
    expect(t0.probes.a!.recoveryMs).toBe(1300);
    expect(t0.probes.b!.outcome).toBe('transparent');
    const t1 = a.trials[1]!;
    expect(t1.probes.a!.outcome).toBe('failed');
    expect(t1.probes.a!.reason).toMatch(/ETIMEDOUT/);
    expect(t1.probes.b!.outcome).toBe('recovered');
  });

  it('a reconnect counts as recovered with a good sample at or after it, the one that proved it included', () => {
    // the rdp probe opens a session again at the answer that proved it: the reopen and that sample share an instant
    const at = (sampleAt: number) => {
      const evs = [start, ...trialEvents(0, 0, 5000, { b: 'reconnect' }).filter((e) => !(e.type === 'sample' && e.t > 1000) && e.type !== 'session-open' && e.type !== 'trial-end')];
      evs.push({ type: 'session-open', t: 6400, probe: 'b', trial: 0, reconnect: true }, { type: 'sample', t: sampleAt, probe: 'b', trial: 0 }, { type: 'trial-end', t: 8000, trial: 0 });
      return analyze(evs).trials[0]!.probes.b!;
    };
    expect(at(6400).outcome).toBe('recovered');
    // a sample before the reopen, and none after: the reconnect never showed working
    expect(at(6399).outcome).toBe('failed');
    expect(at(6399).reason).toMatch(/reconnect did not bring a working session/);
  });

  it('derives the thresholds and judges expectations', () => {
    expect(a.probes.a).toMatchObject({ maxSurvivedMs: 2000, minFailedMs: 5000 });
    expect(a.probes.b).toMatchObject({ maxSurvivedMs: 2000, minFailedMs: 5000 });
    expect(a.expectations).toEqual([expect.objectContaining({ probe: 'a', passed: true })]);
    expect(a.passed).toBe(true);
  });

  it('a log cut off mid-trial is incomplete and its open trial unknown', () => {
    const cutOff = events.filter((e) => e.t < 12_500 && e.type !== 'run-end' && !(e.type === 'restore' && e.trial === 1));
    const b = analyze(cutOff);
    expect(b.complete).toBe(false);
    expect(b.passed).toBe(false);
    expect(b.trials[1]!.probes.a!.outcome).toBe('unknown');
    expect(b.trials[0]!.probes.a!.outcome).toBe('stalled');
    expect(markdownReport(b)).toMatch(/INCOMPLETE/);
  });

  it('every reporter renders from the analysis alone', () => {
    expect(JSON.parse(jsonReport(a))).toMatchObject({
      suite: 'synthetic',
      passed: true,
      trials: [{ index: 0, requestedMs: 2000, injected: { durationMs: 2000 } }, { index: 1 }],
      probes: { a: { maxSurvivedMs: 2000, minFailedMs: 5000 } },
    });
    const junit = junitReport(a);
    // the expectation held: a's failure at 5 s (no expectation covers it) and b's reconnect are observations
    expect(junit).toMatch(/tests="5" failures="0" errors="0"/);
    expect(junit).toMatch(/name="a \(tcp\), 5 s blackout \[trial 1\]: failed \(observed; no expectation covers it\)"/);
    expect(junitReport(analyze(events.map((e) => (e.type === 'run-start' ? { ...e, config: { ...(e.config as object), strict: true } } : e))))).toMatch(/tests="5" failures="2" errors="0"/);
    expect(htmlReport(a)).toMatch(/<svg class="timeline"/);
    expect(markdownReport(a)).toMatch(/\| a \(tcp\) \| ‖ stalled \(3.20 s\) \| ✗ failed \| 2.00 s \| 5.00 s \|/);
  });
});

describe('durations', () => {
  it.each([
    ['250ms', 250],
    ['10s', 10_000],
    ['2m', 120_000],
    ['1.5s', 1500],
    [42, 42],
  ] as const)('%s', (v, ms) => expect(parseDuration(v)).toBe(ms));
  it('rejects nonsense', () => expect(() => parseDuration('soon')).toThrow(/expected a duration/));
});

describe('restore evidence and unfinished copies', () => {
  const one = [{ name: 'a', kind: 'tcp', intervalMs: 100, toleranceMs: 500, policy: { reconnect: 'none' } }];
  const run = (detail: Record<string, unknown>, extra: BlackoutEvent[] = []): BlackoutEvent[] => {
    const ev: BlackoutEvent[] = [
      { ...start, probes: one },
      { type: 'trial-start', t: 0, trial: 0, requestedMs: 1000 },
    ];
    // cut at 1000 with a deadline at 2500; the harness only restored at 6000 (it was stuck)
    ev.push({ type: 'cut', t: 1000, before: 995, deadline: 2500, trial: 0 });
    ev.push({ type: 'restore', t: 6000, before: 5995, trial: 0, reason: 'scheduled', detail });
    // the probe answered again at 2600: something restored the target long before the harness
    for (let t = 0; t <= 9000; t += 100) if (t <= 1000 || t >= 2600) ev.push({ type: 'sample', t, probe: 'a', trial: 0 });
    ev.push(...extra, { type: 'trial-end', t: 9100, trial: 0 }, { type: 'run-end', t: 9200, exitCode: 0, reason: 'completed' });
    return ev.sort((x, y) => x.t - y.t);
  };

  it('the kernel timeout that removed the cut first is the restore instant', () => {
    const t = analyze(run({ expiredByKernelTimeout: true })).trials[0]!;
    expect(t.injected).toMatchObject({ restoredAt: 2500, durationMs: 1500, restoredBy: 'kernel timeout', harnessRestoredAt: 6000 });
    expect(t.probes.a!.recoveryMs).toBe(100);
  });

  it('a watchdog that fired before the harness restored is the restore instant', () => {
    const a = analyze(run({ watchdogFired: true }));
    expect(a.trials[0]!.injected).toMatchObject({ restoredAt: 2500, durationMs: 1500, restoredBy: 'watchdog' });
    expect(a.decision.findings.some((f) => /the watchdog restored the target 3\.5 s before the harness/.test(f.text))).toBe(true);
  });

  it('says what guarded each restore (the watchdog mechanism the cut recorded)', () => {
    const ev = run({}).map((e) =>
      e.type === 'cut' ? { ...e, detail: { watchdog: 'systemd:blackout-watchdog-0a1b2c3d', watchdogMechanism: 'systemd timer blackout-watchdog-0a1b2c3d on local' } } : e,
    );
    expect(analyze(ev).trials[0]!.injected!.guardedBy).toBe('watchdog: systemd timer blackout-watchdog-0a1b2c3d on local');
  });

  it('without evidence the harness restore counts', () => {
    const t = analyze(run({})).trials[0]!;
    expect(t.injected).toMatchObject({ restoredAt: 6000, durationMs: 5000, restoredBy: 'harness' });
  });

  it('a copy still running at the end of the trial is unknown, not survived', () => {
    const unfinished: BlackoutEvent = { type: 'probe-error', t: 9050, probe: 'a', trial: 0, message: 'the copy was still running at the end of the trial', code: 'UNFINISHED', fatal: false };
    const t = analyze(run({}, [unfinished])).trials[0]!;
    expect(t.probes.a!.outcome).toBe('unknown');
    expect(t.probes.a!.reason).toMatch(/still running/);
    // the same trial without it survived
    expect(analyze(run({})).trials[0]!.probes.a!.outcome).toBe('stalled');
  });
});
