/**
 * The run's single writer and its reader.
 *
 * Writer: appends one JSON line per event to `events.jsonl`. Lines are
 * buffered for at most FLUSH_MS and then written with one write(2) on an
 * O_APPEND descriptor, so a `kill -9` of the harness loses at most the last
 * FLUSH_MS of events (the kernel keeps what was written). Structural events
 * (cut, restore, trial boundaries) are written at once.
 *
 * write(2) may write less than asked (a full disk, a signal, a pipe or a
 * network filesystem): the writer loops until every byte is out, and if a
 * write fails half-way it starts the next chunk on a fresh line, so one torn
 * line never swallows the events after it.
 *
 * Reader: validates every line against the schema; a torn line (not JSON: the
 * process died mid-write, or a write failed half-way) is skipped and counted,
 * wherever it is; a JSON line that is not a valid event is an error naming the
 * line, except the last (the writer died while writing it).
 */
import { closeSync, openSync, readSync, writeSync, fsyncSync } from 'node:fs';
import { EventSchema, EVENT_SCHEMA_VERSION, type BlackoutEvent } from './events.ts';
import { sampleFromBytes } from './sample-line.ts';

const FLUSH_MS = 50;
const IMMEDIATE = new Set<BlackoutEvent['type']>(['run-start', 'cut', 'restore', 'trial-start', 'trial-end', 'run-end', 'preflight', 'heal', 'session-lost', 'injector-error']);

/** `line` is the event's JSON exactly as written to events.jsonl (a sink may reuse it rather than serialise again) */
export type Listener = (event: BlackoutEvent, line: string) => void;

/** write(2) as fs.writeSync: may write fewer bytes than asked (tests substitute a stingy one) */
export type WriteFn = (fd: number, buffer: Buffer, offset: number, length: number) => number;

const writeSyncFn: WriteFn = (fd, b, o, l) => writeSync(fd, b, o, l);

/**
 * Writes bytes [0, length) of `bytes` whole: write(2) may take fewer bytes
 * than asked; 0 bytes for a non-empty write means the file cannot take more,
 * so it throws (naming `what`) rather than spin. Shared by the event log and
 * the reports (reporters/index.ts).
 */
export function writeFully(fd: number, bytes: Buffer, length: number, what: string, write: WriteFn = writeSyncFn): void {
  for (let off = 0; off < length;) {
    const n = write(fd, bytes, off, length - off);
    if (!(n > 0)) throw new Error(`${what}: write(2) wrote nothing (${n})`);
    off += n;
  }
}

export class EventLog {
  private fd: number | null;
  private buffer: string[] = [];
  private timer: NodeJS.Timeout | null = null;
  private listeners: Listener[] = [];
  /** a write failed half-way: the file may end mid-line */
  private midLine = false;
  private readonly write: WriteFn;
  count = 0;

  constructor(
    readonly path: string,
    opts: { write?: WriteFn } = {},
  ) {
    this.write = opts.write ?? writeSyncFn;
    // 'wx': a run folder holds one run; a second writer must never append to another run's record
    this.fd = openSync(path, 'wx');
  }

  /** Subscribers (live view, in-run analysis) see every event in order. */
  subscribe(listener: Listener): () => void {
    this.listeners.push(listener);
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    };
  }

  append(event: BlackoutEvent): void {
    if (this.fd === null) return; // closed: late events from a probe being torn down
    const line = JSON.stringify(event);
    this.buffer.push(line);
    this.count++;
    if (IMMEDIATE.has(event.type)) this.flush();
    else if (!this.timer) this.timer = setTimeout(() => this.flush(), FLUSH_MS);
    for (const l of this.listeners) {
      try {
        l(event, line);
      } catch {
        // a broken listener (e.g. the terminal went away) must never stop the record
      }
    }
  }

  flush(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.fd === null || this.buffer.length === 0) return;
    const chunk = Buffer.from((this.midLine ? '\n' : '') + this.buffer.join('\n') + '\n');
    this.buffer = [];
    try {
      writeFully(this.fd, chunk, chunk.length, 'events.jsonl', this.write);
      this.midLine = false;
    } catch (e) {
      // part of the chunk may be in the file: the next chunk starts on a fresh line (a blank line is harmless)
      this.midLine = true;
      throw e;
    }
  }

  close(): void {
    this.flush();
    if (this.fd !== null) {
      try {
        fsyncSync(this.fd);
      } catch {
        /* not all filesystems support fsync; the data is written either way */
      }
      closeSync(this.fd);
      this.fd = null;
    }
  }
}

export interface ReadResult {
  events: BlackoutEvent[];
  /** a last line that did not parse: the writer died mid-line */
  tornTail: string | null;
  /** torn lines skipped anywhere in the log (the torn tail included) */
  tornLines: number;
  /** run-end missing: the run died or is still going */
  incomplete: boolean;
}

export class EventLogError extends Error {}

function parseLine(line: string, lineNo: number, isLast: boolean): BlackoutEvent | 'torn' {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    // not JSON: a line torn by a write that failed half-way, wherever it is
    return 'torn';
  }
  const parsed = EventSchema.safeParse(raw);
  if (!parsed.success) {
    if (isLast) return 'torn';
    const issue = parsed.error.issues[0];
    throw new EventLogError(`events.jsonl line ${lineNo}: ${issue ? `${issue.path.join('.') || 'event'}: ${issue.message}` : 'invalid event'}`);
  }
  if (parsed.data.type === 'run-start' && parsed.data.schema > EVENT_SCHEMA_VERSION) {
    throw new EventLogError(`events.jsonl was written with event schema ${parsed.data.schema}; this blackout reads up to ${EVENT_SCHEMA_VERSION}`);
  }
  return parsed.data;
}

/** The whole log in memory (tests, small runs); the same reader as foldEvents. */
export function readEvents(path: string): ReadResult {
  const events: BlackoutEvent[] = [];
  const { tornTail, tornLines } = foldEvents(path, (e) => events.push(e));
  return { events, tornTail, tornLines, incomplete: !events.some((e) => e.type === 'run-end') };
}

/** a hand check for the one event that makes up most of a log (zod for every other type) */
function quickSample(raw: unknown): BlackoutEvent | null {
  const r = raw as Record<string, unknown> | null;
  if (
    r &&
    r.type === 'sample' &&
    typeof r.t === 'number' &&
    typeof r.probe === 'string' &&
    Number.isInteger(r.trial) &&
    (r.latencyMs === undefined || typeof r.latencyMs === 'number') &&
    (r.seq === undefined || typeof r.seq === 'number') &&
    (r.value === undefined || typeof r.value === 'number') &&
    (r.lateMs === undefined || typeof r.lateMs === 'number') &&
    (r.sendStepMs === undefined || typeof r.sendStepMs === 'number')
  ) {
    return r as unknown as BlackoutEvent;
  }
  return null;
}

export interface FoldResult {
  count: number;
  /** the last line, when it was torn */
  tornTail: string | null;
  /** torn lines skipped anywhere (the tail included) */
  tornLines: number;
}

/**
 * Reads a log of any size in chunks and hands every valid event to `onEvent`,
 * in order, holding one chunk at a time. The one reader (readEvents collects from it): the first
 * event must be run-start, a torn last line is tolerated and reported.
 */
export function foldEvents(path: string, onEvent: (e: BlackoutEvent) => void): FoldResult {
  const fd = openSync(path, 'r');
  let buf = Buffer.alloc(1 << 20);
  // buf[0, rest): the bytes after the last newline read so far (a line that goes on in the next chunk),
  // moved to the front and read after, so a chunk is never copied whole to join it to the line before it
  let rest = 0;
  let lineNo = 0;
  let count = 0;
  let tornTail: string | null = null;
  let tornLines = 0;
  let pending: string | null = null;
  let pendingNo = 0;
  const accept = (ev: BlackoutEvent) => {
    if (count === 0 && ev.type !== 'run-start') throw new EventLogError('events.jsonl: the first event is not run-start');
    count++;
    onEvent(ev);
  };
  const handle = (line: string, no: number, isLast: boolean) => {
    if (line.trim() === '') return;
    let ev: BlackoutEvent | 'torn' | null = null;
    if (line.startsWith('{"type":"sample"')) {
      try {
        ev = quickSample(JSON.parse(line));
      } catch {
        ev = null;
      }
    }
    ev ??= parseLine(line, no, isLast);
    if (ev === 'torn') {
      tornLines++;
      if (isLast) tornTail = line;
      return;
    }
    accept(ev);
  };
  try {
    for (;;) {
      if (rest === buf.length) {
        // one line longer than the buffer: a larger one
        const larger = Buffer.alloc(buf.length * 2);
        buf.copy(larger, 0, 0, rest);
        buf = larger;
      }
      const n = readSync(fd, buf, rest, buf.length - rest, null);
      if (n === 0) break;
      const data = buf.subarray(0, rest + n);
      // lines are cut at the newline byte and decoded one by one (a newline byte is never part of a
      // multi-byte UTF-8 character): a third faster than decoding the chunk and splitting the string
      let start = 0;
      for (let nl = data.indexOf(10, start); nl !== -1; nl = data.indexOf(10, start)) {
        lineNo++;
        // keep one line back: only the very last line may be torn
        if (pending !== null) handle(pending, pendingNo, false);
        pending = null;
        // most lines are samples, read from their bytes (a whole, valid sample: torn or not does not arise)
        const sample = quickSample(sampleFromBytes(data, start, nl));
        if (sample !== null) accept(sample);
        else {
          pending = data.toString('utf8', start, nl);
          pendingNo = lineNo;
        }
        start = nl + 1;
      }
      data.copyWithin(0, start);
      rest = data.length - start;
    }
  } finally {
    closeSync(fd);
  }
  const tail = buf.toString('utf8', 0, rest);
  if (tail !== '') {
    if (pending !== null) handle(pending, pendingNo, false);
    handle(tail, lineNo + 1, true);
  } else if (pending !== null) handle(pending, pendingNo, true);
  if (count === 0) throw new EventLogError('events.jsonl: the first event is not run-start');
  return { count, tornTail, tornLines };
}
