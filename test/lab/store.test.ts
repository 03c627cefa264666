/**
 * The PostgreSQL results store against a private real PostgreSQL: versioned
 * migrations applied once however many processes start at once; a run folder
 * imported (idempotently: importing again stores nothing twice); and on the
 * lab, `run --store` with the database stopped for 10 s mid-run: the run
 * completes unslowed, its folder is complete, and the store catches up with
 * every event; and Allure history carried through the store from a run on
 * one host to the next run of the suite on another (folders that do not see
 * each other).
 */
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPgCluster, type PgCluster } from '../helpers/pg-cluster.ts';
import { labName, runCli, tempDir, useLab, writeSuite } from '../helpers/lab.ts';
import { waitForEvent } from '../helpers/run-dir.ts';
import { connectStore } from '../../src/store/db.ts';
import { EventLog } from '../../src/core/event-log.ts';
import { EVENT_SCHEMA_VERSION } from '../../src/core/events.ts';
import { KERNEL_GRACE_MS } from '../../src/injectors/shared/lab-cut.ts';

const LAB = labName('tstore');
useLab(LAB);
let db: PgCluster;
const dirs: string[] = [];
beforeAll(async () => {
  db = await startPgCluster();
}, 120_000);
afterAll(async () => {
  await db?.destroy();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function q<T extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  try {
    return (await c.query<T>(sql, params)).rows;
  } finally {
    await c.end();
  }
}

/** a small real log written by the run's own writer */
function syntheticRun(dir: string, runId: string): number {
  const log = new EventLog(join(dir, 'events.jsonl'));
  log.append({
    type: 'run-start',
    t: 0,
    schema: EVENT_SCHEMA_VERSION,
    runId,
    suite: 'synthetic',
    config: { name: 'synthetic' },
    wallMs: Date.now(),
    host: 'h',
    target: { name: 't', address: '127.0.0.1' },
    injector: { kind: 'cable-pull' },
    probes: [{ name: 'echo', kind: 'tcp', intervalMs: 100, toleranceMs: 100, policy: {} }],
    version: 'test',
  });
  log.append({ type: 'trial-start', t: 1, trial: 0, requestedMs: 1000 });
  let t = 2;
  for (let i = 0; i < 20; i++) log.append({ type: 'sample', t: (t += 100), probe: 'echo', trial: 0, latencyMs: 0.3, seq: i });
  log.append({ type: 'cut', t: (t += 1), before: t - 0.1, deadline: t + 5000, trial: 0 });
  log.append({ type: 'probe-error', t: (t += 500), probe: 'echo', trial: 0, message: 'tab\there\nnewline \\ backslash \u0000 nul', fatal: false });
  log.append({ type: 'restore', t: (t += 500), before: t - 0.1, trial: 0, reason: 'scheduled' });
  for (let i = 20; i < 40; i++) log.append({ type: 'sample', t: (t += 100), probe: 'echo', trial: 0, latencyMs: 0.3, seq: i });
  log.append({ type: 'trial-end', t: (t += 1), trial: 0 });
  log.append({ type: 'run-end', t: (t += 1), exitCode: 0, reason: 'completed' });
  log.close();
  return log.count;
}

describe('results store', () => {
  it('applies its migrations once when several processes start together', async () => {
    const clients = await Promise.all([1, 2, 3, 4].map(() => connectStore(db.url)));
    // connectStore migrates once per process and URL: check from fresh processes too
    const r = await Promise.all([1, 2].map(() => runCli(['import', '/nonexistent-dir', '--store', db.url])));
    for (const c of clients) await c.end();
    expect(r.map((x) => x.code)).toEqual([2, 2]);
    const rows = await q<{ version: number }>('select version from blackout.schema_migrations order by version');
    expect(rows.map((x) => x.version)).toEqual([1, 2, 3, 4]);
  });

  it('imports a run folder by COPY, idempotently, with the verdict-level rows', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const n = syntheticRun(dir, 'synthetic-1');
    const r1 = await runCli(['import', dir, '--store', db.url]);
    expect(r1.code, r1.stderr).toBe(0);
    const r2 = await runCli(['import', dir, '--store', db.url]);
    expect(r2.code, r2.stderr).toBe(0);
    const [ev] = await q<{ n: string; seqs: string }>(`select count(*) n, count(distinct seq) seqs from blackout.events join blackout.runs using (run_key) where run_id = 'synthetic-1'`);
    expect(Number(ev!.n)).toBe(n);
    expect(Number(ev!.seqs)).toBe(n);
    const [err] = await q<{ message: string }>(`select body->>'message' as message from blackout.events join blackout.runs using (run_key) where run_id = 'synthetic-1' and type = 'probe-error'`);
    expect(err!.message).toBe('tab\there\nnewline \\ backslash \ufffd nul');
    const trials = await q<{ trial: number; requested_ms: number; injected_ms: number }>(`select trial, requested_ms, injected_ms from blackout.trials where run_id = 'synthetic-1'`);
    expect(trials).toHaveLength(1);
    expect(trials[0]!.injected_ms).toBeCloseTo(1000, 0);
    const pr = await q<{ outcome: string }>(`select outcome from blackout.probe_results where run_id = 'synthetic-1'`);
    expect(pr).toHaveLength(1);
    const [run] = await q<{ exit_code: number; events_stored: string; summary: { suite: string } }>(`select exit_code, events_stored, summary from blackout.runs where run_id = 'synthetic-1'`);
    expect(run!.exit_code).toBe(0);
    expect(Number(run!.events_stored)).toBe(n);
    expect(run!.summary.suite).toBe('synthetic');
  });

  it('refuses a bad store URL with exit 2, naming the field, before injecting anything', async () => {
    const suite = writeSuite({ name: 'x', target: { lab: LAB }, probes: [{ name: 'p', kind: 'icmp', interval: '20ms' }], injector: { kind: 'cable-pull' }, blackouts: ['1s'] });
    dirs.push(join(suite, '..'));
    const out = tempDir();
    dirs.push(out);
    const r = await runCli(['run', suite, '--out', out, '--store', 'mysql://x@127.0.0.1/db', '--no-live']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--store: scheme "mysql" is not postgres/);
  });

  it('the database stopped for 10 s mid-run: the run completes unslowed and the store catches up', async () => {
    const out = tempDir();
    dirs.push(out);
    const suite = writeSuite({
      name: 'store outage',
      target: { lab: LAB },
      probes: [
        { name: 'ping', kind: 'icmp', interval: '10ms' },
        { name: 'echo', kind: 'tcp', interval: '50ms' },
      ],
      injector: { kind: 'cable-pull' },
      blackouts: ['2s', '2s', '2s', '2s'],
      warmup: '1s',
      recovery: '6s',
    });
    dirs.push(join(suite, '..'));
    const run = runCli(['run', suite, '--out', out, '--store', db.url, '--no-live'], { env: { BLACKOUT_STORE_WAIT_MS: '60000' } });
    await waitForEvent(out, (e) => e.type === 'cut', 60_000);
    // let the first batches land, then take the database away mid-trial
    await new Promise((r) => setTimeout(r, 300));
    const stoppedAt = Date.now();
    await db.stopServer('fast');
    await new Promise((r) => setTimeout(r, 10_000 - (Date.now() - stoppedAt)));
    await db.startServer();
    const r = await run;
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(r.stderr).toMatch(/unreachable/);
    expect(r.stderr).toMatch(/back after/);
    const lines = readFileSync(join(out, 'events.jsonl'), 'utf8').trim().split('\n');
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { complete: boolean; runId: string; trials: Array<{ injected: { durationMs: number } }> };
    expect(summary.complete).toBe(true);
    expect(summary.trials).toHaveLength(4);
    // the blackouts were not slowed by the outage: the run restored each one itself, before the kernel's backstop
    // (the cut's own timeout, KERNEL_GRACE_MS after the requested end) had to. A store that held up the run would
    // keep it waiting on the database for seconds (connect and statement timeouts); the scheduling noise of a loaded
    // machine is what a run without a store has too (one fresh-clone run here: a restore 499.5 ms late, with the
    // cause not found), so each trial's parts are in the message
    const events = lines.map((l) => JSON.parse(l) as { type: string; t: number; before?: number; trial?: number; detail?: { expiredByKernelTimeout?: boolean } });
    const parts = events
      .filter((e) => e.type === 'cut')
      .map((c) => {
        const r = events.find((e) => e.type === 'restore' && e.trial === c.trial)!;
        return `trial ${c.trial}: restore began ${(r.before! - (c.t + 2000)).toFixed(1)} ms after its schedule, its nft call took ${(r.t - r.before!).toFixed(1)} ms`;
      })
      .join('; ');
    for (const t of summary.trials) expect(t.injected.durationMs, parts).toBeLessThan(2000 + KERNEL_GRACE_MS);
    for (const e of events.filter((x) => x.type === 'restore')) expect(e.detail?.expiredByKernelTimeout, parts).toBeFalsy();
    const [ev] = await q<{ n: string; distinct_seq: string; max_seq: string }>(
      `select count(*) n, count(distinct seq) distinct_seq, max(seq) max_seq from blackout.events join blackout.runs using (run_key) where run_id = $1`,
      [summary.runId],
    );
    expect(Number(ev!.n)).toBe(lines.length);
    expect(Number(ev!.distinct_seq)).toBe(lines.length);
    expect(Number(ev!.max_seq)).toBe(lines.length - 1);
    const trials = await q<{ trial: number }>(`select trial from blackout.trials where run_id = $1 order by trial`, [summary.runId]);
    expect(trials.map((t) => t.trial)).toEqual([0, 1, 2, 3]);
    const [runRow] = await q<{ exit_code: number; passed: boolean }>(`select exit_code, passed from blackout.runs where run_id = $1`, [summary.runId]);
    expect(runRow!.exit_code).toBe(0);
  }, 180_000);

  it('carries Allure history through the store to the next run of the suite on another host', async () => {
    // two "hosts": run folders in parents that do not see each other; only the store joins them
    const hostA = tempDir('blackout-host-a-');
    const hostB = tempDir('blackout-host-b-');
    dirs.push(hostA, hostB);
    // the same small suite under two names
    const small = (name: string) => {
      const path = writeSuite({
        name,
        target: { lab: LAB },
        probes: [{ name: 'ping', kind: 'icmp', interval: '20ms' }],
        injector: { kind: 'cable-pull' },
        blackouts: ['500ms'],
        warmup: '500ms',
        recovery: '1s',
      });
      dirs.push(join(path, '..'));
      return path;
    };
    const suite = small('history across hosts');
    const other = small('another suite');
    const run = async (suitePath: string, parent: string, name: string) => {
      const out = join(parent, name);
      const r = await runCli(['run', suitePath, '--out', out, '--store', db.url, '--no-live']);
      expect(r.code, r.stderr + r.stdout).toBe(0);
      return out;
    };
    const json = <T>(path: string): T => JSON.parse(readFileSync(path, 'utf8')) as T;
    const uuids = (dir: string) =>
      readdirSync(join(dir, 'allure-results'))
        .filter((f) => f.endsWith('-result.json'))
        .map((f) => json<{ uuid: string }>(join(dir, 'allure-results', f)).uuid);

    const first = await run(suite, hostA, 'first');
    expect(existsSync(join(first, 'allure-results', 'history'))).toBe(false);
    // a run of another suite in between, on host B: never carried into this suite's history
    const between = await run(other, hostB, 'other');
    const second = await run(suite, hostB, 'second');
    const history = json<Record<string, { items: Array<{ uid: string }> }>>(join(second, 'allure-results', 'history', 'history.json'));
    const carried = new Set(Object.values(history).flatMap((h) => h.items.map((i) => i.uid)));
    expect(uuids(first).length).toBeGreaterThan(0);
    for (const u of uuids(first)) expect(carried).toContain(u);
    for (const u of uuids(between)) expect(carried).not.toContain(u);
    const trend = json<Array<{ reportName: string; data: { total: number } }>>(join(second, 'allure-results', 'history', 'history-trend.json'));
    expect(trend.map((t) => t.reportName)).toEqual(['first']);
    expect(trend[0]!.data.total).toBe(uuids(first).length);
    // and the second run's own history is in the store for the run after it
    const rows = await q<{ run_id: string; trend: Array<{ reportName: string }> }>(`select run_id, trend from blackout.allure_history where suite = 'history across hosts' order by wall_ms`);
    expect(rows.map((r) => r.trend.map((t) => t.reportName))).toEqual([['first'], ['second', 'first']]);
  }, 120_000);
});
