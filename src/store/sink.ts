/**
 * The results store as a second sink of a run's event stream (the run folder
 * stays the primary record). `onEvent` is synchronous and only queues: the
 * run never waits for the database. A pump writes the queue in batches, each
 * one transaction: the raw events by COPY (pg-copy-streams), the trials and
 * probe results finished in it, and the run's high-water mark
 * (runs.events_stored). When the database goes away the pump backs off and
 * retries; on reconnect it reads the high-water mark and resumes after it, so
 * nothing is stored twice and nothing is lost.
 *
 * Ingest speed: each row is made from the JSON line the event log already
 * wrote (no second serialisation; JSON holds no raw tab or newline, so COPY's
 * text format only needs its backslashes doubled), with the run's key in it
 * once the key is known; each row is written straight into a Buffer of
 * CHUNK_BYTES (outside the JS heap: a backlog of a million rows is a few
 * hundred Buffers for the garbage collector, not a million strings) and a
 * batch's Buffers go to COPY as they are. A queue that outgrows its
 * memory budget is dropped and refilled from the run folder's events.jsonl
 * at the end (the same events in the same order: the run's single writer
 * hands its subscribers exactly the lines it writes).
 */
import { finished } from 'node:stream/promises';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { BlackoutEvent, EventOf } from '../core/events.ts';
import { AnalysisBuilder, type TrialResult } from '../analysis/analysis.ts';
import { jsonReport } from '../reporters/json.ts';
import { foldEvents } from '../core/event-log.ts';
import { connectStore } from './db.ts';
import { redactUrl } from './store-url.ts';
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
  /**
   * A campaign attempt's hold on its job: its trials count only while its heartbeat row (worker_id, job_id) exists,
   * checked (and locked against the sweep that releases the job) in the transaction that stores them. An attempt whose
   * job was given to another worker still stores its events; its trials are left out.
   */
  holds?: { workerId: string; jobId: string };
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

/** bytes per Buffer of the queue (some thousands of rows) */
const CHUNK_BYTES = 1 << 20;

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

/**
 * The body column of an event: `line` is its JSON as the event log wrote it
 * (JSON.stringify of the same event), else it is serialised here. JSON escapes
 * every control character, so of COPY's specials only the backslash can occur
 * (doubled); NUL (\u0000, which json operators refuse) becomes U+FFFD as in jsonText.
 */
export function copyBody(e: BlackoutEvent, line?: string): string {
  const s = line ?? JSON.stringify(e);
  if (!s.includes('\\')) return s;
  return (s.includes('\\u0000') ? s.replace(/\\u0000/g, '\\ufffd') : s).replace(/\\/g, '\\\\');
}

/** probe names recur on every sample: escape each once */
const probeCells = new Map<string, string>();
function probeCell(p: string): string {
  let c = probeCells.get(p);
  if (c === undefined) {
    c = esc(p);
    if (probeCells.size < 10_000) probeCells.set(p, c);
  }
  return c;
}

/**
 * The t cell: events are made as { type, t, … }, so their JSON line begins
 * {"type":"…","t":NUMBER, and that NUMBER is already the text String(t)
 * would make (formatting a double costs more than finding it).
 */
function tCell(e: BlackoutEvent, line: string | undefined): string {
  if (line !== undefined) {
    const at = 9 + e.type.length;
    if (line.startsWith('","t":', at)) {
      let end = line.indexOf(',', at + 6);
      if (end < 0) end = line.length - 1;
      const t = line.slice(at + 6, end);
      if (t !== 'null') return t;
    }
  }
  return String(e.t);
}

/** one events row; `key` (the run's key and a tab) is left out until the run's key is known */
export function copyRow(seq: number, e: BlackoutEvent, line?: string, key = ''): string {
  const trial = 'trial' in e && typeof e.trial === 'number' ? e.trial : '\\N';
  const probe = 'probe' in e && typeof e.probe === 'string' ? probeCell(e.probe) : '\\N';
  return `${key}${seq}\t${tCell(e, line)}\t${e.type}\t${trial}\t${probe}\t${copyBody(e, line)}\n`;
}

/** rows of the queue in COPY text format, each ending in a newline */
interface Chunk {
  /** seq of its first row */
  from: number;
  rows: number;
  data: Buffer;
  /** whether its rows begin with the run's key (rows queued before the key was known do not) */
  keyed: boolean;
}

interface PendingTrial {
  seq: number;
  result: TrialResult;
}

export class RunStoreSink {
  /** the queue: sealed chunks, then the rows of the chunk being filled (seq order, no gap) */
  private chunks: Chunk[] = [];
  /** the Buffer being filled: its rows end at curBytes */
  private cur: Buffer | null = null;
  private curBytes = 0;
  private curRows = 0;
  /** seq of the first row in cur */
  private curFrom = 0;
  private curKeyed = false;
  /** rows queued (chunks and cur) */
  private queued = 0;
  private bytes = 0;
  private seq = 0;
  private runId: string | null = null;
  /** runs.run_key, once the run's row exists */
  private runKey: string | null = null;
  /** the run's key and a tab: the first cell of its rows */
  private keyCell = '';
  private start: EventOf<'run-start'> | null = null;
  private analysis = new AnalysisBuilder();
  private trials: PendingTrial[] = [];
  private end: { seq: number; e: EventOf<'run-end'>; summary: string } | null = null;
  private client: pg.Client | null = null;
  /** the connection opened (and the schema migrated) when the sink is made, while the run prepares */
  private early: Promise<pg.Client> | null;
  private pumping: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private backoffMs = 0;
  private downSince: number | null = null;
  private overflowed = false;
  private closed = false;
  /** why trials that end from now on are not counted (stopCounting), else null */
  private notCounting: string | null = null;
  private readonly log: (l: string) => void;
  readonly stats: SinkStats = { runId: null, events: 0, stored: 0, batches: 0, reconnects: 0, downMs: 0, notStored: 0, refused: 0 };

  constructor(
    private readonly url: string,
    private readonly opts: SinkOptions = {},
  ) {
    this.log = opts.log ?? (() => {});
    // connect now: a run spends seconds on its lease and preflight before its first events, and a
    // busy event loop turns too rarely to get through a connection's round trips quickly later
    this.early = this.open();
    this.early.catch(() => {}); // a failure is met (and retried) by the first pump
  }

  private open(): Promise<pg.Client> {
    const p: Promise<pg.Client> = connectStore(this.url, { onError: (e) => void p.then((c) => this.client === c && this.markDown(e)) });
    return p;
  }

  /**
   * Queues one event; never blocks, never throws. `line`: the event's JSON as
   * the event log wrote it (JSON.stringify of the same event), reused for the row.
   */
  onEvent = (e: BlackoutEvent, line?: string): void => {
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
        if (r && this.notCounting) this.log(`store: trial ${e.trial} is stored as events, not counted (${this.notCounting})`);
        else if (r) this.trials.push({ seq, result: r });
      } else if (e.type === 'run-end') {
        this.end = { seq, e, summary: jsonText(JSON.parse(jsonReport(this.analysis.finish()))) };
      }
    } catch (err) {
      this.log(`store: could not fold event ${seq}: ${(err as Error).message}`);
    }
    if (this.overflowed) return;
    this.enqueue(seq, e, line);
    if (this.bytes > (this.opts.maxQueueBytes ?? 256 << 20)) {
      // the run folder has every event: refill from it at the end rather than hold them all
      this.log(`store: the database has been away too long; ${this.queued} queued events dropped from memory, to be read back from events.jsonl`);
      this.overflowed = true;
      this.clearQueue();
    }
    this.schedule(this.queued >= (this.opts.batchRows ?? 50_000) ? 0 : 100);
  };

  /** the trials that end from now on are stored as events only, never counted (a run stopped mid-trial: the trial was cut short) */
  stopCounting(why: string): void {
    this.notCounting ??= why;
  }

  private enqueue(seq: number, e: BlackoutEvent, line?: string): void {
    const keyed = this.runKey !== null;
    const row = copyRow(seq, e, line, this.keyCell);
    // a UTF-16 unit is at most 3 bytes of UTF-8
    if (this.curRows && (keyed !== this.curKeyed || this.curBytes + 3 * row.length > this.cur!.length)) this.seal();
    if (!this.curRows) {
      if (!this.cur || this.cur.length - this.curBytes < 3 * row.length) this.cur = Buffer.allocUnsafe(Math.max(CHUNK_BYTES, 3 * row.length));
      this.curFrom = seq;
      this.curKeyed = keyed;
    }
    const n = this.cur!.write(row, this.curBytes);
    this.curBytes += n;
    this.curRows++;
    this.bytes += n;
    this.queued++;
  }

  /**
   * an empty queue; curBytes too: a stale offset into a new Buffer would send its unwritten
   * bytes (allocUnsafe's leftovers) to COPY ahead of the first row
   */
  private clearQueue(): void {
    this.chunks = [];
    this.cur = null;
    this.curBytes = 0;
    this.curRows = 0;
    this.queued = 0;
    this.bytes = 0;
  }

  /** the rows being filled become a chunk (the rest of their Buffer is filled next) */
  private seal(): void {
    if (!this.curRows) return;
    const data = this.cur!.subarray(0, this.curBytes);
    this.chunks.push({ from: this.curFrom, rows: this.curRows, data, keyed: this.curKeyed });
    this.curFrom += this.curRows;
    this.cur = this.cur!.subarray(this.curBytes);
    this.curBytes = 0;
    this.curRows = 0;
  }

  private setKey(k: string): void {
    this.runKey = k;
    this.keyCell = `${k}\t`;
  }

  /** forget the first queued rows, up to (not including) seq n */
  private discard(n: number): void {
    this.seal();
    while (this.chunks.length) {
      const c = this.chunks[0]!;
      if (c.from + c.rows <= n) {
        this.chunks.shift();
        this.queued -= c.rows;
        this.bytes -= c.data.length;
        continue;
      }
      if (c.from < n) {
        // part of a chunk (the store's high-water mark written by another sink, e.g. the run's own before an import)
        let off = 0;
        for (let i = 0; i < n - c.from; i++) off = c.data.indexOf(10, off) + 1;
        this.queued -= n - c.from;
        this.bytes -= off;
        c.data = c.data.subarray(off);
        c.rows -= n - c.from;
        c.from = n;
      }
      return;
    }
  }

  private schedule(ms: number): void {
    if (this.timer || this.pumping) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.pumping = this.pump().finally(() => {
        this.pumping = null;
        if (this.queued && !this.overflowed) this.schedule(this.backoffMs);
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
      const early = this.early;
      this.early = null;
      const c = await (early ?? this.open());
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
      if (rows[0]) this.setKey(rows[0].k);
      this.dropThrough(stored);
      return true;
    } catch (e) {
      this.markDown(e as Error);
      return false;
    }
  }

  /** forget queued rows with seq < n (already in the store) */
  private dropThrough(n: number): void {
    this.discard(n);
    this.trials = this.trials.filter((t) => t.seq >= n);
    if (this.end && this.end.seq < n) this.end = null;
    this.stats.stored = Math.max(this.stats.stored, n);
  }

  private async pump(): Promise<void> {
    while (this.queued && !this.overflowed) {
      if (!this.client && !(await this.connect())) return;
      if (!this.queued) return;
      // whole chunks, up to batchRows rows (at least one chunk)
      this.seal();
      const batch: Chunk[] = [];
      let n = 0;
      for (const c of this.chunks) {
        if (batch.length && n + c.rows > (this.opts.batchRows ?? 50_000)) break;
        batch.push(c);
        n += c.rows;
      }
      const from = batch[0]!.from;
      try {
        await this.writeBatch(batch, from, from + n - 1);
      } catch (e) {
        if (isConnectionError(e)) {
          this.markDown(e as Error);
          return;
        }
        // the database refuses these rows (a bug of ours, or a schema changed under us): retrying
        // would loop for ever; name it and go on (the run folder holds them; import can retry later)
        this.log(`store: the database refused events ${from}…${from + n - 1} of run ${this.runId}: ${(e as Error).message}`);
        this.stats.refused += n;
        this.discard(from + n);
        this.trials = this.trials.filter((t) => t.seq > from + n - 1);
        continue;
      }
      this.dropThrough(from + n);
      this.stats.batches++;
    }
  }

  private async writeBatch(batch: Chunk[], from: number, last: number): Promise<void> {
    const c = this.client!;
    await c.query('begin');
    try {
      if (from === 0 || this.runKey === null) this.setKey(await this.insertRun(c));
      const key = this.keyCell;
      const stream = c.query(copyFrom(`copy ${SCHEMA}.events (run_key, seq, t, type, trial, probe, body) from stdin`));
      // every Buffer handed over at once: the socket takes them as fast as the server reads, each
      // drain in the event loop's next turn, without an async iteration step per Buffer in between
      const done = finished(stream);
      for (const ch of batch) stream.write(ch.keyed ? ch.data : withKey(ch.data, key));
      stream.end();
      await done;
      const trials = this.trials.filter((t) => t.seq <= last);
      if (trials.length && (await this.holdsJob(c, trials))) for (const t of trials) await this.insertTrial(c, t.result);
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

  /** whether the attempt still holds its job (always, for a run that is no campaign attempt); logs when not */
  private async holdsJob(c: pg.Client, trials: PendingTrial[]): Promise<boolean> {
    const h = this.opts.holds;
    if (!h) return true;
    const { rowCount } = await c.query(`select 1 from ${SCHEMA}.worker_heartbeats where worker_id = $1 and job_id = $2 for key share`, [h.workerId, h.jobId]);
    if (rowCount) return true;
    this.log(`store: trial(s) ${trials.map((t) => t.result.index).join(', ')} of job ${h.jobId} not counted: this attempt no longer holds the job (it was released to another worker)`);
    return false;
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
    return !this.overflowed && this.queued === 0 && !this.pumping;
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
    while (this.queued && Date.now() < deadline) {
      if (this.timer) {
        clearTimeout(this.timer);
        this.timer = null;
      }
      if (this.pumping) await this.pumping;
      else await (this.pumping = this.pump().finally(() => (this.pumping = null)));
      if (this.queued) await new Promise((r) => setTimeout(r, Math.max(100, this.backoffMs)));
    }
    if (this.timer) clearTimeout(this.timer);
    if (this.pumping) await this.pumping;
    if (this.downSince !== null) this.stats.downMs += Date.now() - this.downSince;
    this.stats.notStored = this.queued;
    if (this.queued) {
      this.log(`store: ${this.queued} event(s) of run ${this.runId} not stored (database unreachable); add them later with: blackout import ${this.opts.outDir ?? 'RUN_DIR'} --store URL`);
    }
    await this.client?.end().catch(() => {});
    this.client = null;
    if (this.early) await (await this.early.catch(() => null))?.end().catch(() => {});
    this.early = null;
    return this.stats;
  }

  /** the queue from the run folder, from the first event not yet stored */
  private refillFromFolder(): void {
    const from = this.stats.stored;
    this.clearQueue();
    let seq = 0;
    foldEvents(join(this.opts.outDir!, 'events.jsonl'), (e) => {
      if (seq >= from) this.enqueue(seq, e);
      seq++;
    });
    this.overflowed = false;
  }
}

/** a chunk queued before the run's key was known, with the key put in front of each row */
function withKey(data: Buffer, key: string): Buffer {
  const s = data.toString('utf8');
  return Buffer.from(key + s.slice(0, -1).replaceAll('\n', `\n${key}`) + '\n');
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
