/**
 * Writes many small files on a thread of its own. A 1 M-event run has 15 000
 * Allure result files, and their creates took 0.45 s of the report's main
 * thread; sent here, they are written while the main thread renders the other
 * reports. Files are sent in batches (a few hundred, or 1 MiB of text), so
 * little is held when the thread keeps up and the messages stay few.
 */
import { Worker } from 'node:worker_threads';

interface FileJob {
  path: string;
  content?: string;
  copyFrom?: string;
}

const BATCH_FILES = 256;
const BATCH_CHARS = 1 << 20;

export class FileWriter {
  private readonly worker = new Worker(new URL('./write-thread.mjs', import.meta.url));
  private batch: FileJob[] = [];
  private chars = 0;
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
    this.batch.push(f.copyFrom ? { path, copyFrom: f.copyFrom } : { path, content: f.content ?? '' });
    this.chars += f.content?.length ?? 0;
    if (this.batch.length >= BATCH_FILES || this.chars >= BATCH_CHARS) this.flush();
  }

  private flush(): void {
    if (!this.batch.length) return;
    this.worker.postMessage({ what: 'files', files: this.batch });
    this.batch = [];
    this.chars = 0;
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
