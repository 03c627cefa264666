/**
 * The run as test cases, the one list JUnit, Allure, summary.json and the
 * exit code all count from, so a CI server, a QA dashboard and the job status
 * never disagree.
 *
 * A case FAILS only when the suite asked for something that did not happen:
 * an expectation (`expect:`) that did not hold, or — with `strict: true` —
 * any session that did not survive its blackout. Everything else the run
 * observed (a session lost at a length no expectation covers, a flaky probe,
 * a finding) is a passed case that carries its outcome in its name and
 * details: visible, never failing a build by itself. A run that did not
 * finish normally (preflight, injector failure, Ctrl-C, a dead process) is one
 * case in error, so its reports are red exactly when its exit code is not 0.
 *
 * Pure: a function of the analysis (before its decision), like every reporter.
 */
import type { CaseStatus, ProbeTrialResult, RunFold, TestCase, TestCases, TestCounts, TrialResult } from './results.ts';
import type { ProbeInfo } from '../core/events.ts';

import { survived } from '../core/format.ts';

export type { CaseStatus, TestCase, TestCases, TestCounts };

type Input = Pick<RunFold, 'suite' | 'config' | 'trials' | 'expectations' | 'complete' | 'endReason' | 'probeInfo'> & { runExitCode: number | null };

/** `strict: true` in the run's recorded suite */
export function strictOf(config: unknown): boolean {
  return Boolean(config && typeof config === 'object' && (config as { strict?: unknown }).strict === true);
}

/** the suite's expectations (`expect: { probe: { survives } }`) in the run's recorded suite */
export function expectedSurvivals(config: unknown): Array<{ probe: string; survivesMs: number }> {
  const expect = (config as { expect?: Record<string, { survives?: number }> } | null)?.expect ?? {};
  return Object.entries(expect).flatMap(([probe, e]) => (e.survives === undefined ? [] : [{ probe, survivesMs: e.survives }]));
}

/** what a session's case needs of the run, all known from its run-start: its suite, `strict`, what each expectation covers */
export interface CaseRules {
  classBase: string;
  strict: boolean;
  /** probe → the length its expectation says it survives */
  survives: Map<string, number>;
}

export function caseRules(suite: string, config: unknown, expectations: ReadonlyArray<{ probe: string; survivesMs: number }>): CaseRules {
  return { classBase: `blackout.${suite}`, strict: strictOf(config), survives: new Map(expectations.map((e) => [e.probe, e.survivesMs])) };
}

/** one probe in one trial as a test case: known when the trial ends (Allure's results are written then) */
export function sessionCase(rules: CaseRules, t: TrialResult, info: ProbeInfo, r: ProbeTrialResult): TestCase {
  const { classBase, strict } = rules;
  const len = lengthText(t.requestedMs);
  const base = `${info.name} (${r.kind}), ${len} blackout [trial ${t.index}]`;
  const c: TestCase = {
    group: 'session',
    id: `${classBase}.${info.name}#trial-${t.index}`,
    classname: `${classBase}.${info.name}`,
    name: '',
    status: 'passed',
    observation: false,
    message: null,
    type: null,
    trial: t.index,
    probe: info.name,
    kind: r.kind,
    outcome: r.outcome,
    requestedMs: t.requestedMs,
  };
  const survivesMs = rules.survives.get(info.name);
  if (r.outcome === 'unknown') {
    c.status = 'skipped';
    c.name = `${base}: unknown`;
    c.message = r.reason;
  } else if (survived(r.outcome)) {
    c.name = `${base}: ${r.outcome}`;
  } else {
    const covered = survivesMs !== undefined && t.requestedMs <= survivesMs ? `expect ${info.name} survives ${lengthText(survivesMs)}` : undefined;
    if (covered) c.breaks = covered;
    c.message = `${r.outcome}: ${r.reason}`;
    c.type = r.outcome;
    if (strict) {
      c.status = 'failed';
      c.name = `${base}: ${r.outcome}`;
    } else if (covered) {
      // the expectation's own case fails; this one is its evidence
      c.name = `${base}: ${r.outcome} (breaks ${covered})`;
    } else {
      c.observation = true;
      c.name = `${base}: ${r.outcome} (observed; no expectation covers it)`;
    }
  }
  return c;
}

export function lengthText(ms: number): string {
  if (ms === 0) return 'natural-length'; // a requested 0: the injector's own length (a real migration)
  return ms >= 1000 ? `${+(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`;
}

export function testCases(a: Input): TestCases {
  const rules = caseRules(a.suite, a.config, a.expectations);
  const { strict, classBase } = rules;
  const runLevel: TestCase[] = [];
  for (const e of a.expectations) {
    runLevel.push({
      group: 'expectation',
      id: `${classBase}.expect#${e.probe}`,
      classname: `${classBase}.expect`,
      name: `expect ${e.probe} survives ${lengthText(e.survivesMs)}`,
      status: e.passed ? 'passed' : 'failed',
      observation: false,
      message: e.passed ? null : e.message,
      type: e.passed ? null : 'expectation',
      probe: e.probe,
    });
  }
  // a run that did not end normally: the exit code is not 0, and the reports say so
  if (!a.complete || (a.runExitCode !== null && a.runExitCode !== 0)) {
    runLevel.push({
      group: 'run',
      id: `${classBase}.run#completes`,
      classname: `${classBase}.run`,
      name: 'the run completes',
      status: 'error',
      observation: false,
      message: a.complete ? `exit ${a.runExitCode}: ${a.endReason ?? ''}` : 'the run did not finish (no run-end in the event log): the process died or is still running',
      type: a.complete ? `exit-${a.runExitCode}` : 'incomplete',
    });
  }
  const { trials, probeInfo } = a;
  // a session's case is made again each time the list is read, never held: a long run has one per probe per trial
  function* all(): Generator<TestCase> {
    for (const t of trials) {
      for (const info of probeInfo) {
        const r = t.probes[info.name];
        if (r) yield sessionCase(rules, t, info, r);
      }
    }
    yield* runLevel;
  }
  const counts: TestCounts = { strict, tests: 0, passed: 0, failed: 0, errors: 0, skipped: 0, observations: 0 };
  const field = { passed: 'passed', failed: 'failed', error: 'errors', skipped: 'skipped' } as const;
  for (const c of all()) {
    counts.tests++;
    counts[field[c.status]]++;
    if (c.observation) counts.observations++;
  }
  return { cases: new CaseList(all), counts };
}

/** the cases, made as they are read; as JSON (a debugger's print, a test's comparison) the list itself */
class CaseList implements Iterable<TestCase> {
  constructor(private readonly make: () => Generator<TestCase>) {}
  [Symbol.iterator](): Generator<TestCase> {
    return this.make();
  }
  toJSON(): TestCase[] {
    return [...this.make()];
  }
}

/** one line for people: what CI counts and why the exit code is what it is */
export function testsSummaryText(c: TestCounts, exitCode: number | null): string {
  const obs = c.observations ? `; ${c.observations} observation(s): sessions that did not survive a length no expectation covers (they fail nothing; strict: true makes them failures)` : '';
  return `Tests: ${c.tests} — ${c.failed} failed, ${c.errors} in error, ${c.skipped} skipped, ${c.passed} passed${obs}${c.strict ? '; strict: every session that did not survive is a failure' : ''}. Exit code ${exitCode ?? '– (the run did not finish)'}.`;
}
