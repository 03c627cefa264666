/**
 * Allure history carried between runs of the same suite: run folders side by
 * side (as reports/<date>-<suite> are); each run's allure-results/history/
 * comes from the previous run of its suite, and a real `allure generate`
 * (allure-commandline, Java) shows the earlier runs in the trend and in each
 * test's history. A run of another suite, and a later run, are never used.
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/lab.ts';
import { FIXTURES } from '../helpers/fixtures.ts';
import { allureHistoryKey, foldResultsIntoHistory, previousRunDir, type AllureHistory, type TrendEntry } from '../../src/reporters/allure-history.ts';
import { writeReports } from '../../src/reporters/index.ts';

const parent = mkdtempSync(join(tmpdir(), 'blackout-allure-history-'));
afterAll(() => rmSync(parent, { recursive: true, force: true }));

/**
 * A run folder beside the others: the list-run fixture as run `runId` of `suite`, started at
 * `wallMs`; `later` ms added to every restore (the measured injected length and outage differ, as
 * they do from run to run)
 */
function runFolder(name: string, runId: string, suite: string, wallMs: number, later = 0, shard?: { index: number; total: number }): string {
  const dir = join(parent, name);
  mkdirSync(dir);
  const lines = readFileSync(join(FIXTURES, 'list-run.jsonl'), 'utf8')
    .split('\n')
    .map((l) => (later && l.startsWith('{"type":"restore"') ? JSON.stringify({ ...(JSON.parse(l) as { t: number }), t: (JSON.parse(l) as { t: number }).t + later }) : l));
  const start = JSON.parse(lines[0]!) as Record<string, unknown>;
  lines[0] = JSON.stringify({ ...start, runId, suite, wallMs, ...(shard ? { shard } : {}) });
  writeFileSync(join(dir, 'events.jsonl'), lines.join('\n'));
  cpSync(join(FIXTURES, 'attachments'), join(dir, 'attachments'), { recursive: true });
  return dir;
}

const json = <T>(path: string): T => JSON.parse(readFileSync(path, 'utf8')) as T;
const resultsOf = (dir: string) =>
  readdirSync(join(dir, 'allure-results'))
    .filter((f) => f.endsWith('-result.json'))
    .map((f) => json<{ historyId: string; status: string; uuid: string; testCaseId: string; parameters: Array<{ name: string; value: string; excluded?: boolean }> }>(join(dir, 'allure-results', f)))
    .map((r) => ({ ...r, key: allureHistoryKey(r)! }));

describe('allure history', () => {
  const day = 24 * 3600_000;
  const t0 = Date.UTC(2026, 10, 1);

  it('carries each run’s history to the next run of the same suite, through a real allure generate', async () => {
    const first = runFolder('2026-11-01-fixture-list', 'hist-1', 'fixture list', t0);
    const other = runFolder('2026-11-02-other', 'hist-other', 'another suite', t0 + day);
    // a shard of another sweep of the suite, between the two: a whole run never follows a shard
    const shard = runFolder('2026-11-02-fixture-list-shard-1-of-2', 'hist-shard', 'fixture list', t0 + 1.5 * day, 0, { index: 1, total: 2 });
    const rs = await runCli(['report', shard, '--allure'], { timeoutMs: 170_000 });
    expect(rs.code, rs.stderr + rs.stdout).toBe(0);
    expect(existsSync(join(shard, 'allure-results', 'history'))).toBe(false);
    const second = runFolder('2026-11-03-fixture-list', 'hist-2', 'fixture list', t0 + 2 * day, 37);
    const later = runFolder('2026-11-05-fixture-list', 'hist-4', 'fixture list', t0 + 4 * day);

    // the first run has no earlier run of its suite (the later one and the other suite's do not count)
    const r1 = await runCli(['report', first, '--allure'], { timeoutMs: 170_000 });
    expect(r1.code, r1.stderr + r1.stdout).toBe(0);
    expect(existsSync(join(first, 'allure-results', 'history'))).toBe(false);
    const trend1 = json<TrendEntry[]>(join(first, 'allure-report', 'history', 'history-trend.json'));
    expect(trend1).toHaveLength(1);
    // the other suite's report: built, so that a wrong pick would show up as a history
    const ro = await runCli(['report', other], { timeoutMs: 170_000 });
    expect(ro.code, ro.stderr).toBe(0);

    // the second run carries the first run's built history (Allure's own files, byte for byte)
    const r2 = await runCli(['report', second, '--allure'], { timeoutMs: 170_000 });
    expect(r2.code, r2.stderr + r2.stdout).toBe(0);
    expect(readFileSync(join(second, 'allure-results', 'history', 'history.json'), 'utf8')).toBe(readFileSync(join(first, 'allure-report', 'history', 'history.json'), 'utf8'));
    // Allure's report shows both runs: the trend has two builds, each test two items (this run's and the first's)
    const trend2 = json<TrendEntry[]>(join(second, 'allure-report', 'history', 'history-trend.json'));
    expect(trend2).toHaveLength(2);
    expect(trend2.map((t) => t.data.total)).toEqual([trend1[0]!.data.total, trend1[0]!.data.total]);
    const hist2 = json<AllureHistory>(join(second, 'allure-report', 'history', 'history.json'));
    // the measured parameters differ between the two runs, yet each test keeps one history (Allure's own key)
    const measured = (rs: ReturnType<typeof resultsOf>) => rs.map((r) => r.parameters.find((p) => p.name === 'injected')?.value).join();
    expect(measured(resultsOf(second))).not.toBe(measured(resultsOf(first)));
    expect(Object.keys(hist2).sort()).toEqual(
      resultsOf(second)
        .map((r) => r.key)
        .sort(),
    );
    for (const r of resultsOf(second)) {
      expect(hist2[r.key]!.statistic.total, r.key).toBe(2);
      expect(hist2[r.key]!.items).toHaveLength(2);
    }

    // a third run whose predecessor (the second) was built: reports rebuilt without --allure still carry it,
    // and the earlier run (the first) is not picked when a later one exists
    const third = runFolder('2026-11-04-fixture-list', 'hist-3', 'fixture list', t0 + 3 * day);
    const r3 = await runCli(['report', third], { timeoutMs: 170_000 });
    expect(r3.code, r3.stderr).toBe(0);
    expect(json<TrendEntry[]>(join(third, 'allure-results', 'history', 'history-trend.json'))).toHaveLength(2);

    // the later run: its predecessor (the third) never had its Allure report built; its statuses are
    // folded in from its allure-results as Allure would, on top of what it carried
    const r4 = await runCli(['report', later], { timeoutMs: 170_000 });
    expect(r4.code, r4.stderr).toBe(0);
    const trend4 = json<TrendEntry[]>(join(later, 'allure-results', 'history', 'history-trend.json'));
    expect(trend4).toHaveLength(3);
    expect(trend4[0]!.reportName).toBe('2026-11-04-fixture-list');
    const results3 = resultsOf(third);
    expect(trend4[0]!.data.total).toBe(results3.length);
    expect(trend4[0]!.data.passed).toBe(results3.filter((r) => r.status === 'passed').length);
    const hist4 = json<AllureHistory>(join(later, 'allure-results', 'history', 'history.json'));
    for (const r of results3) {
      expect(hist4[r.key]!.statistic.total).toBe(3);
      expect(hist4[r.key]!.items[0]!.uid).toBe(r.uuid);
      expect(hist4[r.key]!.items[0]!.status).toBe(r.status);
    }
    // and Allure reads that folded history: its report of the later run shows four builds
    const r5 = await runCli(['report', later, '--allure'], { timeoutMs: 170_000 });
    expect(r5.code, r5.stderr + r5.stdout).toBe(0);
    const trend5 = json<TrendEntry[]>(join(later, 'allure-report', 'history', 'history-trend.json'));
    expect(trend5).toHaveLength(4);
    const hist5 = json<AllureHistory>(join(later, 'allure-report', 'history', 'history.json'));
    for (const r of resultsOf(later)) expect(hist5[r.key]!.statistic.total).toBe(4);
    // the other suite's run carried nothing from the fixture list runs
    expect(existsSync(join(other, 'allure-results', 'history'))).toBe(false);
  }, 600_000);

  it("follows the same suite against the same target only, and looks in the other folders it is given (a worker's earlier campaigns)", () => {
    const root = join(parent, 'out-root');
    const start = JSON.parse(readFileSync(join(FIXTURES, 'list-run.jsonl'), 'utf8').split('\n')[0]!) as { target: Record<string, unknown> };
    const folder = (campaign: string, name: string, wallMs: number, target: string) => {
      const dir = join(root, campaign, name);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'events.jsonl'), JSON.stringify({ ...start, runId: `${campaign}-${name}`, suite: 'cable pull', wallMs, target: { ...start.target, name: target } }) + '\n');
      return dir;
    };
    const erpJanuary = folder('january', 'erp-db-attempt-1', t0, 'erp-db');
    // the same suite name against another application, later than the erp run above: never its history
    folder('january', 'crm-app-attempt-1', t0 + day, 'crm-app');
    const erpFebruary = folder('february', 'erp-db-attempt-1', t0 + 2 * day, 'erp-db');
    folder('february', 'crm-app-attempt-1', t0 + 2 * day, 'crm-app');
    // its own campaign's folder alone has no earlier run of its suite against its target
    expect(previousRunDir(erpFebruary, 'cable pull', t0 + 2 * day)).toBeNull();
    // given every campaign's folder, it follows January's run of the same application
    expect(previousRunDir(erpFebruary, 'cable pull', t0 + 2 * day, [join(root, 'january'), join(root, 'february')])).toBe(erpJanuary);
  });
});

describe('the history the results store keeps', () => {
  it('is, from the reports just written, the same as folded again from the folder they wrote', async () => {
    const first = runFolder('mem-1', 'run-mem-1', 'mem', 1_700_000_000_000);
    await writeReports(first);
    const second = runFolder('mem-2', 'run-mem-2', 'mem', 1_700_000_100_000, 40);
    const written = await writeReports(second);
    const fromFolder = foldResultsIntoHistory(join(second, 'allure-results'), 'mem-2');
    expect(fromFolder.trend).toHaveLength(2); // it carried the first run's history
    expect(written.nextAllureHistory()).toEqual(fromFolder);
  });
});
