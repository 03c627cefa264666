/**
 * The sampling side of the copy probes (sftp, smb): a copy is one long
 * operation, so the probe reports its progress as samples every interval
 * while bytes move (value = bytes copied so far: the throughput timeline).
 * No bytes in an interval → no sample, so a stall shows up as a gap like in
 * every other probe. Once the copy has completed the application has nothing
 * left to wait for: a "done" sample per interval keeps the session visibly
 * fine for the recovery watch.
 *
 * Optional application policy: `stallTimeout` — the application aborts a
 * copy that made no progress for that long.
 */
import type { ProbeContext } from '../../core/probe.ts';
import { UNFINISHED } from '../../core/events.ts';

export class CopyProgress {
  bytes = 0;
  done = false;
  readonly startedAt: number;
  private lastProgressAt: number;
  private lastSampleBytes = 0;
  private seq = 0;
  private timer: NodeJS.Timeout | null = null;
  finishedAt: number | null = null;

  constructor(
    private readonly ctx: ProbeContext,
    private readonly interval: number,
    private readonly stallTimeout: number,
    private readonly onStallTimeout: (e: Error) => void,
  ) {
    this.startedAt = ctx.clock.now();
    this.lastProgressAt = this.startedAt;
  }

  start(): void {
    this.timer = setInterval(() => this.tick(), this.interval);
  }

  add(n: number): void {
    this.bytes += n;
    this.lastProgressAt = this.ctx.clock.now();
  }

  finish(): void {
    this.done = true;
    this.finishedAt = this.ctx.clock.now();
    // the completion itself is a sample: the timeline ends at the whole file
    this.lastSampleBytes = this.bytes;
    this.ctx.emit({ type: 'sample', seq: ++this.seq, value: this.bytes, latencyMs: 0 });
  }

  private tick(): void {
    const now = this.ctx.clock.now();
    if (this.done || this.bytes > this.lastSampleBytes) {
      this.lastSampleBytes = this.bytes;
      this.ctx.emit({ type: 'sample', seq: ++this.seq, value: this.bytes, latencyMs: now - this.lastProgressAt });
    } else if (this.stallTimeout > 0 && now - this.lastProgressAt > this.stallTimeout) {
      this.onStallTimeout(new Error(`the copy made no progress for ${this.stallTimeout} ms (${this.bytes} bytes copied): aborted by the application`));
      this.stop();
    }
  }

  /**
   * At the end of the trial: gives a running copy `waitMs` to finish; one still
   * running then is reported as unfinished (its checksum was never checked, so
   * its outcome is unknown, not failed). True when the copy is no longer running.
   */
  async settleAtClose(copy: Promise<unknown>, waitMs: number): Promise<boolean> {
    if (this.done || (await settledWithin(copy, waitMs))) return true;
    this.ctx.emit({
      type: 'probe-error',
      message: `the copy was still running at the end of the trial (${this.bytes} bytes copied); aborted, checksum not verified: its outcome is unknown`,
      code: UNFINISHED,
      fatal: false,
    });
    return false;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  summary(total: number): Record<string, unknown> {
    const secs = ((this.finishedAt ?? this.ctx.clock.now()) - this.startedAt) / 1000;
    return { bytes: this.bytes, total, seconds: +secs.toFixed(2), MBps: +(this.bytes / 1048576 / secs).toFixed(2) };
  }
}

/** Resolves when `p` settles or after `ms`, whichever comes first; true when it settled. */
export async function settledWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const r = await Promise.race([
    p.then(
      () => true,
      () => true,
    ),
    new Promise<boolean>((res) => (timer = setTimeout(() => res(false), ms))),
  ]);
  clearTimeout(timer);
  return r;
}
