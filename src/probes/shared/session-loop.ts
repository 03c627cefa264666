/**
 * The loop most session probes share: open a session, issue one request every
 * interval (one outstanding at a time, like an application would), report
 * each answer as a sample, and when the session is lost apply the probe's
 * reconnect policy. Ticks are scheduled on the run clock (no drift); when an
 * answer comes late the next request goes out at once and missed ticks are
 * skipped, so a stall shows up as one long gap, not as a burst.
 *
 * Each probe ticks at its own phase of the interval, drawn from its name (as
 * Prometheus spreads scrapes by a hash of the target). Sessions opened in the
 * same instant (hundreds in a load test, every connect completing in a few
 * turns of the event loop) would otherwise fire in the same millisecond at
 * every tick, and the last of such a burst leaves as late as the burst is long.
 * The first request after an open, a reconnect or a late answer goes at once;
 * the next one returns to the phase, at least half an interval later.
 */
import { z } from 'zod';
import { atMost, sleep } from '../../core/clock.ts';
import { duration } from '../../core/schema-util.ts';
import type { ProbeContext } from '../../core/probe.ts';

export const reconnectSchema = z
  .union([
    z.enum(['none', 'immediate', 'backoff']),
    z.strictObject({
      mode: z.enum(['none', 'immediate', 'backoff']).describe('none: a lost session stays lost; immediate: reopen at once; backoff: reopen after a growing wait'),
      initial: duration({ min: 1 }).default(500).describe('backoff: the first wait before reopening'),
      max: duration({ min: 1 }).default(5000).describe('backoff: the longest wait between attempts'),
    }),
  ])
  .default('none')
  .describe('what the client does when its session is lost: none (the outcome is failed), immediate or backoff (a reopened session is "recovered"); or { mode, initial, max }')
  .transform((v) => (typeof v === 'string' ? { mode: v, initial: 500, max: 5000 } : v));
export type ReconnectPolicy = z.infer<typeof reconnectSchema>;

export interface LoopSession {
  /** one request/answer; rejects with the client's own error */
  /** `t`: when the answer really arrived, when the probe knows better than "now" (the kernel's last ACK) */
  request(seq: number, signal: AbortSignal): Promise<{ latencyMs?: number; value?: number; t?: number }>;
  /** true when the session is still usable after a request error (e.g. a statement timeout) */
  alive(): boolean;
  close(): Promise<void>;
}

export interface LoopOptions {
  ctx: ProbeContext;
  interval: number;
  reconnect: ReconnectPolicy;
  /** opens a session; `onLost` must be called when the client sees the session die on its own */
  connect(signal: AbortSignal, onLost: (err: Error) => void): Promise<LoopSession>;
}

export function errorText(e: unknown): { message: string; code?: string } {
  const err = e as NodeJS.ErrnoException;
  return { message: err?.message ?? String(e), ...(typeof err?.code === 'string' ? { code: err.code } : {}) };
}

/** where in [0, interval) a probe's ticks fall: a hash of its name (FNV-1a, mixed), so the same probe keeps its phase run after run */
export function tickPhase(name: string, interval: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  // MurmurHash3's finaliser: FNV alone leaves names that differ in their last character (tcp0, tcp1, …)
  // close together in the high bits, which are the ones that pick the phase
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  h ^= h >>> 16;
  return ((h >>> 0) / 2 ** 32) * interval;
}

/** the first tick of the phase grid (phase + k × interval on the run clock) at or after `t` */
export function tickAtOrAfter(t: number, phase: number, interval: number): number {
  return phase + Math.ceil((t - phase) / interval) * interval;
}

export class SessionLoop {
  private session: LoopSession | null = null;
  private seq = 0;
  private running: Promise<void> | null = null;
  private lostError: Error | null = null;
  private wake: (() => void) | null = null;

  constructor(private readonly o: LoopOptions) {}

  /** Opens the first session (rejects if it cannot) and starts the loop. */
  async open(): Promise<void> {
    this.session = await this.o.connect(this.o.ctx.signal, (e) => this.markLost(e));
    this.o.ctx.emit({ type: 'session-open', reconnect: false });
    this.running = this.loop();
  }

  private markLost(e: Error): void {
    if (this.lostError || this.o.ctx.signal.aborted) return;
    this.lostError = e;
    this.wake?.();
  }

  private async loop(): Promise<void> {
    const { ctx, interval } = this.o;
    const phase = tickPhase(ctx.name, interval);
    let next = ctx.clock.now();
    while (!ctx.signal.aborted) {
      if (this.lostError || !this.session) {
        if (!(await this.handleLoss())) return;
        next = ctx.clock.now();
        continue;
      }
      const seq = ++this.seq;
      const sent = ctx.clock.now();
      // how late the harness itself sent this request against its schedule: the sampling jitter,
      // apart from the round trip (a busy harness shows here, a slow target in latencyMs)
      const lateMs = Math.round((sent - next) * 100) / 100;
      try {
        const r = await this.session.request(seq, ctx.signal);
        if (ctx.signal.aborted) return;
        ctx.emit({ type: 'sample', seq, latencyMs: r.latencyMs ?? ctx.clock.now() - sent, lateMs, ...(r.value !== undefined ? { value: r.value } : {}), ...(r.t !== undefined ? { t: r.t } : {}) });
      } catch (e) {
        if (ctx.signal.aborted) return;
        if (this.session.alive() && !this.lostError) {
          ctx.emit({ type: 'probe-error', ...errorText(e), fatal: true });
        } else {
          this.markLost(e as Error);
          continue;
        }
      }
      next = tickAtOrAfter(next + interval / 2, phase, interval);
      const now = ctx.clock.now();
      if (next < now) next = now; // late: go at once, skip the missed ticks
      await this.pause(next - now);
    }
  }

  /** sleeps, but wakes at once when the session is reported lost */
  private pause(ms: number): Promise<void> {
    const signal = this.o.ctx.signal;
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
      this.wake = done;
      function done() {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      }
    }).finally(() => {
      this.wake = null;
    });
  }

  /** returns false when the loop must end (no reconnect, or stopping) */
  private async handleLoss(): Promise<boolean> {
    const { ctx, reconnect } = this.o;
    if (this.lostError) {
      ctx.emit({ type: 'session-lost', ...errorText(this.lostError) });
      this.lostError = null;
    }
    const old = this.session;
    this.session = null;
    await old?.close().catch(() => {});
    if (reconnect.mode === 'none') return false;
    let delay = reconnect.mode === 'immediate' ? 0 : reconnect.initial;
    while (!ctx.signal.aborted) {
      try {
        if (delay > 0) await sleep(delay, ctx.signal);
        this.session = await this.o.connect(ctx.signal, (e) => this.markLost(e));
        ctx.emit({ type: 'session-open', reconnect: true });
        return true;
      } catch (e) {
        if (ctx.signal.aborted) return false;
        ctx.emit({ type: 'probe-error', ...errorText(e), fatal: false });
        delay = reconnect.mode === 'immediate' ? Math.min(Math.max(delay * 2, 100), 1000) : Math.min(delay * 2, reconnect.max);
      }
    }
    return false;
  }

  async close(): Promise<void> {
    // ctx.signal is aborted by the runner before close(): the loop ends by itself
    await atMost(this.running, 5000);
    await this.session?.close().catch(() => {});
    this.session = null;
  }
}
