/**
 * Writes many small files on a thread of its own. A 1 M-event run has 15 000
 * Allure result files, and their creates took 0.45 s of the report's main
 * thread; sent here, they are written while the main thread folds the log and
 * renders the other reports. The texts (38 MB) are encoded here, as the write
 * would, into one buffer per batch that is moved to the thread, not copied:
 * 0.23 s, where sending them as strings cost 0.26 s of structured clone, and
 * as one joined string per batch 0.45 s. A batch is 1 MiB (a few hundred
 * results).
 *
 * At most MAX_BATCHES_AHEAD batches (16 MiB) wait for the thread; `put`
 * blocks until the thread has written one more (Atomics.wait on a counter the
 * thread raises). A file system slow to create files (60–330 µs a create on
 * this machine's ext4, by the minute) otherwise left all 38 MB waiting in
 * memory. The wait is synchronous so that a synchronous fold can put files
 * too. (4 batches were measured too: the thread then ran dry while the other
 * reports rendered, and the report took longer.)
 *
 * Below THREAD_FROM files the thread would not pay (its start costs ~60 ms of
 * CPU; a create costs 30–330 µs on this machine): the first ones are written
 * here, and the thread starts with the one after.
 */
import { copyFileSync, writeFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';

/** a file: bytes [start, end) of its batch's buffer, or a copy of another file */
type FileJob = { path: string; start: number; end: number } | { path: string; copyFrom: string };

const BATCH_BYTES = 1 << 20;
const MAX_BATCHES_AHEAD = 16;
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
  private sent = 0;
  private stalled = false;
  private count = 0;
  private jobs: FileJob[] = [];
  private buffer: Buffer | null = null;
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
    if (this.buffer && this.used + most > this.buffer.length) this.flush();
    if (!this.buffer) {
      // memory of its own (not a slice of Node's shared pool), so it can be moved
      this.buffer = Buffer.allocUnsafeSlow(Math.max(BATCH_BYTES, most));
      this.used = 0;
    }
    const start = this.used;
    this.used += this.buffer.write(text, start);
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
    // plain JavaScript: none of the parent's loaders (tsx's, when run through --import tsx: +100 ms of start-up)
    const worker = new Worker(new URL('./write-thread.mjs', import.meta.url), { execArgv: [], workerData: { progress: this.progress.buffer } });
    this.finished = new Promise((resolve, reject) => {
      worker.once('message', (m: { what: string; error: string | null }) => resolve(m.error));
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`the file-writing thread ended (exit ${code}) before it was done`)));
    });
    // a failure before done() is awaited is reported there, not as an unhandled rejection
    this.finished.catch(() => {});
    return worker;
  }

  private flush(): void {
    if (!this.jobs.length || !this.worker) return;
    this.waitForRoom();
    // allocUnsafeSlow's memory is a plain ArrayBuffer (never a SharedArrayBuffer)
    const buffer = this.buffer?.buffer as ArrayBuffer | undefined;
    this.worker.postMessage({ what: 'files', buffer, jobs: this.jobs }, buffer ? [buffer] : []);
    this.sent++;
    this.jobs = [];
    this.buffer = null;
  }

  /** batches sent to the thread and not yet written (never more than MAX_BATCHES_AHEAD, unless the thread stalled) */
  get ahead(): number {
    return this.sent - Atomics.load(this.progress, 0);
  }

  /** blocks until fewer than MAX_BATCHES_AHEAD batches wait for the thread */
  private waitForRoom(): void {
    while (!this.stalled) {
      const written = Atomics.load(this.progress, 0);
      if (this.sent - written < MAX_BATCHES_AHEAD) return;
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
