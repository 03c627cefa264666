/**
 * Reports from committed fixture logs (test/fixtures/, written by make-fixtures.ts):
 * the streaming fold equals analyze(events), a log cut off mid-trial, the JSON
 * contract, JUnit, Markdown, Allure results and the comparison.
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { analyze, type Analysis } from '../../src/analysis/analysis.ts';
import { readEvents } from '../../src/core/event-log.ts';
import { analyzeRunDir, loadAssets, reporters, writeReports } from '../../src/reporters/index.ts';
import { htmlReport } from '../../src/reporters/html.ts';
import { jsonReport } from '../../src/reporters/json.ts';
import { junitReport } from '../../src/reporters/junit.ts';
import { markdownReport } from '../../src/reporters/markdown.ts';
import { AllureResultsWriter, allureResults, type AllureFile } from '../../src/reporters/allure.ts';
import { writeFileNow } from '../../src/reporters/file-writer.ts';
import { compareHtml, compareMarkdown, whatDiffers } from '../../src/reporters/compare.ts';
import { runCli } from '../helpers/lab.ts';
import { FIXTURES, fixtureRun } from '../helpers/fixtures.ts';

/** the run folder's allure-results/ is, file for file and byte for byte, allureResults(analysis); returns those */
function expectAllureFolder(runDir: string, analysis: Analysis, label: string): AllureFile[] {
  const want = allureResults(analysis, runDir);
  const res = join(runDir, 'allure-results');
  expect(readdirSync(res).sort(), label).toEqual(want.map((f) => f.name).sort());
  for (const f of want) expect(readFileSync(join(res, f.name)).equals(f.copyFrom ? readFileSync(f.copyFrom) : Buffer.from(f.content ?? '')), `${label}: ${f.name}`).toBe(true);
  return want;
}

describe('analysis of the fixtures', () => {
  it('the streaming fold over the file equals analyze() over the array', () => {
    for (const f of ['search-run', 'list-run', 'cut-mid-trial']) {
      const dir = fixtureRun(f);
      const streamed = analyzeRunDir(dir).analysis;
      const whole = analyze(readEvents(join(dir, 'events.jsonl')).events);
      expect(JSON.parse(JSON.stringify(streamed))).toEqual(JSON.parse(JSON.stringify(whole)));
    }
  });

  it('search run: brackets, predictions and the verdict', () => {
    const { analysis: a } = analyzeRunDir(fixtureRun('search-run'));
    expect(a.sweep).toMatchObject({ mode: 'search', from: 500, to: 8000, resolution: 1000 });
    expect(a.trials.every((t) => t.reason?.startsWith('search step'))).toBe(true);
    const ut = a.decision.probes.find((p) => p.probe === 'echo-ut3s')!;
    expect(ut.status).toBe('resolved');
    expect(ut.maxSurvivedMs!).toBeGreaterThanOrEqual(2900);
    expect(ut.minFailedMs! - ut.maxSurvivedMs!).toBeLessThanOrEqual(1000 + 5);
    expect(ut.prediction.breakingMs).toBe(3000);
    expect(ut.check.agreement).toBe('agrees');
    expect(a.decision.probes.find((p) => p.probe === 'echo')!.status).toBe('survives-range');
    expect(a.decision.search).toMatchObject({ mode: 'search', linearTrials: 9 });
    expect(a.decision.search!.trials).toBeLessThan(9);
    expect(a.decision.migration.limitedBy).toBe('echo-ut3s');
    expect(a.decision.verdict.level).toBe('limited');
    expect(a.decision.findings).toEqual([]);
  });

  it('list run: flaky, recovered, a policy the client ignores, a kind without a rule, custom links', () => {
    const { analysis: a } = analyzeRunDir(fixtureRun('list-run'));
    const d = (n: string) => a.decision.probes.find((p) => p.probe === n)!;
    expect(d('flappy')).toMatchObject({ status: 'flaky', flaky: true });
    expect(d('flappy').bracket.conflicts[0]).toMatchObject({ survived: { ms: 5000 }, failed: { trial: 0, ms: 2000 } });
    expect(a.trials[1]!.probes.console!.outcome).toBe('stalled');
    expect(a.trials[2]!.probes.console!.outcome).toBe('recovered');
    expect(d('legacy').check).toMatchObject({ agreement: 'survives-longer', finding: true });
    expect(d('custom').check.agreement).toBe('no-prediction');
    const findings = a.decision.findings.map((f) => f.text).join('\n');
    expect(findings).toMatch(/flappy is flaky: it survived 5 s \(trial \d\) but not 2 s \(trial 0\)/);
    expect(findings).toMatch(/legacy: survives longer than its policy allows/);
    expect(a.decision.migration.settings.links.map((l) => l.name)).toEqual(['1 GbE iSCSI', '8 Gb FC']);
    expect(a.decision.migration.live).toMatchObject({ pauseMs: 300, status: 'safe' });
  });

  it('a log cut off mid-trial with a torn last line: incomplete, the open trial unknown, reports still build', async () => {
    const dir = fixtureRun('cut-mid-trial');
    const { analysis: a, tornTail } = analyzeRunDir(dir);
    expect(tornTail).toMatch(/^\{"type":"sample"/);
    expect(a.complete).toBe(false);
    expect(a.trials).toHaveLength(3);
    expect(a.trials[2]!.complete).toBe(false);
    expect(Object.values(a.trials[2]!.probes).every((r) => r.outcome === 'unknown')).toBe(true);
    expect(a.trials[0]!.probes.echo!.outcome).toBe('stalled');
    expect(a.decision.findings.map((f) => f.text).join('\n')).toMatch(/did not finish/);
    const { files } = await writeReports(dir);
    expect(files.map((f) => f.split('/').at(-1))).toEqual(['summary.json', 'junit.xml', 'summary.md', 'report.html', 'allure-results']);
    expect(readFileSync(join(dir, 'summary.md'), 'utf8')).toMatch(/INCOMPLETE RUN/);
  });
});

describe('a live-migration run', () => {
  it('is direct evidence for the live line, which becomes the headline', () => {
    const events = readEvents(join(fixtureRun('list-run'), 'events.jsonl')).events.map((e) => (e.type === 'run-start' ? { ...e, injector: { kind: 'qemu-live', migration: 'live' as const } } : e));
    const a = analyze(events);
    expect(a.decision.migration.live).toMatchObject({ status: 'unsafe', failing: ['console', 'flappy'] });
    expect(a.decision.verdict.headline).toMatch(/^Live migration \(measured: 4 live migration\(s\), pauses 2 s–5 s\): NOT safe — console, flappy did not survive it/);
    expect(a.decision.verdict.second).toMatch(/not judged by this run/);
    expect(a.decision.verdict.level).toBe('unsafe');
  });
});

describe('reporters', async () => {
  const dir = fixtureRun('list-run');
  const { analysis: a } = await writeReports(dir);

  it('summary.json keeps the docs/architecture.md contract and adds the verdict', () => {
    const s = JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8'));
    expect(s).toMatchObject({ suite: 'fixture list', passed: true });
    expect(s.trials[0]).toMatchObject({
      index: 0,
      requestedMs: 2000,
      reason: 'list: length 1 of 2, repeat 1 of 2',
      injected: { cutAt: expect.any(Number), restoredAt: expect.any(Number), durationMs: expect.any(Number) },
    });
    expect(s.trials[0].probes.echo).toMatchObject({ kind: 'tcp', outcome: 'stalled', observedOutageMs: expect.any(Number), recoveryMs: expect.any(Number), errors: [] });
    expect(s.probes.echo).toMatchObject({ kind: 'tcp', maxSurvivedMs: expect.any(Number), minFailedMs: null });
    expect(s.probes.legacy).toMatchObject({ agreement: 'survives-longer', predicted: { breakingMs: 1400 } });
    expect(s.probes.ping.predicted.breakingMs).toBe('never');
    expect(s.verdict).toMatchObject({ level: 'limited', limitedBy: 'console' });
    expect(s.verdict.quickMigration).toHaveLength(2);
    expect(s.findings.length).toBeGreaterThanOrEqual(2);
  });

  it('junit.xml: a testcase per probe per trial with its outcome, the verdict as properties; only expectations fail', () => {
    const x = readFileSync(join(dir, 'junit.xml'), 'utf8');
    const cases = x.match(/<testcase /g)!.length;
    expect(cases).toBe(a.trials.length * a.probeInfo.length + a.expectations.length);
    // every expectation held: the reconnecting console is an observation, not a failure
    expect(x).not.toMatch(/<failure/);
    expect(x).toMatch(/name="console \(console\), 5 s blackout \[trial 2\]: recovered \(observed; no expectation covers it\)"/);
    expect(x).toMatch(/observed \(fails nothing: no expectation covers this length\) — recovered: session lost \(Keepalive timeout\)/);
    expect(x).toMatch(/<property name="verdict" value="Quick migration is safe for this application for VMs up to 125 MB on 1 GbE iSCSI/);
    expect(x).toMatch(/VERDICT: /);
  });

  it('summary.md: the verdict first, breaking points, findings, migration table, matrix', () => {
    const md = readFileSync(join(dir, 'summary.md'), 'utf8');
    const at = (s: string) => md.indexOf(s);
    expect(at('**Quick migration is safe')).toBeGreaterThan(0);
    expect(at('**Quick migration is safe')).toBeLessThan(at('## Breaking points'));
    expect(md).toMatch(/\| legacy \(tcp\) \| 5.00 s \| – \| survives-range \| ~1.40 s \| survives-longer \|/);
    expect(md).toMatch(/## Findings/);
    expect(md).toMatch(/\| 512 MB \| ✗ 8.19 s \| ✓ 1.02 s \|/);
    expect(md).toMatch(/## Tolerance matrix/);
  });

  it('report.html is one self-contained file: no external reference, the screenshot inlined', () => {
    const html = readFileSync(join(dir, 'report.html'), 'utf8');
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
    expect(html).not.toMatch(/<script/);
    expect(html).toMatch(/<img src="data:image\/png;base64,/);
    expect(html.indexOf('id="verdict"')).toBeLessThan(html.indexOf('id="tolerance-matrix"'));
    for (const c of ['survival', 'lanes', 'outage', 'recovery']) expect(html).toMatch(new RegExp(`data-chart="${c}"`));
  });

  it('allure-results: one result per probe per trial, with steps, attachments and labels', () => {
    const res = join(dir, 'allure-results');
    const results = readdirSync(res)
      .filter((f) => f.endsWith('-result.json'))
      .map((f) => JSON.parse(readFileSync(join(res, f), 'utf8')));
    expect(results).toHaveLength(a.trials.length * a.probeInfo.length + a.expectations.length);
    // an observation: passed, its outcome in the name and its own category's message
    const r = results.find((x) => x.name === 'console, 5 s blackout: recovered (observed)' && x.status === 'passed')!;
    expect(r.statusDetails.message).toMatch(/^observed: recovered: session lost/);
    expect(r.steps.at(-1).status).toBe('failed');
    expect(r.steps.map((s: { name: string }) => s.name.split(':')[0])).toEqual(['warm-up', 'cut', 'restore (scheduled)', 'recovery']);
    expect(r.labels).toEqual(
      expect.arrayContaining([
        { name: 'suite', value: 'fixture list' },
        { name: 'probe', value: 'console' },
        { name: 'injector', value: 'cable-pull' },
      ]),
    );
    for (const att of r.attachments) expect(existsSync(join(res, att.source))).toBe(true);
    const withShot = results.find((x) => x.attachments.some((t: { type: string }) => t.type === 'image/png'));
    expect(withShot?.name).toBe('console, 2 s blackout: stalled');
    expect(results.find((x) => x.name === 'expect echo survives 5 s')).toMatchObject({ status: 'passed' });
    expect(existsSync(join(res, 'environment.properties'))).toBe(true);
    // rebuilding gives the same names
    expect(
      allureResults(a, dir)
        .map((f) => f.name)
        .sort(),
    ).toEqual(readdirSync(res).sort());
  });

  it('allure-results written while the log was folded are file for file allureResults(analysis): a flaky probe and a late attachment written again', async () => {
    // list-run: a probe is flaky (known only once the whole run is folded), and trial 0's screenshot
    // is recorded after its trial-end; cut-mid-trial: a trial that never ended (written only at the end).
    // A fresh folder (trials written as they are folded), then a rebuild over it (all written at the end).
    for (const name of ['list-run', 'cut-mid-trial']) {
      const fx = fixtureRun(name);
      for (const build of ['first', 'rebuild']) {
        const { analysis } = await writeReports(fx);
        const want = expectAllureFolder(fx, analysis, `${name}, ${build}`);
        expect(want.filter((f) => f.result?.statusDetails?.flaky).length, name).toBeGreaterThan(0);
      }
    }
    expect(a.attachments.find((x) => x.trial === 0)!.t).toBeGreaterThan(a.trials[0]!.endedAt!);
  });

  it('a writer without room: the trials it had no room for while folding are written between the pieces or at the end, file for file the same', () => {
    // the writer's queue is bounded (file-writer.ts): trials skipped during the fold, and a pump that stops when room runs out
    for (const name of ['list-run', 'cut-mid-trial']) {
      const fx = fixtureRun(name);
      let calls = 0;
      let said = true;
      const room = () => (said = calls++ % 3 !== 0);
      const puts: string[] = [];
      // a file put when the writer's last answer was "no room" (before the end, which writes what is left)
      let unasked = 0;
      let ending = false;
      const w = new AllureResultsWriter(
        fx,
        (path, f) => {
          if (!said && !ending) unasked++;
          puts.push(path);
          writeFileNow(path, f);
        },
        room,
      );
      const { analysis } = analyzeRunDir(fx, (t, start, atts) => w.trial(t, start, atts));
      const duringFold = puts.length;
      // asked once at each trial-end
      expect(calls, name).toBe(analysis.trials.filter((t) => t.endedAt !== null).length);
      const rest = w.settle(analysis);
      for (let i = 0; i < 50; i++) rest.pump();
      const pumped = puts.length - duringFold;
      ending = true;
      rest.end();
      expect(unasked, name).toBe(0);
      expectAllureFolder(fx, analysis, name);
      // some trials went during the fold, some between pieces; a pump that finds no room writes nothing
      expect(duringFold, name).toBeGreaterThan(0);
      expect(pumped, name).toBeGreaterThan(0);
      calls = 0;
      const before = puts.length;
      w.settle(analysis).pump();
      expect(puts.length).toBe(before);
    }
  });

  it('a log invalid half-way changes nothing: not on a first report (its early Allure results go), not on a rebuild', async () => {
    const lines = readFileSync(join(FIXTURES, 'list-run.jsonl'), 'utf8').split('\n');
    // after trial 1's end (two trials' results already written): an event of no known type
    const at = lines.findIndex((l) => l.startsWith('{"type":"trial-end"') && l.includes('"trial":1}')) + 1;
    expect(at).toBeGreaterThan(0);
    const bad = [...lines.slice(0, at), '{"type":"no-such-event","t":1}', ...lines.slice(at)].join('\n');
    // a first report: the folder stays as it was, with no allure-results/ and no other report
    const first = fixtureRun('list-run');
    writeFileSync(join(first, 'events.jsonl'), bad);
    const before = readdirSync(first).sort();
    await expect(writeReports(first)).rejects.toThrow(/events\.jsonl line \d+/);
    expect(readdirSync(first).sort()).toEqual(before);
    // a rebuild: every file of the last build as it was
    const again = fixtureRun('list-run');
    await writeReports(again);
    const snapshot = () => readdirSync(join(again, 'allure-results')).map((f) => [f, readFileSync(join(again, 'allure-results', f), 'utf8')]);
    const built = snapshot();
    writeFileSync(join(again, 'events.jsonl'), bad);
    await expect(writeReports(again)).rejects.toThrow(/events\.jsonl line \d+/);
    expect(snapshot()).toEqual(built);
  });

  it('each report written piece by piece is the report as one string', () => {
    const assets = loadAssets(dir, a);
    const whole: Record<string, string> = { 'summary.json': jsonReport(a), 'junit.xml': junitReport(a), 'summary.md': markdownReport(a), 'report.html': htmlReport(a, assets) };
    for (const r of reporters) {
      const pieces = [...r.render(a, assets)];
      // one piece per trial or test case at least: none of them is built whole
      expect(pieces.length, r.file).toBeGreaterThan(a.trials.length);
      expect(readFileSync(join(dir, r.file), 'utf8'), r.file).toBe(whole[r.file]);
    }
  });
});

describe('compare', () => {
  const runs = [
    { label: 'vendor A', analysis: analyzeRunDir(fixtureRun('search-run')).analysis },
    { label: 'vendor B', analysis: analyzeRunDir(fixtureRun('list-run')).analysis },
  ];
  it('lists what differs', () => {
    const d = whatDiffers(runs).join('\n');
    expect(d).toMatch(/Quick migration on 1 GbE iSCSI: safe up to 188 MB \(vendor A\) vs 125 MB \(vendor B\)/);
    expect(d).toMatch(/echo-ut3s is only in vendor A/);
    expect(d).toMatch(/legacy is only in vendor B/);
  });
  it('renders HTML (overlaid curves, matrices side by side) and Markdown', () => {
    const html = compareHtml(runs);
    expect(html.match(/data-run=/g)).toHaveLength(2);
    expect(html).toMatch(/data-chart="survival"/);
    expect((html.match(/class="mark line"/g) ?? []).length).toBe(2);
    expect(compareMarkdown(runs)).toMatch(/\| echo \| ≥ 8.00 s \| ≥ 5.00 s \|/);
  });
  it('blackout compare writes compare.html and compare.md', async () => {
    const out = mkdtempSync(join(tmpdir(), 'blackout-cmp-'));
    const r = await runCli(['compare', fixtureRun('search-run'), fixtureRun('list-run'), '--label', 'A', 'B', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(join(out, 'compare.html'))).toBe(true);
    expect(readFileSync(join(out, 'compare.md'), 'utf8')).toMatch(/# blackout comparison: A vs B/);
    const bad = await runCli(['compare', fixtureRun('search-run'), '--label', 'A', 'B']);
    expect(bad.code).toBe(2);
  });
});
