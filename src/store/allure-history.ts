/**
 * Allure history through the results store, so that it goes on when the next
 * run of a suite against a target lands on another host (a fleet's workers).
 * After a run's reports are written, the history its successor should carry
 * (what the run carried, with its own results folded in, as `allure generate`
 * would) is kept under its suite, target and shard; before the next run's
 * reports, the latest earlier one is fetched and handed to the reporters,
 * which stay free of the database and carry it unless a run in their own
 * folders is later.
 */
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import type pg from 'pg';
import { foldResultsIntoHistory, runStartOf, type CarriedHistory, type NextHistory } from '../reporters/allure-history.ts';
import { connectStore } from './db.ts';
import { StoreError, redactUrl } from './store-url.ts';
import { SCHEMA } from './migrations.ts';

type Db = Pick<pg.ClientBase, 'query'>;

/** The history the run in `runDir` should carry from the store: the latest earlier run of its suite, target and shard; or null. */
export async function storedHistory(db: Db, runDir: string): Promise<CarriedHistory | null> {
  const s = runStartOf(runDir);
  if (!s) return null;
  const { rows } = await db.query<{ run_id: string; wall_ms: number; history: unknown; trend: unknown }>(
    `select run_id, wall_ms, history, trend from ${SCHEMA}.allure_history
     where suite = $1 and target = $2 and shard = $3 and wall_ms < $4 order by wall_ms desc limit 1`,
    [s.suite, s.target ?? '', s.shard ?? '', s.wallMs],
  );
  const r = rows[0];
  if (!r) return null;
  return {
    from: `run ${r.run_id} in the results store`,
    wallMs: r.wall_ms,
    files: [
      { name: 'history.json', content: JSON.stringify(r.history) },
      { name: 'history-trend.json', content: JSON.stringify(r.trend) },
    ],
  };
}

/**
 * Keeps the history the next run of this one's suite should carry: `next`
 * when the reports were just written (folded from what they wrote), else
 * folded from the run folder's allure-results/ (`blackout import`); false when
 * there is none yet.
 */
export async function storeHistory(db: Db, runDir: string, next?: () => NextHistory): Promise<boolean> {
  const s = runStartOf(runDir);
  const results = join(runDir, 'allure-results');
  if (!s || (!next && !existsSync(results))) return false;
  const { history, trend } = next ? next() : foldResultsIntoHistory(results, basename(runDir));
  await db.query(
    `insert into ${SCHEMA}.allure_history (run_id, suite, target, shard, wall_ms, history, trend) values ($1, $2, $3, $4, $5, $6, $7)
     on conflict (run_id) do update set history = excluded.history, trend = excluded.trend`,
    [s.runId, s.suite, s.target ?? '', s.shard ?? '', s.wallMs, JSON.stringify(history), JSON.stringify(trend)],
  );
  return true;
}

/**
 * One of the above on its own connection (`blackout run --store`). The store
 * is a second sink: when it cannot be reached, the reports are written all the
 * same, from the folders here, and the reason is logged.
 */
export async function withStore<T>(url: string, what: string, log: (line: string) => void, f: (db: Db) => Promise<T>): Promise<T | null> {
  let client: pg.Client | null = null;
  try {
    client = await connectStore(url, { onError: () => {} });
    return await f(client);
  } catch (e) {
    const m = (e as Error).message;
    log(`${what}: ${e instanceof StoreError ? m : `results store ${redactUrl(url)}: ${m}`}`);
    return null;
  } finally {
    await client?.end().catch(() => {});
  }
}
