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
 *
 * The loop runs on callbacks, not an async function: at thousands of sessions
 * every promise counts twice, once made and once in the run's containment
 * hook (an AsyncLocalStorage sees each one). A session that offers `send`
 * (a callback form of `request`) goes round with no promise at all, and the
 * pause between requests is the session's own TickTimer, not a new Timeout.
 */
import { z } from 'zod';
import { atMost, sleep } from '../../core/clock.ts';
import { TickTimer } from './tick-timer.ts';
import { duration } from '../../core/schema-util.ts';
import type { ProbeContext, ProbeEvent } from '../../core/probe.ts';

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

export interface RequestResult {
  latencyMs?: number;
  value?: number;
  t?: number;
}

export interface LoopSession {
  /** one request/answer; rejects with the client's own error */
  /** `t`: when the answer really arrived, when the probe knows better than "now" (the kernel's last ACK) */
  request(seq: number, signal: AbortSignal): Promise<RequestResult>;
  /** optional: `request` in callback form, called back exactly once (the loop prefers it: no promise per request) */
  send?(seq: number, done: (err: Error | null, r?: RequestResult) => void): void;
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
  /** the pause before the next tick; made with the loop, in the probe's create(), so it runs the loop in the probe's async context */
  private readonly timer: TickTimer;
  /** the tick the next request is due at (run clock) */
  private next = 0;
  private readonly phase: number;
  private finish: () => void = () => {};

  constructor(private readonly o: LoopOptions) {
    this.phase = tickPhase(o.ctx.name, o.interval);
    this.timer = new TickTimer(this.tick);
  }

  /** Opens the first session (rejects if it cannot) and starts the loop. */
  async open(): Promise<void> {
    const { ctx } = this.o;
    this.session = await this.o.connect(ctx.signal, (e) => this.markLost(e));
    ctx.emit({ type: 'session-open', reconnect: false });
    this.running = new Promise<void>((resolve) => (this.finish = resolve));
    if (ctx.signal.aborted) return this.finish();
    // the one abort listener: stopping wakes the loop from its pause
    ctx.signal.addEventListener('abort', () => this.wake(), { once: true });
    this.next = ctx.clock.now();
    this.tick();
  }

  private markLost(e: Error): void {
    if (this.lostError || this.o.ctx.signal.aborted) return;
    this.lostError = e;
    this.wake();
  }

  /** one turn of the loop: a request, or the loss handling */
  private readonly tick = (): void => {
    const { ctx } = this.o;
    if (ctx.signal.aborted) return this.finish();
    const session = this.session;
    if (this.lostError || !session) {
      this.handleLoss().then(
        (go) => {
          if (!go) return this.finish();
          this.next = ctx.clock.now();
          this.tick();
        },
        (e: unknown) => {
          // the loop ends, and the error stays unhandled, as the async loop's was: the run's containment
          // reports it as the probe's crash instead of the session going quiet without a word
          this.finish();
          throw e;
        },
      );
      return;
    }
    const seq = ++this.seq;
    const sent = ctx.clock.now();
    // how late the harness itself sent this request against its schedule: the sampling jitter,
    // apart from the round trip (a busy harness shows here, a slow target in latencyMs)
    const lateMs = Math.round((sent - this.next) * 100) / 100;
    const done = (err: Error | null, r?: RequestResult) => this.answered(session, seq, sent, lateMs, err, r);
    if (session.send) session.send(seq, done);
    else
      session.request(seq, ctx.signal).then(
        (r) => done(null, r),
        (e: unknown) => done(e as Error),
      );
  };

  private answered(session: LoopSession, seq: number, sent: number, lateMs: number, err: Error | null, r: RequestResult | undefined): void {
    const { ctx, interval } = this.o;
    if (ctx.signal.aborted) return this.finish();
    if (err) {
      if (!session.alive() || this.lostError) {
        this.markLost(err);
        return this.tick();
      }
      ctx.emit({ type: 'probe-error', ...errorText(err), fatal: true });
    } else {
      // built field by field, not with conditional spreads: at thousands of samples a second the spreads kept
      // missing V8's inline cache and making new hidden classes (a CPU profile showed it); same keys, same order
      const sample: Extract<ProbeEvent, { type: 'sample' }> = { type: 'sample', seq, latencyMs: r?.latencyMs ?? ctx.clock.now() - sent, lateMs };
      if (r?.value !== undefined) sample.value = r.value;
      if (r?.t !== undefined) sample.t = r.t;
      ctx.emit(sample);
    }
    this.next = tickAtOrAfter(this.next + interval / 2, this.phase, interval);
    const now = ctx.clock.now();
    if (this.next < now) this.next = now; // late: go at once, skip the missed ticks
    this.timer.after(this.next - now);
  }

  /**
   * ends a pause at once when the session is reported lost or the probe is stopped; the turn is then
   * queued, not run inside the caller's callback (a request in flight is left to its answer)
   */
  private wake(): void {
    if (!this.timer.pending) return;
    this.timer.cancel();
    queueMicrotask(this.tick);
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
