/**
 * Writes many small files on a thread of its own. A 1 M-event run has 15 000
 * Allure result files, and their creates took 0.45 s of the report's main
 * thread; sent here, they are written while the main thread renders the other
 * reports. The texts (38 MB) are encoded here, as the write would, into
 * one buffer per batch that is moved to the thread, not copied: 0.23 s, where
 * sending them as strings cost 0.26 s of structured clone, and as one joined
 * string per batch 0.45 s. A batch is 1 MiB (a few hundred results), so
 * little is held when the thread keeps up.
 */
import { Worker } from 'node:worker_threads';

/** a file: bytes [start, end) of its batch's buffer, or a copy of another file */
type FileJob = { path: string; start: number; end: number } | { path: string; copyFrom: string };

const BATCH_BYTES = 1 << 20;

export class FileWriter {
  // plain JavaScript: none of the parent's loaders (tsx's, when run through --import tsx: +100 ms of start-up)
  private readonly worker = new Worker(new URL('./write-thread.mjs', import.meta.url), { execArgv: [] });
  private jobs: FileJob[] = [];
  private buffer: Buffer | null = null;
  private used = 0;
  private readonly finished: Promise<string | null>;

  constructor() {
    this.finished = new Promise((resolve, reject) => {
      this.worker.once('message', (m: { what: string; error: string | null }) => resolve(m.error));
      this.worker.once('error', reject);
      this.worker.once('exit', (code) => reject(new Error(`the file-writing thread ended (exit ${code}) before it was done`)));
    });
    // a failure before done() is awaited is reported there, not as an unhandled rejection
    this.finished.catch(() => {});
  }

  /** queues a file: its text, or a copy of another file */
  put(path: string, f: { content?: string; copyFrom?: string }): void {
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

  private flush(): void {
    if (!this.jobs.length) return;
    // allocUnsafeSlow's memory is a plain ArrayBuffer (never a SharedArrayBuffer)
    const buffer = this.buffer?.buffer as ArrayBuffer | undefined;
    this.worker.postMessage({ what: 'files', buffer, jobs: this.jobs }, buffer ? [buffer] : []);
    this.jobs = [];
    this.buffer = null;
  }

  /** resolves when every queued file is written; rejects with the first write that failed */
  async done(): Promise<void> {
    this.flush();
    this.worker.postMessage({ what: 'done' });
    const error = await this.finished;
    if (error) throw new Error(`writing the report's files: ${error}`);
  }

  /** ends the thread (at once, if done() was never reached: a report that failed to render) */
  async close(): Promise<void> {
    await this.worker.terminate();
  }
}
