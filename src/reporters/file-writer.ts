/**
 * Writes many small files on a thread of its own. A 1 M-event run has 15 000
 * Allure result files, and their creates took 0.45 s of the report's main
 * thread; sent here, they are written while the main thread folds the log and
 * renders the other reports. The texts (38 MB) are encoded here, as the write
 * would, into batches of 1 MiB (a few hundred results): 0.23 s, where sending
 * them as strings cost 0.26 s of structured clone, and as one joined string
 * per batch 0.45 s.
 *
 * The batches are SLOTS slots of one SharedArrayBuffer that both threads see:
 * the memory the queue takes is allocated once and bounded by construction.
 * (Each batch used to be a buffer of its own, moved to the thread: the thread,
 * which allocates next to nothing on its heap, collected them rarely, and a
 * 1 M-event report's peak grew by 5–9 MiB with them.) Before it fills a slot,
 * `put` waits until the thread has written the batch that slot held
 * (Atomics.wait on a counter the thread raises), so the sender is never more
 * than SLOTS batches ahead; the wait is synchronous so that a synchronous fold
 * can put files too. `room` says whether a put would wait: a sender with other
 * work does that first. A file larger than a slot is a batch of its own, in a
 * buffer moved to the thread.
 *
 * Below THREAD_FROM files the thread would not pay (its start costs ~60 ms of
 * CPU; a create costs 30–330 µs on this machine): the first ones are written
 * here, and the thread starts with the one after.
 */
import { copyFileSync, writeFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';

/** a file: bytes [start, end) of its batch (offsets in its slot, or in its own buffer), or a copy of another file */
type FileJob = { path: string; start: number; end: number } | { path: string; copyFrom: string };

const BATCH_BYTES = 1 << 20;
const SLOTS = 4;
/** no batch written for this long: the thread is gone or the disk hangs; stop waiting (done() says which) */
const STALL_MS = 10_000;
const THREAD_FROM = 500;

/** a file written at once, on this thread: its text, or a copy of another file */
export function writeFileNow(path: string, f: { content?: string; copyFrom?: string }): void {
  if (f.copyFrom) copyFileSync(f.copyFrom, path);
  else writeFileSync(path, f.content ?? '');
}

export class FileWriter {
  private worker: Worker | null = null;
  private finished: Promise<string | null> = Promise.resolve(null);
  /** [0]: batches the thread has written (or skipped after a failure) */
  private readonly progress = new Int32Array(new SharedArrayBuffer(4));
  /** the batches' memory, shared with the thread (allocated when the thread starts) */
  private ring: Buffer | null = null;
  private sent = 0;
  private stalled = false;
  private count = 0;
  private jobs: FileJob[] = [];
  /** the batch being filled: its slot's memory (a view of the ring), or null */
  private batch: Buffer | null = null;
  /** the batch being filled has memory of its own (the thread stalled: no slot can be taken back) */
  private own = false;
  private used = 0;
  /** a file written here (before the thread) that failed: done() rejects with it */
  private error: string | null = null;

  constructor(private threadFrom = THREAD_FROM) {}

  /** queues a file: its text, or a copy of another file */
  put(path: string, f: { content?: string; copyFrom?: string }): void {
    if (this.count++ < this.threadFrom) return this.writeHere(path, f);
    this.worker ??= this.start();
    if (f.copyFrom) {
      this.jobs.push({ path, copyFrom: f.copyFrom });
      return;
    }
    const text = f.content ?? '';
    // UTF-8 takes at most 3 bytes per UTF-16 unit: room for the worst case, or a new batch
    const most = text.length * 3;
    if (most > BATCH_BYTES) return this.alone(path, text);
    if (this.batch && this.used + most > BATCH_BYTES) this.flush();
    if (!this.batch) this.batch = this.nextSlot();
    const start = this.used;
    this.used += this.batch.write(text, start);
    this.jobs.push({ path, start, end: this.used });
  }

  private writeHere(path: string, f: { content?: string; copyFrom?: string }): void {
    if (this.error) return;
    try {
      writeFileNow(path, f);
    } catch (e) {
      // as the thread does: the first failure is reported by done(), and nothing after it is written
      this.error = e instanceof Error ? e.message : String(e);
      this.threadFrom = Infinity;
    }
  }

  private start(): Worker {
    const ring = new SharedArrayBuffer(SLOTS * BATCH_BYTES);
    this.ring = Buffer.from(ring);
    // plain JavaScript: none of the parent's loaders (tsx's, when run through --import tsx: +100 ms of start-up)
    const worker = new Worker(new URL('./write-thread.mjs', import.meta.url), { execArgv: [], workerData: { progress: this.progress.buffer, ring, slotBytes: BATCH_BYTES } });
    this.finished = new Promise((resolve, reject) => {
      worker.once('message', (m: { what: string; error: string | null }) => resolve(m.error));
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`the file-writing thread ended (exit ${code}) before it was done`)));
    });
    // a failure before done() is awaited is reported there, not as an unhandled rejection
    this.finished.catch(() => {});
    return worker;
  }

  /** the next batch's slot, once the thread has written what it held */
  private nextSlot(): Buffer {
    this.waitForRoom();
    this.used = 0;
    // a stalled thread may still read any slot: memory of its own then (not a slice of Node's shared pool, so it can be moved)
    this.own = this.stalled;
    if (this.own) return Buffer.allocUnsafeSlow(BATCH_BYTES);
    const at = (this.sent % SLOTS) * BATCH_BYTES;
    return this.ring!.subarray(at, at + BATCH_BYTES);
  }

  /** sends the batch being filled (its files are in its slot) */
  private flush(): void {
    if (!this.jobs.length || !this.worker) return;
    // copies only, no slot taken: still a batch, so the sender stays at most SLOTS ahead
    if (!this.batch) this.waitForRoom();
    if (this.batch && this.own) {
      const buffer = this.batch.buffer as ArrayBuffer;
      this.worker.postMessage({ what: 'files', buffer, jobs: this.jobs }, [buffer]);
    } else this.worker.postMessage({ what: 'files', slot: this.sent % SLOTS, jobs: this.jobs });
    this.sent++;
    this.jobs = [];
    this.batch = null;
  }

  /** a text larger than a slot: a batch of its own, in a buffer moved to the thread (after the files before it) */
  private alone(path: string, text: string): void {
    this.flush();
    this.waitForRoom();
    // memory of its own (not a slice of Node's shared pool), so it can be moved
    const bytes = Buffer.allocUnsafeSlow(text.length * 3);
    const end = bytes.write(text);
    const buffer = bytes.buffer as ArrayBuffer;
    this.worker!.postMessage({ what: 'files', buffer, jobs: [{ path, start: 0, end }] }, [buffer]);
    this.sent++;
  }

  /** batches sent to the thread and not yet written (never more than SLOTS, unless the thread stalled) */
  get ahead(): number {
    return this.sent - Atomics.load(this.progress, 0);
  }

  /** whether a put now is sure not to wait for the thread */
  get room(): boolean {
    // a put that starts a new batch needs a free slot; one that fills the current batch up sends it first
    return this.stalled || this.ahead < SLOTS - 1 || (this.batch === null && this.ahead < SLOTS);
  }

  /** blocks until fewer than SLOTS batches wait for the thread (so the slot of batch `sent` is free) */
  private waitForRoom(): void {
    while (!this.stalled) {
      const written = Atomics.load(this.progress, 0);
      if (this.sent - written < SLOTS) return;
      // the thread raises the counter and wakes this one after every batch
      if (Atomics.wait(this.progress, 0, written, STALL_MS) === 'timed-out') this.stalled = true;
    }
  }

  /** resolves when every queued file is written; rejects with the first write that failed */
  async done(): Promise<void> {
    if (this.worker) {
      this.flush();
      this.worker.postMessage({ what: 'done' });
    }
    const error = this.error ?? (await this.finished);
    if (error) throw new Error(`writing the report's files: ${error}`);
  }

  /** ends the thread (at once, if done() was never reached: a report that failed to render) */
  async close(): Promise<void> {
    await this.worker?.terminate();
  }
}
