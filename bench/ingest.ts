/**
 * Store ingest on a private PostgreSQL (started and removed here), on the same
 * machine as the harness:
 *  - the run's path: 1 M events appended to a run's event log (events.jsonl in
 *    a temp folder) with the store sink subscribed to it, as `run --store`
 *    wires it; events per second from the first event to the last one
 *    committed, and the CPU time of the harness and of the PostgreSQL
 *    processes over that span;
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
import { EVENT_SCHEMA_VERSION } from '../src/core/events.ts';
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

/** one run's events through its event log and the store sink subscribed to it */
async function runIngest(db: PgCluster, n: number, k: number): Promise<IngestRun> {
  const dir = mkdtempSync(join(tmpdir(), 'blackout-bench-ingest-'));
  try {
    const probes = Array.from({ length: 20 }, (_, i) => ({ name: `p${i}`, kind: 'tcp', intervalMs: 100, toleranceMs: 500, policy: {} }));
    const log = new EventLog(join(dir, 'events.jsonl'));
    const sink = new RunStoreSink(db.url, { outDir: dir, closeWaitMs: 600_000 });
    log.subscribe(sink.onEvent);
    const cpu0 = process.cpuUsage();
    const pg0 = clusterCpu(db);
    const t0 = performance.now();
    log.append({
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
    });
    let t = 0;
    let trial = -1;
    for (let i = 1; i < n; i++) {
      if (i % 20_000 === 1) {
        if (trial >= 0) log.append({ type: 'trial-end', t: ++t, trial });
        trial++;
        log.append({ type: 'trial-start', t: ++t, trial, requestedMs: 2000 });
        i += 2;
      }
      log.append({ type: 'sample', t: (t += 0.05), probe: probes[i % 20]!.name, trial, latencyMs: 0.31, seq: i });
      // hand the loop to the log's timer and the sink's pump now and then, as a run's timers do
      if (i % 10_000 === 0) await new Promise((r) => setImmediate(r));
    }
    log.append({ type: 'trial-end', t: ++t, trial });
    log.append({ type: 'run-end', t: ++t, exitCode: 0, reason: 'completed' });
    const s = await sink.close();
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const pgCpuS = clusterCpu(db) - pg0;
    log.close();
    if (s.notStored || s.refused || s.stored !== s.events || s.events !== log.count) throw new Error(`ingest: ${s.stored}/${s.events} stored of ${log.count}`);
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
  return { rowsPerSec: rows / (ms / 1000), ms, rows, pgCpuS: clusterCpu(db) - pg0 };
}

export async function ingest(): Promise<void> {
  const loadBefore = load();
  const db = await startPgCluster();
  const tmp = mkdtempSync(join(tmpdir(), 'blackout-bench-copy-'));
  try {
    const c = await connectStore(db.url);
    const psql = psqlBin();
    const file = join(tmp, 'events.copy');
    const ing: IngestRun[] = [];
    for (let k = 0; k < runs(); k++) {
      // each run into the same empty table, after a checkpoint, so no run pays for another's writes
      await c.query('truncate blackout.events, blackout.runs cascade');
      await c.query('checkpoint');
      ing.push(await runIngest(db, EVENTS, k));
      process.stdout.write(`  ingest run ${k + 1}: ${Math.round(ing.at(-1)!.eventsPerSec)} events/s\n`);
    }
    // the rows of the last run, as the sink sent them (psql \copy: the client writes the file)
    execFileSync(psql, [db.url, '-qc', `\\copy blackout.events (run_key, seq, t, type, trial, probe, body) to '${file}'`]);
    const bytes = statSync(file).size;
    const ceil = Array.from({ length: runs() }, () => ceiling(db, file));
    await c.end();
    const eps = spread(ing.map((r) => r.eventsPerSec));
    const rows = ceil[0]!.rows;
    const perM = (s: number, n: number) => (s / n) * 1e6;
    saveResult({
      name: 'ingest',
      title: 'Store ingest: 1 M events of a run into PostgreSQL (COPY), private cluster on the same 2 cores',
      date: new Date().toISOString(),
      machine: machine(),
      load: `${loadBefore} at the start, ${load()} at the end`,
      table: [
        `| median of ${runs()} (min–max) | events (rows) per second | seconds | harness CPU s per 1 M | PostgreSQL CPU s per 1 M |`,
        '| --- | --- | --- | --- | --- |',
        `| a run's events: event log (events.jsonl) → store sink → COPY, first event to last commit | ${fs1(eps, 0)} | ${fs1(spread(ing.map((r) => r.ms / 1000)))} | ${fs1(spread(ing.map((r) => perM(r.harnessCpuS, EVENTS))))} | ${fs1(spread(ing.map((r) => perM(r.pgCpuS, EVENTS))))} |`,
        `| ceiling: the same ${rows.toLocaleString('en')} rows (${(bytes / rows).toFixed(0)} bytes each) by psql \\copy | ${fs1(spread(ceil.map((r) => r.rowsPerSec)), 0)} | ${fs1(spread(ceil.map((r) => r.ms / 1000)))} | – | ${fs1(spread(ceil.map((r) => perM(r.pgCpuS, r.rows))))} |`,
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
        "Harness CPU: the benchmark's own process (making the events, the event log's write, the sink's analysis and COPY rows); PostgreSQL CPU: the postmaster and all its children (the COPY backend, WAL writer, checkpointer). On 2 cores the two run in parallel: the wall time is bounded by the larger of the two, and by the machine's other load.",
      ],
      raw: { ingest: ing, ceiling: ceil, copyBytes: bytes },
    });
  } finally {
    rmSync(tmp, { recursive: true, force: true });
    await db.destroy();
  }
}
