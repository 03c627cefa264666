/**
 * Store ingest on a private PostgreSQL (started and removed here), on the same
 * machine as the harness:
 *  - store ingest: 1 M events made and serialised once (as the event log
 *    does) and handed to the store sink with their JSON lines, events per second from the first event
 *    to the last one committed, and the CPU time of the harness and of the
 *    PostgreSQL processes over that span;
 *  - a run's whole path: the same events made one by one and appended to a
 *    run's event log (events.jsonl in a temp folder) with the sink subscribed
 *    to it, as `run --store` wires it;
 *  - the ceiling: the very rows the sink sent, exported and loaded again with
 *    psql's \copy into the same (emptied) table: PostgreSQL's own COPY rate for
 *    that row width on this machine, with no event made or analysed.
 * Each is measured BENCH_RUNS times (median, min, max).
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPgCluster, type PgCluster } from '../test/helpers/pg-cluster.ts';
import { RunStoreSink } from '../src/store/sink.ts';
import { connectStore } from '../src/store/db.ts';
import { EventLog } from '../src/core/event-log.ts';
import { EVENT_SCHEMA_VERSION, type BlackoutEvent } from '../src/core/events.ts';
import { machine, saveResult, load, runs, spread, fs1 } from './common.ts';

const EVENTS = 1_000_000;
const TICK = 100; // clock ticks per second (USER_HZ)

/** user + system CPU seconds of the cluster's processes (the postmaster and every child: backends, WAL writer, checkpointer) */
function clusterCpu(db: PgCluster): number {
  const postmaster = Number(readFileSync(join(db.dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
  let ticks = 0;
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${d}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const pid = Number(d);
    const ppid = Number(f[1]);
    if (pid !== postmaster && ppid !== postmaster) continue;
    // utime, stime, cutime, cstime: fields 14–17 of stat, 12–15 after "pid (comm) "
    ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  }
  return ticks / TICK;
}

function psqlBin(): string {
  const v = readdirSync('/usr/lib/postgresql').sort((a, b) => Number(b) - Number(a))[0];
  return `/usr/lib/postgresql/${v}/bin/psql`;
}

interface IngestRun {
  eventsPerSec: number;
  ms: number;
  batches: number;
  harnessCpuS: number;
  pgCpuS: number;
}

/** a run of n events: run-start, trials of 20 000 samples over 20 probes, run-end */
function* runEvents(n: number, k: number): Generator<BlackoutEvent> {
  const probes = Array.from({ length: 20 }, (_, i) => ({ name: `p${i}`, kind: 'tcp', intervalMs: 100, toleranceMs: 500, policy: {} }));
  yield {
    type: 'run-start',
    t: 0,
    schema: EVENT_SCHEMA_VERSION,
    runId: `ingest-${k}`,
    suite: 'ingest',
    config: {},
    wallMs: Date.now(),
    host: 'bench',
    target: { name: 'lab', address: '10.213.0.2' },
    injector: { kind: 'cable-pull' },
    probes,
    version: '0',
  };
  let t = 0;
  let trial = -1;
  for (let i = 1; i < n; i++) {
    if (i % 20_000 === 1) {
      if (trial >= 0) yield { type: 'trial-end', t: ++t, trial };
      trial++;
      yield { type: 'trial-start', t: ++t, trial, requestedMs: 2000 };
      i += 2;
    }
    yield { type: 'sample', t: (t += 0.05), probe: probes[i % 20]!.name, trial, latencyMs: 0.31, seq: i };
  }
  yield { type: 'trial-end', t: ++t, trial };
  yield { type: 'run-end', t: ++t, exitCode: 0, reason: 'completed' };
}

/**
 * One run's events into the store, made one by one. 'run': appended to the
 * run's event log with the sink subscribed to it (as `run --store` wires it);
 * 'sink': each serialised once (the event log's JSON.stringify) and handed
 * to the sink with its line, without the event log's file write.
 */
async function runIngest(db: PgCluster, n: number, k: number, mode: 'run' | 'sink'): Promise<IngestRun> {
  const dir = mkdtempSync(join(tmpdir(), 'blackout-bench-ingest-'));
  try {
    const sink = new RunStoreSink(db.url, { outDir: dir, closeWaitMs: 600_000 });
    let log: EventLog | null = null;
    if (mode === 'run') {
      log = new EventLog(join(dir, 'events.jsonl'));
      log.subscribe(sink.onEvent);
    }
    // a run's lease, preflight and warm-up take seconds before its first events: the sink connects meanwhile
    await new Promise((r) => setTimeout(r, 1000));
    const cpu0 = process.cpuUsage();
    const pg0 = clusterCpu(db);
    const t0 = performance.now();
    let i = 0;
    for (const e of runEvents(n, k)) {
      if (log) log.append(e);
      else sink.onEvent(e, JSON.stringify(e));
      // hand the loop to the log's timer and the sink's pump now and then, as a run's timers do
      if (++i % 10_000 === 0) await new Promise((r) => setImmediate(r));
    }
    const s = await sink.close();
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    // the sink's backend has exited: its CPU counts once the postmaster has reaped it
    await new Promise((r) => setTimeout(r, 500));
    const pgCpuS = clusterCpu(db) - pg0;
    log?.close();
    if (s.notStored || s.refused || s.stored !== s.events || s.events !== i) throw new Error(`ingest: ${s.stored}/${s.events} stored of ${i}`);
    return { eventsPerSec: s.stored / (ms / 1000), ms, batches: s.batches, harnessCpuS: (cpu.user + cpu.system) / 1e6, pgCpuS };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** PostgreSQL's own COPY rate: the stored rows exported, then loaded again by psql \copy into the emptied table */
function ceiling(db: PgCluster, file: string): { rowsPerSec: number; ms: number; rows: number; pgCpuS: number } {
  const psql = psqlBin();
  execFileSync(psql, [db.url, '-qc', 'truncate blackout.events']);
  execFileSync(psql, [db.url, '-qc', 'checkpoint']);
  const pg0 = clusterCpu(db);
  const t0 = performance.now();
  const out = execFileSync(psql, [db.url, '-c', `\\copy blackout.events (run_key, seq, t, type, trial, probe, body) from '${file}'`], { encoding: 'utf8' });
  const ms = performance.now() - t0;
  const rows = Number(/COPY (\d+)/.exec(out)?.[1] ?? NaN);
  // psql's backend has exited: its CPU counts once the postmaster has reaped it
  execFileSync('sleep', ['0.5']);
  return { rowsPerSec: rows / (ms / 1000), ms, rows, pgCpuS: clusterCpu(db) - pg0 };
}

/**
 * The same benchmark against the sink before its rows were made from the event log's lines
 * (commit 411aa9e: a second JSON.stringify per event, a string per queued row, connecting at the
 * first batch), measured on this machine on 2026-12-03 18:55–18:57 UTC, load average 1.4–5.2:
 * events per second, median (min–max) of 3, and the harness's CPU seconds per 1 M events.
 */
const BEFORE = { sink: { median: 88_463, min: 68_243, max: 103_152, cpuS: 9.3 }, run: { median: 73_654, min: 67_406, max: 75_492, cpuS: 10.9 } };

export async function ingest(): Promise<void> {
  const loadBefore = load();
  const db = await startPgCluster();
  const tmp = mkdtempSync(join(tmpdir(), 'blackout-bench-copy-'));
  try {
    const c = await connectStore(db.url);
    const psql = psqlBin();
    const file = join(tmp, 'events.copy');
    const ing: IngestRun[] = [];
    const alone: IngestRun[] = [];
    for (let k = 0; k < runs(); k++) {
      for (const mode of ['sink', 'run'] as const) {
        // each run into the same empty table, after a checkpoint, so no run pays for another's writes
        await c.query('truncate blackout.events, blackout.runs cascade');
        await c.query('checkpoint');
        const r = await runIngest(db, EVENTS, k, mode);
        (mode === 'run' ? ing : alone).push(r);
        process.stdout.write(`  ingest ${mode} ${k + 1}: ${Math.round(r.eventsPerSec)} events/s\n`);
      }
    }
    // the rows of the last run, as the sink sent them (psql \copy: the client writes the file)
    execFileSync(psql, [db.url, '-qc', `\\copy blackout.events (run_key, seq, t, type, trial, probe, body) to '${file}'`]);
    const bytes = statSync(file).size;
    const perM = (s: number, n: number) => (s / n) * 1e6;
    const ceil = Array.from({ length: runs() }, () => ceiling(db, file));
    await c.end();
    const eps = spread(alone.map((r) => r.eventsPerSec));
    const before = (b: (typeof BEFORE)['sink'], now: number) => `${b.median} (${b.min}–${b.max}) → ×${(now / b.median).toFixed(2)}`;
    const row = (what: string, rs: IngestRun[], b: (typeof BEFORE)['sink'] | null) =>
      `| ${what} | ${fs1(spread(rs.map((r) => r.eventsPerSec)), 0)} | ${b ? before(b, spread(rs.map((r) => r.eventsPerSec)).median) : '–'} | ${fs1(spread(rs.map((r) => r.ms / 1000)))} | ${fs1(spread(rs.map((r) => perM(r.harnessCpuS, EVENTS))))}${b ? ` (before ${b.cpuS})` : ''} | ${fs1(spread(rs.map((r) => perM(r.pgCpuS, EVENTS))))} |`;
    const rows = ceil[0]!.rows;
    saveResult({
      name: 'ingest',
      title: 'Store ingest: 1 M events of a run into PostgreSQL (COPY), private cluster on the same 2 cores',
      date: new Date().toISOString(),
      machine: machine(),
      load: `${loadBefore} at the start, ${load()} at the end`,
      table: [
        `| median of ${runs()} (min–max) | events (rows) per second | before → ratio | seconds | harness CPU s per 1 M | PostgreSQL CPU s per 1 M |`,
        '| --- | --- | --- | --- | --- | --- |',
        row('store ingest: events made, serialised once (as the event log does) and handed to the store sink with their line; first event to last commit', alone, BEFORE.sink),
        row("a run's whole path: events made one by one, the event log writing events.jsonl, the sink subscribed to it", ing, BEFORE.run),
        `| ceiling: the same ${rows.toLocaleString('en')} rows (${(bytes / rows).toFixed(0)} bytes each) by psql \\copy | ${fs1(spread(ceil.map((r) => r.rowsPerSec)), 0)} | – | ${fs1(spread(ceil.map((r) => r.ms / 1000)))} | – | ${fs1(spread(ceil.map((r) => perM(r.pgCpuS, r.rows))))} |`,
      ],
      goals: [
        {
          goal: 'store ingest ≥ 200 000 events/s',
          met: eps.median >= 200_000,
          figure: `${Math.round(eps.median).toLocaleString('en')} events/s (median of ${eps.n}; ${Math.round(eps.min).toLocaleString('en')}–${Math.round(eps.max).toLocaleString('en')})`,
        },
      ],
      notes: [
        'The database runs with fsync off (a throwaway cluster); a production database with fsync on is also bounded by its disk at each batch commit.',
        'Before: the same benchmark against the sink as it was (a second JSON.stringify and a string per queued row), 3 runs on this machine just before, at a similar load (1.4–5.2). The machine is shared: the same benchmark gives half as much at a load average of 9–14 as at 2, so compare figures measured at a similar load.',
        "Harness CPU: the benchmark's own process (the sink's analysis and COPY rows; on the run's path also making the events and the event log's write); PostgreSQL CPU: the postmaster and all its children (the COPY backend, WAL writer, checkpointer). On 2 cores the two run in parallel: the wall time is bounded by the larger of the two, and by the machine's other load.",
      ],
      raw: { sinkAlone: alone, runPath: ing, ceiling: ceil, copyBytes: bytes },
    });
  } finally {
    rmSync(tmp, { recursive: true, force: true });
    await db.destroy();
  }
}
