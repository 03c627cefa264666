/**
 * The results store as a second sink of a run's event stream (the run folder
 * stays the primary record). `onEvent` is synchronous and only queues: the
 * run never waits for the database. A pump writes the queue in batches, each
 * one transaction: the raw events by COPY (pg-copy-streams), the trials and
 * probe results finished in it, and the run's high-water mark
 * (runs.events_stored). When the database goes away the pump backs off and
 * retries; on reconnect it reads the high-water mark and resumes after it, so
 * nothing is stored twice and nothing is lost. A queue that outgrows its
 * memory budget is dropped and refilled from the run folder's events.jsonl
 * at the end (the same events in the same order: the run's single writer
 * hands its subscribers exactly the lines it writes).
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { BlackoutEvent, EventOf } from '../core/events.ts';
import { AnalysisBuilder, type TrialResult } from '../analysis/analysis.ts';
import { jsonReport } from '../reporters/json.ts';
import { foldEvents } from '../core/event-log.ts';
import { connectStore, redactUrl } from './db.ts';
import { SCHEMA } from './migrations.ts';

export interface SinkOptions {
  /** the run folder (recorded with the run; the source when the queue overflowed) */
  outDir?: string;
  log?: (line: string) => void;
  /** how long close() waits for an unreachable database before giving up (the run folder has it all) */
  closeWaitMs?: number;
  /** the queue's memory budget */
  maxQueueBytes?: number;
  /** rows per COPY batch */
  batchRows?: number;
}

export interface SinkStats {
  runId: string | null;
  events: number;
  stored: number;
  batches: number;
  reconnects: number;
  /** total time the database was unreachable while this run queued */
  downMs: number;
  notStored: number;
  /** events the database refused (logged) */
  refused: number;
}

/** COPY text format: backslash, tab, newline, carriage return escaped; \N is NULL. */
function esc(s: string): string {
  return /[\\\t\n\r]/.test(s) ? s.replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\n/g, '\\n').replace(/\r/g, '\\r') : s;
}

/** JSON for a jsonb column: jsonb refuses the NUL character (an error message may carry one) */
export function jsonText(v: unknown): string {
  const s = JSON.stringify(v);
  return s.includes('\\u0000') ? s.replace(/\\u0000/g, '\\ufffd') : s;
}

/** text columns refuse NUL too */
const text = (s: string | null | undefined): string | null => (s == null ? null : s.replace(/\u0000/g, '\ufffd'));

/** connection trouble (retry when it is back) as opposed to a statement the database refuses */
function isConnectionError(e: unknown): boolean {
  const code = (e as { code?: unknown }).code;
  if (typeof code !== 'string' || !/^[0-9A-Z]{5}$/.test(code)) return true; // ECONNREFUSED, a dropped socket, a timeout
  return code.startsWith('08') || code.startsWith('57P') || code.startsWith('53') || code === '40001' || code === '40P01';
}

/** one events row without its run key (prefixed at COPY time, once the run's key is known) */
export function copyRow(seq: number, e: BlackoutEvent): string {
  const body = jsonText(e);
  const trial = 'trial' in e && typeof e.trial === 'number' ? String(e.trial) : '\\N';
  const probe = 'probe' in e && typeof e.probe === 'string' ? esc(e.probe) : '\\N';
  return `${seq}\t${e.t}\t${e.type}\t${trial}\t${probe}\t${esc(body)}\n`;
}

interface PendingTrial {
  seq: number;
  result: TrialResult;
}

export class RunStoreSink {
  private lines: string[] = [];
  private bytes = 0;
  /** seq of lines[0] */
  private firstSeq = 0;
  private seq = 0;
  private runId: string | null = null;
  /** runs.run_key, once the run's row exists */
  private runKey: string | null = null;
  private start: EventOf<'run-start'> | null = null;
  private analysis = new AnalysisBuilder();
  private trials: PendingTrial[] = [];
  private end: { seq: number; e: EventOf<'run-end'>; summary: string } | null = null;
  private client: pg.Client | null = null;
  private pumping: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private backoffMs = 0;
  private downSince: number | null = null;
  private overflowed = false;
  private closed = false;
  private readonly log: (l: string) => void;
  readonly stats: SinkStats = { runId: null, events: 0, stored: 0, batches: 0, reconnects: 0, downMs: 0, notStored: 0, refused: 0 };

  constructor(
    private readonly url: string,
    private readonly opts: SinkOptions = {},
  ) {
    this.log = opts.log ?? (() => {});
  }

  /** Queues one event; never blocks, never throws. */
  onEvent = (e: BlackoutEvent): void => {
    if (this.closed) return;
    if (!this.runId) {
      if (e.type !== 'run-start') return;
      this.runId = e.runId;
      this.stats.runId = e.runId;
      this.start = e;
    }
    const seq = this.seq++;
    this.stats.events++;
    try {
      this.analysis.add(e);
      if (e.type === 'trial-end') {
        const r = this.analysis.trial(e.trial);
        if (r) this.trials.push({ seq, result: r });
      } else if (e.type === 'run-end') {
        this.end = { seq, e, summary: jsonText(JSON.parse(jsonReport(this.analysis.finish()))) };
      }
    } catch (err) {
      this.log(`store: could not fold event ${seq}: ${(err as Error).message}`);
    }
    if (this.overflowed) return;
    const line = copyRow(seq, e);
    this.lines.push(line);
    this.bytes += line.length;
    if (this.bytes > (this.opts.maxQueueBytes ?? 256 << 20)) {
      // the run folder has every event: refill from it at the end rather than hold them all
      this.log(`store: the database has been away too long; ${this.lines.length} queued events dropped from memory, to be read back from events.jsonl`);
      this.overflowed = true;
      this.lines = [];
      this.bytes = 0;
    }
    this.schedule(this.lines.length >= (this.opts.batchRows ?? 50_000) ? 0 : 100);
  };

  private schedule(ms: number): void {
    if (this.timer || this.pumping) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.pumping = this.pump().finally(() => {
        this.pumping = null;
        if (this.lines.length && !this.overflowed) this.schedule(this.backoffMs);
      });
    }, ms);
  }

  private markDown(e: Error): void {
    if (this.downSince === null) {
      this.downSince = Date.now();
      this.log(`store: ${redactUrl(this.url)} unreachable (${e.message}); events queue until it is back`);
    }
    this.backoffMs = Math.min(2000, Math.max(250, this.backoffMs * 2));
    const c = this.client;
    this.client = null;
    void c?.end().catch(() => {});
  }

  private async connect(): Promise<boolean> {
    try {
      const c = await connectStore(this.url, { onError: (e) => this.client === c && this.markDown(e) });
      this.client = c;
      if (this.downSince !== null) {
        this.stats.downMs += Date.now() - this.downSince;
        this.stats.reconnects++;
        this.log(`store: back after ${((Date.now() - this.downSince) / 1000).toFixed(1)} s; catching up`);
        this.downSince = null;
      }
      this.backoffMs = 0;
      // resume after what the store already holds (a batch that committed as the connection died)
      const { rows } = await c.query<{ n: string; k: string }>(`select events_stored as n, run_key as k from ${SCHEMA}.runs where run_id = $1`, [this.runId]);
      const stored = rows[0] ? Number(rows[0].n) : 0;
      this.runKey = rows[0] ? rows[0].k : null;
      this.dropThrough(stored);
      return true;
    } catch (e) {
      this.markDown(e as Error);
      return false;
    }
  }

  /** forget queued rows with seq < n (already in the store) */
  private dropThrough(n: number): void {
    const k = Math.min(this.lines.length, Math.max(0, n - this.firstSeq));
    if (k > 0) {
      for (let i = 0; i < k; i++) this.bytes -= this.lines[i]!.length;
      this.lines.splice(0, k);
      this.firstSeq += k;
    }
    if (n > this.firstSeq && this.lines.length === 0) this.firstSeq = n;
    this.trials = this.trials.filter((t) => t.seq >= n);
    if (this.end && this.end.seq < n) this.end = null;
    this.stats.stored = Math.max(this.stats.stored, n);
  }

  private async pump(): Promise<void> {
    while (this.lines.length && !this.overflowed) {
      if (!this.client && !(await this.connect())) return;
      if (!this.lines.length) return;
      const n = Math.min(this.lines.length, this.opts.batchRows ?? 50_000);
      const from = this.firstSeq;
      try {
        await this.writeBatch(this.lines.slice(0, n), from, from + n - 1);
      } catch (e) {
        if (isConnectionError(e)) {
          this.markDown(e as Error);
          return;
        }
        // the database refuses these rows (a bug of ours, or a schema changed under us): retrying
        // would loop for ever; name it and go on (the run folder holds them; import can retry later)
        this.log(`store: the database refused events ${from}…${from + n - 1} of run ${this.runId}: ${(e as Error).message}`);
        this.stats.refused += n;
        for (let i = 0; i < n; i++) this.bytes -= this.lines[i]!.length;
        this.lines.splice(0, n);
        this.firstSeq += n;
        this.trials = this.trials.filter((t) => t.seq > from + n - 1);
        continue;
      }
      this.dropThrough(from + n);
      this.stats.batches++;
    }
  }

  private async writeBatch(rows: string[], from: number, last: number): Promise<void> {
    const c = this.client!;
    await c.query('begin');
    try {
      if (from === 0 || this.runKey === null) this.runKey = await this.insertRun(c);
      const stream = c.query(copyFrom(`copy ${SCHEMA}.events (run_key, seq, t, type, trial, probe, body) from stdin`));
      await pipeline(Readable.from(chunks(rows, this.runKey)), stream);
      for (const t of this.trials) if (t.seq <= last) await this.insertTrial(c, t.result);
      if (this.end && this.end.seq <= last) {
        const s = JSON.parse(this.end.summary) as { passed?: boolean };
        await c.query(`update ${SCHEMA}.runs set ended_at = to_timestamp(($2::float8 + wall_ms) / 1000), exit_code = $3, reason = $4, passed = $5, summary = $6 where run_id = $1`, [
          this.runId,
          this.end.e.t,
          this.end.e.exitCode,
          text(this.end.e.reason),
          s.passed ?? null,
          this.end.summary,
        ]);
      }
      await c.query(`update ${SCHEMA}.runs set events_stored = $2 where run_id = $1`, [this.runId, last + 1]);
      await c.query('commit');
    } catch (e) {
      await c.query('rollback').catch(() => {});
      throw e;
    }
  }

  private async insertRun(c: pg.Client): Promise<string> {
    const s = this.start!;
    const { rows } = await c.query<{ k: string }>(
      `insert into ${SCHEMA}.runs (run_id, suite, host, target_name, target_address, injector_kind, started_at, wall_ms, out_dir,
         campaign, job_id, attempt, job_target, worker, shard_index, shard_total, run_start)
       values ($1,$2,$3,$4,$5,$6,to_timestamp($7::float8/1000),$7,$8,$9,$10,$11,$12,$13,$14,$15,$16)
       on conflict (run_id) do update set run_id = excluded.run_id returning run_key as k`,
      [
        s.runId,
        s.suite,
        s.host,
        s.target.name,
        s.target.address,
        s.injector.kind,
        s.wallMs,
        this.opts.outDir ?? null,
        s.job?.campaign ?? null,
        s.job?.id ?? null,
        s.job?.attempt ?? null,
        s.job?.target ?? null,
        s.job?.worker ?? null,
        s.shard?.index ?? null,
        s.shard?.total ?? null,
        jsonText(s),
      ],
    );
    return rows[0]!.k;
  }

  private async insertTrial(c: pg.Client, r: TrialResult): Promise<void> {
    const job = this.start?.job;
    // segments are for timelines in the run's own report; the store keeps the verdict-level figures
    const slim = { ...r, probes: Object.fromEntries(Object.entries(r.probes).map(([k, p]) => [k, { ...p, segments: undefined }])) };
    const ins = await c.query(`insert into ${SCHEMA}.trials (run_id, trial, requested_ms, injected_ms, campaign, job_id, result) values ($1,$2,$3,$4,$5,$6,$7) on conflict do nothing`, [
      this.runId,
      r.index,
      r.requestedMs,
      r.injected?.durationMs ?? null,
      job?.campaign ?? null,
      job?.id ?? null,
      jsonText(slim),
    ]);
    if (ins.rowCount === 0) {
      this.log(`store: trial ${r.index} of ${job ? `job ${job.id}` : `run ${this.runId}`} is already stored; not counted again`);
      return;
    }
    for (const [name, p] of Object.entries(r.probes)) {
      await c.query(`insert into ${SCHEMA}.probe_results (run_id, trial, probe, kind, outcome, observed_outage_ms, reason) values ($1,$2,$3,$4,$5,$6,$7) on conflict do nothing`, [
        this.runId,
        r.index,
        name,
        p.kind,
        p.outcome,
        p.observedOutageMs,
        text(p.reason),
      ]);
    }
  }

  /** Whether every queued event is stored. */
  get caughtUp(): boolean {
    return !this.overflowed && this.lines.length === 0 && !this.pumping;
  }

  /**
   * Flushes what is queued, waiting at most closeWaitMs for an unreachable
   * database; then disconnects. What could not be stored is named, with the
   * command that adds it later.
   */
  async close(): Promise<SinkStats> {
    this.closed = true;
    const deadline = Date.now() + (this.opts.closeWaitMs ?? 60_000);
    if (this.overflowed && this.opts.outDir && existsSync(join(this.opts.outDir, 'events.jsonl'))) this.refillFromFolder();
    while (this.lines.length && Date.now() < deadline) {
      if (this.timer) {
        clearTimeout(this.timer);
        this.timer = null;
      }
      if (this.pumping) await this.pumping;
      else await (this.pumping = this.pump().finally(() => (this.pumping = null)));
      if (this.lines.length) await new Promise((r) => setTimeout(r, Math.max(100, this.backoffMs)));
    }
    if (this.timer) clearTimeout(this.timer);
    if (this.pumping) await this.pumping;
    if (this.downSince !== null) this.stats.downMs += Date.now() - this.downSince;
    this.stats.notStored = this.lines.length;
    if (this.lines.length) {
      this.log(`store: ${this.lines.length} event(s) of run ${this.runId} not stored (database unreachable); add them later with: blackout import ${this.opts.outDir ?? 'RUN_DIR'} --store URL`);
    }
    await this.client?.end().catch(() => {});
    this.client = null;
    return this.stats;
  }

  /** the queue from the run folder, from the first event not yet stored */
  private refillFromFolder(): void {
    const from = this.stats.stored;
    this.lines = [];
    this.bytes = 0;
    this.firstSeq = from;
    let seq = 0;
    foldEvents(join(this.opts.outDir!, 'events.jsonl'), (e) => {
      if (seq >= from) this.lines.push(copyRow(seq, e));
      seq++;
    });
    this.overflowed = false;
  }
}

function* chunks(rows: string[], key: string): Generator<string> {
  // a few hundred KB per write: fewer stream callbacks than one per row
  const prefix = `${key}\t`;
  for (let i = 0; i < rows.length; i += 2000) yield prefix + rows.slice(i, i + 2000).join(prefix);
}

/**
 * `blackout import DIR`: a run folder into the store, after the fact. The same
 * sink fed from the folder's events.jsonl; a run already partly stored (a
 * database that was away during the run) resumes after its high-water mark.
 */
export async function importRunDir(url: string, dir: string, log?: (l: string) => void): Promise<SinkStats> {
  const sink = new RunStoreSink(url, { outDir: dir, log, closeWaitMs: 30_000, maxQueueBytes: Number.MAX_SAFE_INTEGER });
  foldEvents(join(dir, 'events.jsonl'), (e) => sink.onEvent(e));
  return sink.close();
}
