/**
 * Analysis: a pure function of the events, computed as a fold: events are
 * added one at a time to per-trial/per-probe accumulators that keep bounded
 * state (counts, the steady spans, the few longest gaps, the last gaps before
 * the cut), so a log of millions of samples is analysed in one pass without
 * holding it. `analyze(events)` is the same fold over an array.
 * Per trial the injected window; per
 * probe its observed outage, recovery time, outcome and errors; per probe over
 * the run the largest blackout it survived and the smallest it did not.
 *
 * Definitions (docs/architecture.md):
 *  - effective interval: the median of the last (up to 256) gaps between good
 *    samples before the cut (ping -i 0.01 really sends every 16 ms; measuring
 *    beats trusting config);
 *  - observed outage: the longest gap between good samples that overlaps the
 *    injected window (ends after the cut, starts before the restore),
 *    minus one effective interval;
 *  - recovery: restore → first good sample after it;
 *  - outcome: transparent (no gap beyond interval + tolerance), stalled (a
 *    longer gap, same session, no error reached the application), recovered
 *    (session lost, the probe's reconnect policy brought a new one), failed
 *    (an error reached the application, a verification failed, or no recovery
 *    before the recovery window closed), unknown (the trial never finished).
 *  - a probe survives a trial when it is transparent or stalled.
 */
import { type BlackoutEvent, type EventOf, type Outcome, type ProbeInfo, UNFINISHED } from '../core/events.ts';
import { decide, type Decision } from './decision.ts';
import type { Phase, ProbeErrorSummary, ProbeTrialResult, TrialResult, ProbeRunResult, ExpectationResult, RunFold } from './results.ts';

export { survived };
export type { Phase, ProbeErrorSummary, ProbeTrialResult, TrialResult, ProbeRunResult, ExpectationResult, RunFold };
import type { Sweep } from './search.ts';
import { formatLength, survived } from '../core/format.ts';
import { expectedSurvivals, testCases } from './test-cases.ts';

/** A run's analysis: the fold of its events plus the decision drawn from it. */
export interface Analysis extends RunFold {
  /** breaking points, predictions, findings, the migration verdict */
  decision: Decision;
}

export function median(values: number[]): number | null {
  return sortedMedian([...values].sort((a, b) => a - b));
}

/** the median of values already in ascending order */
function sortedMedian(s: ArrayLike<number>): number | null {
  if (s.length === 0) return null;
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/**
 * When the target was restored: the harness's restore instant, unless the restore
 * event carries evidence that something restored it earlier: the kernel timeout
 * removed the cut (`expiredByKernelTimeout`: at the cut's deadline), the
 * watchdog fired before the harness got to it (`watchdogFired`: at the
 * deadline), or an injector's own `restoredEarlierAt` instant.
 */
export function restoreInstant(cut: EventOf<'cut'> | null, restore: EventOf<'restore'>): { t: number; by: string } {
  const d = restore.detail ?? {};
  let best = { t: restore.t, by: 'harness' };
  if (cut && d.expiredByKernelTimeout === true && cut.deadline < best.t) best = { t: Math.max(cut.t, cut.deadline), by: 'kernel timeout' };
  if (cut && d.watchdogFired === true && cut.deadline < best.t) best = { t: Math.max(cut.t, cut.deadline), by: 'watchdog' };
  const early = d.restoredEarlierAt;
  if (typeof early === 'number' && Number.isFinite(early) && early < best.t && (!cut || early >= cut.t))
    best = { t: early, by: typeof d.restoredEarlierBy === 'string' ? d.restoredEarlierBy : 'watchdog' };
  return best;
}

function guardOf(d: Record<string, unknown> | undefined): string | null {
  if (typeof d?.watchdogMechanism === 'string') return `watchdog: ${d.watchdogMechanism}`;
  if (typeof d?.kernelTimeoutMs === 'number') return `kernel nft timeout (${d.kernelTimeoutMs} ms)`;
  if (typeof d?.watchdog === 'string') return `watchdog ${d.watchdog}`;
  return null;
}

const MAX_ERRORS = 200;
const MAX_LIST = 200;
const RING = 256;
const TAIL = 64;
const REORDER = 16;
const TOP_GAPS = 8;
/** icmp: how many round trips before the cut set the cap on a held reply's */
const RTT_RING = 128;

/** icmp: a stretch between two answered requests with requests lost in between */
interface SendGap {
  /** send times of the answered requests on either side */
  from: number;
  to: number;
  /** the send period before `from`, and after `to` */
  before: number;
  after: number;
  /** requests sent and lost in between, by sequence number (0: not known, a held reply's gap) */
  lost: number;
  /** the step from the last lost request's send to `to`, when the sender said it (NaN: not known) */
  lastStep: number;
}

/**
 * iputils ping waits at least 10 ms for a reply before it sends again while
 * one is missing (MIN_INTERVAL_MS in ping_common.c): at `-i 0.001` it sends
 * every 10.2–10.3 ms while the link is dead, measured on this kind of machine. So
 * the restore lies somewhere in the last silent period before the first
 * answered request, not in the period after it. That pace is what the lost
 * requests show: the first one left one ordinary period after `from`, the
 * others one silent period apart. Without lost requests to show it (a held
 * reply), or when it is implausible, the period after the restore stands in.
 */
function silentPace(g: SendGap, cutEdge: number, intervalMs: number, fallback: number): number {
  if (g.lost < 1) return fallback;
  const pace = (g.to - g.from - cutEdge) / g.lost;
  return pace > 0 && pace <= 4 * Math.max(intervalMs, 10) ? pace : fallback;
}
const MAX_SEGMENTS = 5000;

/** Per probe per trial: bounded state, fed sample by sample. */
class ProbeAcc {
  samples = 0;
  /** not yet processed samples, ascending (absorbs slightly out-of-order timestamps) */
  private reorder: number[] = [];
  private prev: number | null = null;
  lastT: number | null = null;
  /** last processed samples (a ring of TAIL), for a window edge that is learnt late */
  private tail: number[] = [];
  private tailNext = 0;
  /**
   * gaps before the cut and the time each ended (a ring of RING): arrays of plain numbers, which V8
   * keeps unboxed, so a sample allocates nothing; they grow as needed (15 000 accumulators that each
   * began with 4 KiB were 68 MB for the garbage collector in a 1 M-event report)
   */
  private ringGap: number[] = [];
  private ringEnd: number[] = [];
  private ringNext = 0;
  private gapsSinceEstimate = 0;
  private estimate: number;
  segments: Array<[number, number]> = [];
  private topGaps: Array<{ from: number; to: number }> = [];
  /** icmp: the answered requests' send times (reply − round trip) and sequence numbers */
  private lastSend: { s: number; seq: number } | null = null;
  private sendBefore: number | null = null;
  private sendGaps: SendGap[] = [];
  /** the bracket just recorded, waiting for the send after it (its restore-side period) */
  private sendAfter: { after: number } | null = null;
  /** icmp: the last round trips before the cut (what a reply that was not held in a queue takes) */
  private rttsBeforeCut: number[] = [];
  private rttNext = 0;
  private rttCap: number | null = null;
  lastBeforeCut: number | null = null;
  firstAfterCut: number | null = null;
  firstAfterRestore: number | null = null;
  errors: ProbeErrorSummary[] = [];
  errorsDropped = 0;
  fatal: ProbeErrorSummary[] = [];
  lostCount = 0;
  firstLost: EventOf<'session-lost'> | null = null;
  lastLost: EventOf<'session-lost'> | null = null;
  reopened: number[] = [];
  verifications: ProbeTrialResult['verifications'] = [];
  failedVerify: string | null = null;
  /** the operation was still running at the end of the trial (code UNFINISHED): its result was never checked */
  unfinished: string | null = null;

  constructor(
    readonly info: ProbeInfo,
    private readonly win: { cutAt: number; restoredAt: number },
  ) {
    this.estimate = info.intervalMs;
  }

  sample(t: number): void {
    this.samples++;
    const r = this.reorder;
    if (r.length === 0 || r[r.length - 1]! <= t) r.push(t);
    else {
      let i = r.length;
      while (i > 0 && r[i - 1]! > t) i--;
      r.splice(i, 0, t);
    }
    if (r.length > REORDER) this.process(r.shift()!);
  }

  /**
   * An echo reply received at `t` after `latencyMs`. A request the target
   * could not answer when it arrived, but that waited in a queue (a paused
   * VM's tap device holds what comes in while QEMU loads a saved state, and
   * the guest answers it all at once when it runs), comes back with a round
   * trip far above the warm-up's: it was answered near its arrival, not near
   * its send time. Its round trip is capped at twice the longest one seen
   * before the cut plus one interval, so such a reply ends the outage when
   * the target really answered again, while an ordinary jittery one keeps its
   * own send time. "Longest" is the 90th percentile of the last 128 round
   * trips, not their maximum: one reply that a starved guest answered seconds
   * late before the cut would otherwise lift the cap above the held replies'
   * round trips and the outage would end at the restore's start.
   */
  reply(t: number, latencyMs: number, seq: number, stepMs = NaN): void {
    if (t < this.win.cutAt) {
      // a reply before the cut is its own measure: never capped
      const r = this.rttsBeforeCut;
      if (r.length < RTT_RING) r.push(latencyMs);
      else r[this.rttNext] = latencyMs;
      this.rttNext = (this.rttNext + 1) % RTT_RING;
      this.rttCap = null;
      this.sent(t - latencyMs, seq, false, stepMs);
      return;
    }
    if (this.rttCap === null) {
      // once per cut (the ring only changes before it)
      const sorted = [...this.rttsBeforeCut].sort((a, b) => a - b);
      const p90 = sorted[Math.min(sorted.length - 1, Math.floor(0.9 * sorted.length))];
      this.rttCap = p90 === undefined ? Infinity : 2 * p90 + this.info.intervalMs;
    }
    const held = latencyMs > this.rttCap;
    // a held reply's send time is an estimate: the step before the real send says nothing about it
    this.sent(held ? t - this.rttCap : t - latencyMs, seq, held, held ? NaN : stepMs);
  }

  /**
   * An answered echo request, by its send time and sequence number (ping's
   * own counter, which advances for every request sent, answered or not).
   * The outage is bracketed by send times: it began after the last answered
   * request before the cut and before the next request was sent, and ended
   * after the request before the first answered one after the restore was
   * sent. The send periods at the two edges place those unanswered sends:
   * at the cut the period before the last answered request, at the restore
   * the pace ping kept while nothing came back (see silentPace), or the
   * step the sender said it took to this request, when it says so (the
   * socket sender, which goes faster while replies are missing):
   * outage = bracket − (period at the cut + period at the restore) / 2,
   * without the reply's round trip or the receive side's scheduling in it.
   */
  sent(s: number, seq: number, held = false, stepMs = NaN): void {
    const p = this.lastSend;
    if (this.sendAfter && p) this.sendAfter.after = s - p.s;
    this.sendAfter = null;
    if (p !== null && s > p.s) {
      // iputils' icmp_seq is 16 bits: at 1 ms it wraps every 65 s
      const n = (((seq - p.seq) % 65536) + 65536) % 65536;
      // a held reply is a gap even right after the last answered request: the guest paused with that
      // request in its receive ring and answered it when it ran again (the lost ones come after it)
      if (n >= 2 || held) {
        const g = this.sendGaps;
        const x: SendGap = { from: p.s, to: s, before: this.sendBefore === null ? NaN : p.s - this.sendBefore, after: NaN, lost: held ? 0 : n - 1, lastStep: n >= 2 ? stepMs : NaN };
        const len = s - p.s;
        let put = true;
        if (g.length < TOP_GAPS) g.push(x);
        else {
          let mi = 0;
          for (let i = 1; i < g.length; i++) if (g[i]!.to - g[i]!.from < g[mi]!.to - g[mi]!.from) mi = i;
          if (len > g[mi]!.to - g[mi]!.from) g[mi] = x;
          else put = false;
        }
        if (put) this.sendAfter = x;
      }
    }
    if (p === null || s > p.s) {
      this.sendBefore = p?.s ?? null;
      this.lastSend = { s, seq };
    }
  }

  flush(): void {
    for (const t of this.reorder) this.process(t);
    this.reorder = [];
  }

  private process(t: number): void {
    const { cutAt, restoredAt } = this.win;
    const prev = this.prev;
    if (prev !== null && t >= prev) {
      const gap = t - prev;
      if (t <= cutAt) {
        this.ringGap[this.ringNext] = gap;
        this.ringEnd[this.ringNext] = t;
        this.ringNext = (this.ringNext + 1) % RING;
        if (++this.gapsSinceEstimate >= 32 || this.ringGap.length === 4) {
          this.gapsSinceEstimate = 0;
          // a typed copy sorts numerically without a comparator call per step
          this.estimate = sortedMedian(Float64Array.from(this.ringGap).sort()) ?? this.estimate;
        }
      }
      if (t > cutAt && prev < restoredAt) this.offerGap(prev, t);
    }
    if (prev === null || t >= prev) this.prev = t;
    this.lastT = Math.max(this.lastT ?? -Infinity, t);
    // steady spans
    const split = 2 * this.estimate + 20;
    const last = this.segments.at(-1);
    if (last && t - last[1] <= split) last[1] = Math.max(last[1], t);
    else if (this.segments.length >= MAX_SEGMENTS && last) last[1] = t;
    else this.segments.push([t, t]);
    // window edges
    if (t <= cutAt) this.lastBeforeCut = Math.max(this.lastBeforeCut ?? -Infinity, t);
    else if (this.firstAfterCut === null || t < this.firstAfterCut) this.firstAfterCut = t;
    if (t > restoredAt && (this.firstAfterRestore === null || t < this.firstAfterRestore)) this.firstAfterRestore = t;
    this.tail[this.tailNext] = t;
    this.tailNext = (this.tailNext + 1) % TAIL;
  }

  private offerGap(from: number, to: number): void {
    const g = this.topGaps;
    const len = to - from;
    if (g.length < TOP_GAPS) g.push({ from, to });
    else {
      let mi = 0;
      for (let i = 1; i < g.length; i++) if (g[i]!.to - g[i]!.from < g[mi]!.to - g[mi]!.from) mi = i;
      if (len > g[mi]!.to - g[mi]!.from) g[mi] = { from, to };
    }
  }

  /** the cut or the restore became known: re-judge what was processed before */
  windowChanged(): void {
    const { cutAt, restoredAt } = this.win;
    this.topGaps = this.topGaps.filter((x) => x.to > cutAt && x.from < restoredAt);
    // samples already processed after the edge (learnt late): re-derive the edges from the tail
    const tail = this.tailInOrder();
    for (let i = 0; i < tail.length; i++) {
      const t = tail[i]!;
      if (t > cutAt && (this.firstAfterCut === null || t < this.firstAfterCut)) this.firstAfterCut = t;
      if (t > restoredAt && (this.firstAfterRestore === null || t < this.firstAfterRestore)) this.firstAfterRestore = t;
      if (i > 0) {
        const p = tail[i - 1]!;
        if (t > cutAt && p < restoredAt && !this.topGaps.some((x) => x.from === p && x.to === t)) this.offerGap(p, t);
      }
    }
    if (this.lastBeforeCut !== null && this.lastBeforeCut > cutAt) {
      const before = tail.filter((t) => t <= cutAt);
      this.lastBeforeCut = before.length ? before.at(-1)! : null;
    }
  }

  /** the tail, oldest first */
  private tailInOrder(): number[] {
    const n = this.tail.length;
    const out: number[] = [];
    for (let k = 0; k < n; k++) out.push(this.tail[(this.tailNext - n + k + TAIL) % TAIL]!);
    return out;
  }

  error(e: EventOf<'probe-error'>): void {
    const x = { t: e.t, message: e.message, ...(e.code ? { code: e.code } : {}), fatal: e.fatal };
    if (this.errors.length < MAX_ERRORS) this.errors.push(x);
    else this.errorsDropped++;
    if (e.fatal && this.fatal.length < MAX_LIST) this.fatal.push(x);
    if (e.code === UNFINISHED && this.unfinished === null) this.unfinished = e.message;
  }

  lost(e: EventOf<'session-lost'>): void {
    this.lostCount++;
    this.firstLost ??= e;
    this.lastLost = e;
  }

  open(e: EventOf<'session-open'>): void {
    if (e.reconnect && this.reopened.length < 10 * MAX_LIST) this.reopened.push(e.t);
  }

  verify(e: EventOf<'verify'>): void {
    if (this.verifications.length < MAX_LIST) this.verifications.push({ ok: e.ok, message: e.message, ...(e.data ? { data: e.data } : {}) });
    if (!e.ok && this.failedVerify === null) this.failedVerify = e.message;
  }

  result(injected: TrialResult['injected'], complete: boolean): ProbeTrialResult {
    this.flush();
    const info = this.info;
    const ring: number[] = [];
    for (let i = 0; i < this.ringGap.length; i++) if (this.ringEnd[i]! <= (injected?.cutAt ?? Infinity)) ring.push(this.ringGap[i]!);
    const effectiveIntervalMs = median(ring) ?? info.intervalMs;
    const base: Omit<ProbeTrialResult, 'outcome' | 'reason'> = {
      segments: this.segments,
      kind: info.kind,
      observedOutageMs: null,
      recoveryMs: null,
      detectedAfterMs: null,
      effectiveIntervalMs,
      samples: this.samples,
      lastOkBeforeMs: null,
      firstOkAfterMs: null,
      sessionsLost: this.lostCount,
      reconnects: this.reopened.length,
      errors: this.errors,
      errorsDropped: this.errorsDropped,
      verifications: this.verifications,
    };
    if (!injected) return withOutcome(base, 'unknown', complete ? 'no blackout was injected in this trial' : 'the run ended before the blackout was injected and restored');
    const { cutAt, restoredAt } = injected;
    let worst: { from: number; to: number } | null = null;
    for (const g of this.topGaps) {
      if (!(g.to > cutAt && g.from < restoredAt)) continue;
      if (!worst || g.to - g.from > worst.to - worst.from) worst = g;
    }
    const lastOkBefore = this.lastBeforeCut;
    const firstAfter = this.firstAfterRestore;
    base.lastOkBeforeMs = worst?.from ?? lastOkBefore;
    base.firstOkAfterMs = worst?.to ?? firstAfter;
    if (firstAfter !== null) base.recoveryMs = firstAfter - restoredAt;
    // no good sample after the restore: the outage never ended (within this trial), so it has no length
    if (worst && firstAfter !== null) base.observedOutageMs = Math.max(0, worst.to - worst.from - effectiveIntervalMs);
    // icmp: the send-time bracket (see sent()), when it covers the window
    let bracket: SendGap | null = null;
    for (const g of this.sendGaps) {
      if (!(g.to > cutAt && g.from < restoredAt)) continue;
      if (!bracket || g.to - g.from > bracket.to - bracket.from) bracket = g;
    }
    if (bracket && firstAfter !== null) {
      // each edge's own send period (a missing or implausible one: the interval seen before the cut)
      const edge = (p: number) => (Number.isFinite(p) && p > 0 && p < 4 * effectiveIntervalMs ? p : effectiveIntervalMs);
      const cutEdge = edge(bracket.before);
      const lastStep = bracket.lastStep;
      const restoreEdge = Number.isFinite(lastStep) && lastStep > 0 && lastStep <= bracket.to - bracket.from ? lastStep : silentPace(bracket, cutEdge, effectiveIntervalMs, edge(bracket.after));
      base.observedOutageMs = Math.max(0, bracket.to - bracket.from - (cutEdge + restoreEdge) / 2);
    }
    if (base.lastOkBeforeMs !== null) base.detectedAfterMs = Math.max(0, base.lastOkBeforeMs + effectiveIntervalMs - cutAt);

    const gap = worst ? worst.to - worst.from : 0;
    const limit = effectiveIntervalMs + info.toleranceMs;
    const fatal = this.fatal.find((e) => e.t >= cutAt);
    const firstLost = this.firstLost;
    const lastLost = this.lastLost;
    const reconnectedAt = lastLost ? this.reopened.find((t) => t >= lastLost.t) : undefined;
    const okAfterReconnect = reconnectedAt !== undefined && this.lastT !== null && this.lastT >= reconnectedAt;

    const result = (outcome: Outcome, reason: string): ProbeTrialResult => withOutcome(base, outcome, reason);
    if (this.failedVerify !== null) return result('failed', this.failedVerify);
    if (!complete && firstAfter === null && !firstLost) return result('unknown', 'the run ended before the probe was seen to recover');
    if (firstLost) {
      if (reconnectedAt !== undefined && okAfterReconnect) {
        return result('recovered', `session lost (${firstLost.message}); reconnected after ${formatLength(reconnectedAt - firstLost.t)}`);
      }
      return result('failed', `session lost: ${firstLost.message}${this.reopened.length ? '; reconnect did not bring a working session' : ''}`);
    }
    if (fatal) return result('failed', `error reached the application: ${fatal.message}`);
    // a copy still running when the trial ended was never verified: it did not survive, nor fail, as far as anyone knows
    if (this.unfinished !== null) return result('unknown', this.unfinished);
    if (firstAfter === null) {
      return result(complete ? 'failed' : 'unknown', complete ? 'no good sample after the restore before the recovery window closed' : 'the run ended during recovery');
    }
    if (gap > limit) return result('stalled', `no answer for ${formatLength(gap)}; the same session resumed ${formatLength(base.recoveryMs ?? 0)} after the restore`);
    return result('transparent', `longest gap ${formatLength(gap)} ≤ interval ${formatLength(effectiveIntervalMs)} + tolerance ${formatLength(info.toleranceMs)}`);
  }
}

/** what a result without errors or verifications lists: one frozen array for all of them (a long run has 15 000 such results) */
const NONE: never[] = Object.freeze([]) as unknown as never[];

/**
 * A probe's result: every field named, in one order. `{ ...base, outcome, reason }`
 * gave each of a long run's results a hidden class of its own (base's fields change
 * from null to numbers as it is filled in): 15 150 classes, 7.7 MiB of a 1 M-event
 * report's 30 MiB of results. The report holds every result to its end, so what
 * they hold is made small: the steady spans copied to an array of their own length
 * (one grown by push keeps spare room), no empty arrays of their own, and the
 * reason in one piece (V8 keeps a string built from parts as a tree of them:
 * 226 bytes for a typical reason, 146 in one piece).
 */
function withOutcome(b: Omit<ProbeTrialResult, 'outcome' | 'reason'>, outcome: Outcome, reason: string): ProbeTrialResult {
  return {
    segments: b.segments.length ? b.segments.slice() : NONE,
    kind: b.kind,
    observedOutageMs: b.observedOutageMs,
    recoveryMs: b.recoveryMs,
    detectedAfterMs: b.detectedAfterMs,
    effectiveIntervalMs: b.effectiveIntervalMs,
    samples: b.samples,
    lastOkBeforeMs: b.lastOkBeforeMs,
    firstOkAfterMs: b.firstOkAfterMs,
    sessionsLost: b.sessionsLost,
    reconnects: b.reconnects,
    errors: b.errors.length ? b.errors : NONE,
    errorsDropped: b.errorsDropped,
    verifications: b.verifications.length ? b.verifications : NONE,
    outcome,
    reason: inOnePiece(reason),
  };
}

/** the same text as one flat string: JSON.parse makes its strings anew, each in one piece */
const inOnePiece = (s: string): string => JSON.parse(JSON.stringify(s)) as string;

class TrialAcc {
  end: EventOf<'trial-end'> | null = null;
  cut: EventOf<'cut'> | null = null;
  restore: EventOf<'restore'> | null = null;
  info: Array<Record<string, unknown>> = [];
  injectorError: TrialResult['injectorError'] = null;
  phases: Partial<Record<Phase, number>> = {};
  readonly win = { cutAt: Infinity, restoredAt: Infinity };
  readonly probes = new Map<string, ProbeAcc>();

  constructor(
    readonly start: EventOf<'trial-start'>,
    infos: ProbeInfo[],
  ) {
    for (const i of infos) this.probes.set(i.name, new ProbeAcc(i, this.win));
  }

  result(): TrialResult {
    const tr = this;
    const restored = tr.restore ? restoreInstant(tr.cut, tr.restore) : null;
    const injected =
      tr.cut && tr.restore && restored
        ? {
            cutAt: tr.cut.t,
            restoredAt: restored.t,
            durationMs: restored.t - tr.cut.t,
            cutBefore: tr.cut.before,
            restoreBefore: Math.min(tr.restore.before, restored.t),
            deadline: tr.cut.deadline,
            restoreReason: tr.restore.reason,
            restoredBy: restored.by,
            harnessRestoredAt: tr.restore.t,
            guardedBy: guardOf(tr.cut.detail),
          }
        : null;
    const probes: Record<string, ProbeTrialResult> = {};
    for (const [name, acc] of this.probes) probes[name] = acc.result(injected, tr.end !== null);
    return {
      index: tr.start.trial,
      requestedMs: tr.start.requestedMs,
      reason: tr.start.reason ?? null,
      plan: (tr.start as { plan?: Record<string, unknown> }).plan ?? null,
      phases: tr.phases,
      complete: tr.end !== null,
      startedAt: tr.start.t,
      endedAt: tr.end?.t ?? null,
      injected,
      injectorInfo: tr.info,
      injectorError: tr.injectorError,
      probes,
    };
  }
}

/** a trial analysed at its trial-end, with what the run has recorded so far */
export type TrialEndListener = (t: TrialResult, start: EventOf<'run-start'>, attachments: ReadonlyArray<EventOf<'attachment'>>) => void;

/**
 * The fold. `add` every event in log order, then `finish()`. A finished trial
 * is analysed at its trial-end (its accumulators are released), so the
 * runner can ask `trial(i)` for the outcomes that steer a search, and
 * `onTrialEnd` hears of it (the report writes its Allure results then).
 */
export class AnalysisBuilder {
  constructor(private readonly onTrialEnd?: TrialEndListener) {}

  private start: EventOf<'run-start'> | null = null;
  private runEnd: EventOf<'run-end'> | null = null;
  private open = new Map<number, TrialAcc>();
  private done = new Map<number, TrialResult>();
  private preflight: Array<EventOf<'preflight'>> = [];
  private heal: string[] = [];
  private attachments: Array<EventOf<'attachment'>> = [];
  count = 0;

  add(e: BlackoutEvent): void {
    this.count++;
    switch (e.type) {
      case 'run-start':
        if (!this.start) this.start = e;
        return;
      case 'run-end':
        this.runEnd = e;
        return;
      case 'preflight':
        if (this.preflight.length < MAX_LIST) this.preflight.push(e);
        return;
      case 'heal':
        this.heal.push(...e.actions);
        return;
      case 'attachment':
        if (this.attachments.length < 10 * MAX_LIST) this.attachments.push(e);
        return;
      case 'trial-start':
        if (!this.start) throw new Error('the event log does not begin with run-start');
        this.open.set(e.trial, new TrialAcc(e, this.start.probes));
        return;
      default:
        break;
    }
    const tr = this.open.get(e.trial);
    if (!tr) return;
    switch (e.type) {
      case 'trial-end': {
        tr.end = e;
        const result = tr.result();
        this.done.set(e.trial, result);
        this.open.delete(e.trial);
        this.onTrialEnd?.(result, this.start!, this.attachments);
        return;
      }
      case 'cut':
        tr.cut = e;
        tr.win.cutAt = e.t;
        for (const p of tr.probes.values()) p.windowChanged();
        return;
      case 'restore':
        tr.restore = e;
        tr.win.restoredAt = restoreInstant(tr.cut, e).t;
        for (const p of tr.probes.values()) p.windowChanged();
        return;
      case 'injector-info':
        tr.info.push(e.data);
        return;
      case 'injector-error':
        tr.injectorError = { step: e.step, message: e.message, restored: e.restored, ...(e.restoreError ? { restoreError: e.restoreError } : {}) };
        return;
      case 'phase':
        tr.phases[e.phase] ??= e.t;
        return;
      default:
        break;
    }
    const p = tr.probes.get(e.probe);
    if (!p) return;
    switch (e.type) {
      case 'sample':
        p.sample(e.t);
        if (e.seq !== undefined && e.latencyMs !== undefined && p.info.facts?.sendTimes) p.reply(e.t, e.latencyMs, e.seq, e.sendStepMs);
        return;
      case 'probe-error':
        p.error(e);
        return;
      case 'session-lost':
        p.lost(e);
        return;
      case 'session-open':
        p.open(e);
        return;
      case 'verify':
        p.verify(e);
        return;
      default:
        return;
    }
  }

  /** a trial's result once its trial-end was added */
  trial(index: number): TrialResult | null {
    return this.done.get(index) ?? null;
  }

  finish(): Analysis {
    const start = this.start;
    if (!start) throw new Error('the event log does not begin with run-start');
    const trials = [...this.done.values(), ...[...this.open.values()].map((t) => t.result())].sort((a, b) => a.index - b.index);
    return assemble(start, this.runEnd, trials, this.preflight, this.heal, this.attachments, this.count);
  }
}

export function analyze(events: Iterable<BlackoutEvent>): Analysis {
  const b = new AnalysisBuilder();
  let first = true;
  for (const e of events) {
    if (first && e.type !== 'run-start') throw new Error('the event log does not begin with run-start');
    first = false;
    b.add(e);
  }
  return b.finish();
}

function assemble(
  start: EventOf<'run-start'>,
  runEnd: EventOf<'run-end'> | null,
  trials: TrialResult[],
  preflight: Array<EventOf<'preflight'>>,
  heal: string[],
  attachments: Array<EventOf<'attachment'>>,
  eventCount: number,
): Analysis {
  // expectations travel in the run's own record of its suite, so a report needs nothing but the log
  const config = start.config as { sweep?: Sweep | null } | null;
  const probes: Record<string, ProbeRunResult> = {};
  for (const info of start.probes) {
    let maxSurvivedMs: number | null = null;
    let minFailedMs: number | null = null;
    for (const t of trials) {
      const r = t.probes[info.name];
      if (!r || !t.injected || r.outcome === 'unknown') continue;
      const d = t.injected.durationMs;
      if (survived(r.outcome)) maxSurvivedMs = Math.max(maxSurvivedMs ?? -Infinity, d);
      else minFailedMs = Math.min(minFailedMs ?? Infinity, d);
    }
    probes[info.name] = { kind: info.kind, info, maxSurvivedMs, minFailedMs, outcomes: trials.map((t) => t.probes[info.name]?.outcome ?? 'unknown') };
  }

  const expectationResults: ExpectationResult[] = [];
  for (const { probe, survivesMs: X } of expectedSurvivals(start.config)) {
    const relevant = trials.filter((t) => t.injected && t.probes[probe]);
    const failedBelow = relevant.filter((t) => t.requestedMs <= X && !survived(t.probes[probe]!.outcome));
    const survivedAtLeast = relevant.some((t) => t.requestedMs >= X && survived(t.probes[probe]!.outcome));
    const passed = failedBelow.length === 0 && survivedAtLeast;
    const message = passed
      ? `${probe} survives a ${formatLength(X)} blackout`
      : failedBelow.length
        ? `${probe} did not survive a ${formatLength(failedBelow[0]!.requestedMs)} blackout (${failedBelow[0]!.probes[probe]!.outcome}: ${failedBelow[0]!.probes[probe]!.reason}); expected to survive ${formatLength(X)}`
        : `no completed trial of ${formatLength(X)} or longer that ${probe} survived; expected to survive ${formatLength(X)}`;
    expectationResults.push({ probe, survivesMs: X, passed, message });
  }

  const runExitCode = runEnd?.exitCode ?? null;
  const tests = testCases({
    suite: start.suite,
    config: start.config,
    trials,
    expectations: expectationResults,
    complete: runEnd !== null,
    endReason: runEnd?.reason ?? null,
    probeInfo: start.probes,
    runExitCode,
  });
  // the one exit code rule (the CLI returns it, summary.json records it): failing cases decide a completed run
  const exitCode = runExitCode === null ? null : runExitCode !== 0 ? runExitCode : tests.counts.failed + tests.counts.errors > 0 ? 1 : 0;
  const partial: RunFold = {
    suite: start.suite,
    runId: start.runId,
    startedWallMs: start.wallMs,
    host: start.host,
    version: start.version,
    target: { name: start.target.name, address: start.target.address },
    injector: start.injector,
    config: start.config,
    probeInfo: start.probes,
    complete: runEnd !== null,
    exitCode,
    endReason: runEnd?.reason ?? null,
    preflight,
    heal,
    trials,
    probes,
    expectations: expectationResults,
    passed: exitCode === 0,
    tests,
    attachments,
    sweep: config?.sweep ?? null,
    eventCount,
  };
  return { ...partial, decision: decide(partial) };
}
