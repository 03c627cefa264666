/**
 * JUnit and Allure agree with the exit code: the committed fixture logs (and
 * variants of them: strict, a broken expectation, an interrupted run, a failed
 * preflight, a log cut off mid-trial) are turned into reports, and Allure's
 * own readers count junit.xml and allure-results/; their failure counts must
 * be exactly summary.json's, and zero exactly when the exit code is 0.
 */
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BlackoutEvent } from '../../src/core/events.ts';
import { readEvents } from '../../src/core/event-log.ts';
import { writeReports } from '../../src/reporters/index.ts';
import { validateSuite } from '../../src/run/suite.ts';
import { FIXTURES } from '../helpers/fixtures.ts';
import { allureRead, type AllureRead } from '../helpers/allure-junit.ts';

type Edit = (events: BlackoutEvent[]) => BlackoutEvent[];

const setStart =
  (f: (config: Record<string, unknown>) => Record<string, unknown>): Edit =>
  (events) =>
    events.map((e) => (e.type === 'run-start' ? { ...e, config: f({ ...(e.config as Record<string, unknown>) }) } : e));
const setEnd =
  (exitCode: number, reason: string): Edit =>
  (events) =>
    events.map((e) => (e.type === 'run-end' ? { ...e, exitCode, reason } : e));

const scenarios: Array<{ name: string; fixture: string; edit?: Edit }> = [
  { name: 'list', fixture: 'list-run' },
  { name: 'list strict', fixture: 'list-run', edit: setStart((c) => ({ ...c, strict: true })) },
  { name: 'list broken expectation', fixture: 'list-run', edit: setStart((c) => ({ ...c, expect: { ...(c.expect as object), console: { survives: 5000 } } })) },
  { name: 'list broken expectation strict', fixture: 'list-run', edit: setStart((c) => ({ ...c, strict: true, expect: { ...(c.expect as object), console: { survives: 5000 } } })) },
  { name: 'list interrupted', fixture: 'list-run', edit: setEnd(130, 'interrupted (Ctrl-C / SIGTERM); the target was restored') },
  { name: 'search', fixture: 'search-run' },
  { name: 'search strict', fixture: 'search-run', edit: setStart((c) => ({ ...c, strict: true })) },
  { name: 'cut mid-trial', fixture: 'cut-mid-trial' },
  {
    name: 'preflight failed',
    fixture: 'list-run',
    edit: (events) => [
      events[0]!,
      { type: 'preflight', t: 5, ok: false, message: 'target 10.213.9.2 does not answer' },
      { type: 'run-end', t: 6, exitCode: 2, reason: 'preflight: target 10.213.9.2 does not answer' },
    ],
  },
];

interface Summary {
  exitCode: number | null;
  passed: boolean;
  tests: {
    strict: boolean;
    tests: number;
    passed: number;
    failed: number;
    errors: number;
    skipped: number;
    observations: number;
    cases: Array<{ id: string; name: string; status: string; observation: boolean; message?: string; breaks?: string }>;
  };
}

let root: string;
const runs = new Map<string, { dir: string; summary: Summary; junit: string }>();
let fromJunit: AllureRead;
let fromResults: AllureRead;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'blackout-ci-reports-'));
  const junits = join(root, 'junit');
  const results = join(root, 'allure-results');
  mkdirSync(junits);
  mkdirSync(results);
  for (const [i, s] of scenarios.entries()) {
    const dir = join(root, `run${i}`);
    mkdirSync(dir);
    cpSync(join(FIXTURES, 'attachments'), join(dir, 'attachments'), { recursive: true });
    let events = readEvents(join(FIXTURES, `${s.fixture}.jsonl`)).events;
    events = s.edit ? s.edit(events) : events;
    // each scenario its own suite (Allure groups by it) and run id (allure-results file names derive from it)
    events = events.map((e) => (e.type === 'run-start' ? { ...e, suite: s.name, runId: `ci-${i}` } : e));
    writeFileSync(join(dir, 'events.jsonl'), events.map((e) => JSON.stringify(e)).join('\n') + '\n');
    await writeReports(dir);
    const junit = readFileSync(join(dir, 'junit.xml'), 'utf8');
    runs.set(s.name, { dir, summary: JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as Summary, junit });
    writeFileSync(join(junits, `run${i}.xml`), junit);
    cpSync(join(dir, 'allure-results'), results, { recursive: true });
  }
  // Allure's JUnit reader over every junit.xml, and Allure over every allure-results/ (one generate each: Java is slow to start)
  [fromJunit, fromResults] = [await allureRead(junits, join(root, 'report-junit')), await allureRead(results, join(root, 'report-results'))];
}, 400_000);

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('JUnit and Allure agree with the exit code', () => {
  it.each(scenarios.map((s) => s.name))('%s: Allure reads from junit.xml and from allure-results/ exactly the failures summary.json and the exit code count', (name) => {
    const { summary: s, junit } = runs.get(name)!;
    const t = s.tests;
    for (const read of [fromJunit, fromResults]) {
      const a = read.suites[name]!;
      expect(a, `${name} not in ${Object.keys(read.suites).join(', ')}`).toBeDefined();
      expect(a).toMatchObject({ failed: t.failed, broken: t.errors, skipped: t.skipped, passed: t.passed, total: t.tests });
      // the rule a CI server applies: red ⇔ a failed or broken test ⇔ a non-zero exit
      expect(a.failed + a.broken > 0).toBe(s.exitCode !== 0);
    }
    expect(s.passed).toBe(s.exitCode === 0);
    expect(junit).toContain(`<testsuite name="${name}" tests="${t.tests}" failures="${t.failed}" errors="${t.errors}" skipped="${t.skipped}"`);
  });

  it('the exit codes are the ones the CLI returns for such runs', () => {
    const code = (n: string) => runs.get(n)!.summary.exitCode;
    expect(code('list')).toBe(0);
    expect(code('search')).toBe(0);
    expect(code('list strict')).toBe(1);
    expect(code('list broken expectation')).toBe(1);
    expect(code('list interrupted')).toBe(130);
    expect(code('preflight failed')).toBe(2);
    expect(code('cut mid-trial')).toBeNull();
  });

  it('observations stay visible as passed cases with their outcome, and strict turns each into a failure', () => {
    for (const base of ['list', 'search']) {
      const plain = runs.get(base)!.summary.tests;
      const strict = runs.get(`${base} strict`)!.summary.tests;
      expect(plain.observations).toBeGreaterThan(0);
      expect(plain.failed).toBe(0);
      expect(strict.strict).toBe(true);
      expect(strict.observations).toBe(0);
      expect(strict.failed).toBe(plain.observations);
      const obs = plain.cases.filter((c) => c.observation);
      expect(obs.every((c) => c.status === 'passed' && /: (failed|recovered) \(observed; no expectation covers it\)$/.test(c.name))).toBe(true);
      // the same cases fail under strict (same ids)
      const local = (id: string) => id.slice(id.lastIndexOf('.'));
      expect(
        strict.cases
          .filter((c) => c.status === 'failed')
          .map((c) => local(c.id))
          .sort(),
      ).toEqual(obs.map((c) => local(c.id)).sort());
    }
    const junit = runs.get('search')!.junit;
    expect(junit).not.toContain('<failure');
    expect(junit).toMatch(
      /name="echo-ut3s \(tcp\), [\d.]+ s blackout \[trial \d\]: failed \(observed; no expectation covers it\)"[^>]*><properties><property name="outcome" value="failed"\/><property name="observation" value="true"\/><\/properties><system-out>outcome=failed [^<]*\nobserved \(fails nothing/,
    );
    // a flaky probe's cases say so
    expect(runs.get('list')!.junit).toMatch(/name="flappy \(tcp\)[^"]*"[^>]*><properties>(?:<property [^>]*\/>)*<property name="flaky" value="true"\/>/);
    expect(runs.get('search strict')!.junit).toMatch(/<failure message="failed: session lost: read ETIMEDOUT" type="failed">/);
    // Allure files passed observations under their own category, and strict failures under the failure ones
    expect(fromResults.categories['Observed: a session did not survive a length no expectation covers']).toBe(
      ['list', 'search', 'list broken expectation', 'list interrupted', 'cut mid-trial'].reduce((n, s) => n + runs.get(s)!.summary.tests.observations, 0),
    );
    expect(fromResults.categories['Flaky probe: not monotonic in the blackout length']).toBeGreaterThan(0);
  });

  it('a broken expectation is one failing case; the sessions that broke it are its evidence, or failures of their own under strict', () => {
    const t = runs.get('list broken expectation')!.summary.tests;
    expect(t.failed).toBe(1);
    expect(t.cases.find((c) => c.status === 'failed')).toMatchObject({
      name: 'expect console survives 5 s',
      message: expect.stringMatching(/console did not survive a 2 s blackout|console did not survive a 5 s blackout/),
    });
    const evidence = t.cases.filter((c) => c.breaks === 'expect console survives 5 s');
    expect(evidence.length).toBeGreaterThan(0);
    expect(evidence.every((c) => c.status === 'passed' && c.name.endsWith('(breaks expect console survives 5 s)'))).toBe(true);
    const strict = runs.get('list broken expectation strict')!.summary.tests;
    expect(strict.failed).toBe(1 + evidence.length + t.observations);
    const broken = [...runs.values()].reduce((n, r) => n + r.summary.tests.cases.filter((c) => c.id.includes('.expect#') && c.status === 'failed').length, 0);
    expect(broken).toBeGreaterThanOrEqual(2);
    expect(fromResults.categories['Expectation did not hold']).toBe(broken);
  });

  it('a run that did not end normally is one case in error', () => {
    for (const n of ['list interrupted', 'preflight failed', 'cut mid-trial']) {
      const c = runs.get(n)!.summary.tests.cases.filter((x) => x.status === 'error');
      expect(c).toHaveLength(1);
      expect(c[0]!.name).toBe('the run completes');
    }
    expect(runs.get('preflight failed')!.junit).toMatch(/<error message="exit 2: preflight: target 10.213.9.2 does not answer" type="exit-2"\/>/);
  });

  it('strict is a suite option: a boolean, named when wrong', () => {
    const base = { name: 's', target: 'lab', probes: [{ name: 'echo', kind: 'tcp' }], injector: { kind: 'cable-pull' }, blackouts: ['2s'] };
    expect(validateSuite({ ...base, strict: true }).strict).toBe(true);
    expect(validateSuite(base).strict).toBe(false);
    expect(() => validateSuite({ ...base, strict: 'yes' })).toThrow(/strict: /);
  });
});
