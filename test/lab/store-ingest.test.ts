/**
 * The store sink's fast ingest path against a private real PostgreSQL: rows
 * made from the event log's own JSON lines (escaping, NUL, non-ASCII, the t
 * cell taken from the line), rows queued before the run's key was known
 * (keyed at COPY time) next to rows made with it, and a resume whose
 * high-water mark falls inside a queued chunk (only the rows after it are
 * stored, once).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPgCluster, type PgCluster } from '../helpers/pg-cluster.ts';
import { RunStoreSink, importRunDir } from '../../src/store/sink.ts';
import { EventLog } from '../../src/core/event-log.ts';
import { EVENT_SCHEMA_VERSION, type BlackoutEvent } from '../../src/core/events.ts';

let db: PgCluster;
const dirs: string[] = [];
beforeAll(async () => {
  db = await startPgCluster();
}, 120_000);
afterAll(async () => {
  await db?.destroy();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'blackout-ingest-'));
  dirs.push(d);
  return d;
}

async function q<T extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  try {
    return (await c.query<T>(sql, params)).rows;
  } finally {
    await c.end();
  }
}

const awkward = 'tab\there\nnewline \\ backslash "quote" \u0000 nul é ü 日本 🚀 \r cr';

function runStart(runId: string): BlackoutEvent {
  return {
    type: 'run-start',
    t: 0,
    schema: EVENT_SCHEMA_VERSION,
    runId,
    suite: 'ingest',
    config: { name: 'ingest', note: awkward },
    wallMs: Date.now(),
    host: 'h',
    target: { name: 't', address: '127.0.0.1' },
    injector: { kind: 'cable-pull' },
    probes: [
      { name: 'echo', kind: 'tcp', intervalMs: 100, toleranceMs: 100, policy: {} },
      { name: 'odd\tname\\x', kind: 'tcp', intervalMs: 100, toleranceMs: 100, policy: {} },
    ],
    version: 'test',
  };
}

/** every row of a run, in seq order, as stored */
async function stored(runId: string): Promise<Array<{ seq: string; t: number; type: string; trial: number | null; probe: string | null; body: string }>> {
  return q(`select seq, t, type, trial, probe, body::text as body from blackout.events join blackout.runs using (run_key) where run_id = $1 order by seq`, [runId]);
}

describe('store ingest', () => {
  it('stores the event log’s own lines: exact bodies and cells, rows queued before and after the run’s key was known', async () => {
    const dir = tempDir();
    const log = new EventLog(join(dir, 'events.jsonl'));
    const sink = new RunStoreSink(db.url, { outDir: dir, batchRows: 1000 });
    log.subscribe(sink.onEvent);
    const runId = 'lines-1';
    log.append(runStart(runId));
    log.append({ type: 'trial-start', t: 1, trial: 0, requestedMs: 1000 });
    let t = 1;
    // t values whose text is not trivial: many digits, an exponent
    for (let i = 0; i < 3000; i++) log.append({ type: 'sample', t: (t += 0.1 + 1e-9 * i), probe: i % 2 ? 'echo' : 'odd\tname\\x', trial: 0, latencyMs: 0.3, seq: i });
    log.append({ type: 'probe-error', t: (t += 1), probe: 'echo', trial: 0, message: awkward, fatal: false });
    // the first batches are stored and the run's key is known: the rows after this are made with it
    for (let i = 0; i < 200 && !sink.caughtUp; i++) await new Promise((r) => setTimeout(r, 50));
    expect(sink.caughtUp).toBe(true);
    for (let i = 3000; i < 6000; i++) log.append({ type: 'sample', t: (t += 0.1), probe: 'echo', trial: 0, latencyMs: 0.3, seq: i });
    log.append({ type: 'sample', t: 1.5e-7, probe: 'echo', trial: 0 });
    log.append({ type: 'trial-end', t: (t += 1), trial: 0 });
    log.append({ type: 'run-end', t: (t += 1), exitCode: 0, reason: 'completed' });
    const s = await sink.close();
    log.close();
    expect(s.stored).toBe(log.count);
    expect(s.notStored).toBe(0);
    expect(s.refused).toBe(0);

    const rows = await stored(runId);
    const lines = readFileSync(join(dir, 'events.jsonl'), 'utf8').trim().split('\n');
    expect(rows).toHaveLength(lines.length);
    rows.forEach((r, i) => {
      const e = JSON.parse(lines[i]!) as { type: string; t: number; trial?: number; probe?: string };
      expect(Number(r.seq)).toBe(i);
      // the body is the log's line (a NUL, which json operators refuse, as U+FFFD)
      expect(r.body).toBe(lines[i]!.replace(/\\u0000/g, '\\ufffd'));
      expect(r.t).toBe(e.t);
      expect(r.type).toBe(e.type);
      expect(r.trial).toBe(e.trial ?? null);
      expect(r.probe).toBe(e.probe ?? null);
    });
    const [err] = await q<{ message: string }>(`select body->>'message' as message from blackout.events join blackout.runs using (run_key) where run_id = $1 and type = 'probe-error'`, [runId]);
    expect(err!.message).toBe(awkward.replace('\u0000', '\ufffd'));
    const [run] = await q<{ events_stored: string; exit_code: number }>(`select events_stored, exit_code from blackout.runs where run_id = $1`, [runId]);
    expect(Number(run!.events_stored)).toBe(lines.length);
    expect(run!.exit_code).toBe(0);
  }, 120_000);

  it('a queue that outgrows its memory budget while the database is away is read back from the run folder: every event stored once', async () => {
    const dir = tempDir();
    const log = new EventLog(join(dir, 'events.jsonl'));
    const said: string[] = [];
    const sink = new RunStoreSink(db.url, { outDir: dir, batchRows: 1000, maxQueueBytes: 64 << 10, closeWaitMs: 60_000, log: (l) => said.push(l) });
    log.subscribe(sink.onEvent);
    const runId = 'overflow-1';
    log.append(runStart(runId));
    log.append({ type: 'trial-start', t: 1, trial: 0, requestedMs: 1000 });
    let t = 1;
    for (let i = 0; i < 100; i++) log.append({ type: 'sample', t: (t += 0.1), probe: 'echo', trial: 0, latencyMs: 0.3, seq: i });
    for (let i = 0; i < 200 && !sink.caughtUp; i++) await new Promise((r) => setTimeout(r, 50));
    expect(sink.caughtUp).toBe(true);
    await db.stopServer('fast');
    try {
      // ~100 bytes a row: 5 000 rows are several times the 64 KiB budget
      for (let i = 100; i < 5100; i++) log.append({ type: 'sample', t: (t += 0.1), probe: 'echo', trial: 0, latencyMs: 0.3, seq: i });
      expect(said.some((l) => l.includes('dropped from memory'))).toBe(true);
    } finally {
      await db.startServer();
    }
    log.append({ type: 'trial-end', t: (t += 1), trial: 0 });
    log.append({ type: 'run-end', t: (t += 1), exitCode: 0, reason: 'completed' });
    log.close();
    const s = await sink.close();
    expect(s.notStored, said.join('\n')).toBe(0);
    expect(s.refused, said.join('\n')).toBe(0);
    const rows = await stored(runId);
    const lines = readFileSync(join(dir, 'events.jsonl'), 'utf8').trim().split('\n');
    expect(rows).toHaveLength(lines.length);
    expect(rows.map((r) => Number(r.seq))).toEqual(lines.map((_, i) => i));
    // the same text, the rows read back from the folder too (json refuses NUL: it is stored as U+FFFD)
    expect(rows.map((r) => r.body)).toEqual(lines.map((l) => l.replaceAll('\\u0000', '\\ufffd')));
    const trials = await q<{ trial: number }>(`select trial from blackout.trials where run_id = $1`, [runId]);
    expect(trials.map((r) => r.trial)).toEqual([0]);
  }, 180_000);

  it('resumes after a high-water mark that falls inside a queued chunk: the rest stored once, nothing twice', async () => {
    const dir = tempDir();
    const runId = 'resume-1';
    const log = new EventLog(join(dir, 'events.jsonl'));
    log.append(runStart(runId));
    log.append({ type: 'trial-start', t: 1, trial: 0, requestedMs: 1000 });
    let t = 1;
    for (let i = 0; i < 500; i++) log.append({ type: 'sample', t: (t += 0.1), probe: 'echo', trial: 0, latencyMs: 0.3, seq: i });
    log.append({ type: 'probe-error', t: (t += 1), probe: 'echo', trial: 0, message: awkward, fatal: false });
    log.append({ type: 'trial-end', t: (t += 1), trial: 0 });
    log.append({ type: 'run-end', t: (t += 1), exitCode: 0, reason: 'completed' });
    log.close();
    const n = log.count;
    const first = await importRunDir(db.url, dir);
    expect(first.stored).toBe(n);
    const before = await stored(runId);
    // as if the run's own sink had stored only the first 137 events (a batch boundary no chunk of the importer has)
    await q(`delete from blackout.events e using blackout.runs r where e.run_key = r.run_key and r.run_id = $1 and e.seq >= 137`, [runId]);
    await q(`update blackout.runs set events_stored = 137 where run_id = $1`, [runId]);
    const second = await importRunDir(db.url, dir);
    expect(second.refused).toBe(0);
    expect(second.notStored).toBe(0);
    const after = await stored(runId);
    expect(after).toHaveLength(n);
    expect(after).toEqual(before);
    const [run] = await q<{ events_stored: string }>(`select events_stored from blackout.runs where run_id = $1`, [runId]);
    expect(Number(run!.events_stored)).toBe(n);
    // a third import finds everything stored and adds nothing
    await importRunDir(db.url, dir);
    expect(await stored(runId)).toHaveLength(n);
  }, 120_000);
});
