/**
 * Reports are written in pieces (src/reporters/chunks.ts), and no piece may
 * hold a mark per probe per trial: a long run's report would then build
 * strings of megabytes (the charts of a 1 M-event log were 2.7 M characters
 * each), and its memory would grow with the log. A piece is one trial (its
 * probes), one probe (its trials) or one test case: with 4 × the trials and
 * 4 × the probes, the largest piece grows about 4 ×, never 16 ×.
 */
import { describe, expect, it } from 'vitest';
import { analyze } from '../../src/analysis/analysis.ts';
import type { BlackoutEvent } from '../../src/core/events.ts';
import { reporters } from '../../src/reporters/index.ts';
import { joinChunks } from '../../src/reporters/chunks.ts';
import { sessionCase, caseRules } from '../../src/analysis/test-cases.ts';

function run(trials: number, probeCount: number): BlackoutEvent[] {
  const probes = Array.from({ length: probeCount }, (_, i) => ({ name: `p${i}`, kind: 'tcp', intervalMs: 100, toleranceMs: 500, policy: { reconnect: 'none' } }));
  const ev: BlackoutEvent[] = [
    {
      type: 'run-start',
      t: 0,
      schema: 1,
      runId: 'r',
      suite: 'pieces',
      config: { expect: { p0: { survives: 1000 } } },
      wallMs: Date.UTC(2026, 0, 1),
      host: 'h',
      target: { name: 'lab', address: '10.213.0.2' },
      injector: { kind: 'cable-pull' },
      probes,
      version: '0',
    },
  ];
  let t0 = 0;
  for (let trial = 0; trial < trials; trial++) {
    const len = 1000 + (trial % 4) * 1000;
    const cut = t0 + 500;
    const restore = cut + len;
    ev.push({ type: 'trial-start', t: t0, trial, requestedMs: len });
    const trialEv: BlackoutEvent[] = [
      { type: 'cut', t: cut, before: cut - 1, deadline: restore + 500, trial },
      { type: 'restore', t: restore, before: restore - 1, trial, reason: 'scheduled' },
    ];
    for (const [i, p] of probes.entries()) {
      // every other probe's session is lost in the longer blackouts: failed and transparent outcomes, error texts
      const loses = i % 2 === 1 && len >= 3000;
      for (let t = t0 + 10; t <= restore + 1500; t += 100) if (!(t > cut && (loses || t < restore))) trialEv.push({ type: 'sample', t, probe: p.name, trial });
      if (loses) trialEv.push({ type: 'session-lost', t: cut + 300, probe: p.name, trial, message: 'read ETIMEDOUT' });
    }
    ev.push(...trialEv.sort((a, b) => a.t - b.t));
    ev.push({ type: 'trial-end', t: restore + 1600, trial });
    t0 = restore + 2000;
  }
  ev.push({ type: 'run-end', t: t0, exitCode: 0, reason: 'completed' });
  return ev;
}

describe('reports in pieces', () => {
  const small = analyze(run(8, 8));
  const large = analyze(run(32, 32));
  const assets = { images: new Map<string, string>() };

  it('no piece of any report holds a mark per probe per trial', () => {
    const grown: string[] = [];
    for (const r of reporters) {
      const largest = (a: typeof small) => Math.max(...[...r.render(a, assets)].map((p) => p.length));
      const [s, l] = [largest(small), largest(large)];
      // 4 × the trials and 4 × the probes: 16 × the results; one probe's or one trial's piece grows 4 ×
      if (l / s >= 6) grown.push(`${r.file}: largest piece ${s} → ${l} characters`);
      // and the report is many such pieces
      const whole = joinChunks(r.render(large, assets)).length;
      if (whole < 8 * l) grown.push(`${r.file}: largest piece ${l} of ${whole} characters`);
    }
    expect(grown).toEqual([]);
  });

  it("the analysis makes a session's test case when it is read, the same each time, and counts them all", () => {
    const a = large;
    const first = [...a.tests.cases];
    const again = [...a.tests.cases];
    expect(again).toEqual(first);
    // made anew, not held: no object of the first reading comes back in the second
    expect(again.some((c, i) => c === first[i] && c.group === 'session')).toBe(false);
    const sessions = first.filter((c) => c.group === 'session');
    expect(sessions).toHaveLength(32 * 32);
    const rules = caseRules(a.suite, a.config, a.expectations);
    expect(sessions[33]).toEqual(sessionCase(rules, a.trials[1]!, a.probeInfo[1]!, a.trials[1]!.probes.p1!));
    expect(a.tests.counts).toMatchObject({ tests: first.length, passed: first.filter((c) => c.status === 'passed').length, observations: sessions.filter((c) => c.observation).length });
    expect(a.tests.counts.observations).toBeGreaterThan(0);
    // JSON of the analysis (what a test or a debugger prints) still lists them
    expect(JSON.parse(JSON.stringify(a.tests)).cases).toEqual(JSON.parse(JSON.stringify(first)));
  });
});
