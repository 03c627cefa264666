/**
 * Predicted breaking points: from a probe's configured policy (what its
 * client tolerates), the longest blackout its session should survive. Pure.
 *
 * The physics (docs/lab-facts.md): during a silent blackout the client's pending
 * data is retransmitted on TCP's backoff schedule — first RTO ≈ 200 ms (Linux
 * minimum) + RTT, doubling, capped at 120 s: 0.2, 0.6, 1.4, 3.0, 6.2, 12.6,
 * 25.4, 51, 102 s … after the first unacknowledged send. After the restore
 * nothing moves until the next retransmission, so a session with a deadline
 * D (the application's read timeout, TCP_USER_TIMEOUT, an SSH keepalive
 * count) survives a blackout B only if a retransmission falls after B and
 * before D: its breaking point is the last retransmission instant ≤ D, not D
 * itself. Without any deadline the kernel gives up after tcp_retries2 = 15
 * retransmissions (~15 min).
 *
 * The prediction reads only the typed facts each probe declares about its
 * client (`facts()` in the probe's file, recorded in run-start): whether it
 * holds a session, its deadlines (request timers, TCP user timeout,
 * application keepalives) and its reconnect policy. It never looks at a
 * probe's kind, so a new probe kind gets a prediction by declaring its facts.
 */
import type { ProbeInfo } from '../core/events.ts';
import type { ClientDeadline } from '../core/probe.ts';
import { parseDuration } from '../core/clock.ts';
import { formatLength } from '../core/format.ts';

export interface Prediction {
  probe: string;
  kind: string;
  /** the longest blackout the policy lets the session survive; Infinity: no session to break; null: no prediction */
  breakingMs: number | null;
  /** where the breaking point should lie (phase of the probe's interval, RTT); null with no prediction */
  range: [number, number] | null;
  /** the mechanism that decides, in words */
  mechanism: string;
  /** each policy element considered, and how */
  basis: string[];
}

export const RTO_MIN_MS = 200;
export const RTO_MAX_MS = 120_000;
/** Linux tcp_retries2 default: the connection is dropped after this many retransmissions */
export const TCP_RETRIES2 = 15;

/** Retransmission instants after the first unacknowledged send (ms), up to `untilMs`. */
export function retransmissionSchedule(untilMs: number, rto0 = RTO_MIN_MS): number[] {
  const out: number[] = [];
  let rto = rto0;
  let t = 0;
  for (let k = 0; k < 64; k++) {
    t += rto;
    if (t > untilMs) break;
    out.push(t);
    rto = Math.min(rto * 2, RTO_MAX_MS);
  }
  return out;
}

/** When the kernel drops a connection that gets no ACK at all (tcp_retries2), ms after the first send. */
export function kernelGiveUpMs(rto0 = RTO_MIN_MS): number {
  // Linux tcp_model_timeout: linear backoff up to RTO_MAX, then RTO_MAX per retry
  let t = 0;
  let rto = rto0;
  for (let k = 0; k <= TCP_RETRIES2; k++) {
    t += rto;
    rto = Math.min(rto * 2, RTO_MAX_MS);
  }
  return t;
}

/** The last retransmission at or before the deadline: the longest blackout a session with that deadline survives. */
export function lastDeliveryBefore(deadlineMs: number, rto0 = RTO_MIN_MS): number {
  return retransmissionSchedule(deadlineMs, rto0).at(-1) ?? 0;
}

/** A policy value as ms: numbers are ms, "5s"-style strings are parsed, "none"/"off"/0/false/others are absent. */
export function policyMs(v: unknown): number | null {
  if (typeof v === 'number') return Number.isFinite(v) && v > 0 ? v : null;
  if (typeof v === 'string') {
    try {
      const ms = parseDuration(v);
      return ms > 0 ? ms : null;
    } catch {
      return null;
    }
  }
  return null;
}

interface Deadline {
  ms: number;
  /** earliest it may fire, when it is not one instant (keepalive counts) */
  earliestMs: number;
  what: string;
  /**
   * An application timer (a query timeout, a keepalive count) fires at its deadline whatever TCP is
   * doing: a retransmission that lands exactly then is too late, so the last delivery that counts is
   * the one strictly before it (a 3 s query timeout breaks from ~1.4 s of blackout on). The kernel's
   * TCP_USER_TIMEOUT is not strict: Linux clamps the timer so the retransmission at the deadline still
   * goes out (measured on the lab).
   */
  strict?: boolean;
}

/** App-level keepalive (SSH ServerAlive / ssh2 keepaliveInterval × keepaliveCountMax): dies (count+1) × interval after the last data received. */
function keepaliveDeadline(interval: number, count: number, what: string): Deadline {
  return {
    strict: true,
    ms: (count + 1) * interval,
    earliestMs: count * interval,
    what: `${what}: the session is dropped ${formatLength(count * interval)}–${formatLength((count + 1) * interval)} after the last answer`,
  };
}

/** One declared deadline in the form the schedule arithmetic uses. */
function deadlineOf(d: ClientDeadline, rto0: number): Deadline {
  switch (d.type) {
    case 'request':
      return { strict: true, ms: d.ms, earliestMs: d.ms, what: d.what };
    case 'user-timeout':
      // Linux counts the user timeout from the first retransmission and clamps the timer to it: measured on the lab, a 3 s user timeout still delivered the 3.0 s retransmission
      return { ms: d.ms + rto0, earliestMs: d.ms, what: d.what };
    case 'keepalive':
      return keepaliveDeadline(d.intervalMs, d.count, d.what);
    case 'idle-keepalive':
      // only reached beside a request-driven deadline: the keepalive never fires with data outstanding
      return { ms: Infinity, earliestMs: Infinity, what: d.what };
  }
}

/**
 * The predicted breaking point of one probe.
 * `opts.rttMs`: the measured request latency, added to the first RTO.
 */
export function predictBreakingPoint(info: Pick<ProbeInfo, 'name' | 'kind' | 'intervalMs' | 'facts'>, opts: { rttMs?: number } = {}): Prediction {
  const { name: probe, kind, facts } = info;
  const none = (why: string): Prediction => ({ probe, kind, breakingMs: null, range: null, mechanism: why, basis: [] });
  if (!facts) return none('the run log records no client facts for this probe (written by an older blackout): no prediction');
  if (!facts.session) {
    return { probe, kind, breakingMs: Infinity, range: [Infinity, Infinity], mechanism: facts.notes[0] ?? 'the probe keeps no session: it only measures the outage', basis: [] };
  }
  const idle = facts.deadlines.find((d) => d.type === 'idle-keepalive');
  if (idle?.type === 'idle-keepalive') return idleKeepalivePrediction(info, idle, facts);
  const rto0 = RTO_MIN_MS + Math.max(0, opts.rttMs ?? 0);
  const deadlines = facts.deadlines.map((d) => deadlineOf(d, rto0));
  const basis = [...facts.deadlines.map((d) => d.what), ...facts.notes];
  if (facts.reconnect) basis.push('reconnect: a lost session is reopened (outcome "recovered", which is not surviving)');

  const giveUp = kernelGiveUpMs(rto0);
  if (!deadlines.length) {
    // the last retransmission before the kernel gives up (the give-up timer itself is not a delivery)
    const b = lastDeliveryBefore(giveUp - 1, rto0);
    basis.push(`no client deadline: the kernel retransmits until tcp_retries2 = ${TCP_RETRIES2} (~${Math.round(giveUp / 60_000)} min)`);
    return { probe, kind, breakingMs: b, range: [b - info.intervalMs, giveUp], mechanism: `no client deadline: only the kernel's retransmission limit (~${Math.round(giveUp / 60_000)} min)`, basis };
  }
  const decisive = deadlines.reduce((a, b) => (b.ms < a.ms ? b : a));
  const eps = decisive.strict ? 1 : 0;
  const b = lastDeliveryBefore(decisive.ms - eps, rto0);
  const bEarly = lastDeliveryBefore(decisive.earliestMs - eps, rto0);
  // Where in its request cycle the blackout hits the session moves the breaking point: the first unacknowledged
  // send falls up to an interval (more on a loaded machine) after the cut, each RTO is 200 ms plus RTT and jitter,
  // and a request the peer acknowledged just before the cut leaves nothing for the client's own timer to count.
  // Measured on the lab: a 3 s user timeout broke between 3.3 and 3.5 s on an idle machine and between 4.25 and
  // 5.25 s on a loaded one. So the range runs up to the next retransmission after the deadline.
  const nextAfter = retransmissionSchedule(decisive.ms + RTO_MAX_MS, rto0).find((r) => r > decisive.ms) ?? decisive.ms;
  const range: [number, number] = [Math.max(0, Math.min(b, bEarly) * 0.95 - info.intervalMs - 50), Math.max(b * 1.1 + info.intervalMs + 50, nextAfter)];
  return {
    probe,
    kind,
    breakingMs: b,
    range,
    mechanism: `${decisive.what}; the last retransmission before it is at ${formatLength(b)}, so a blackout longer than ~${formatLength(b)} outlasts the session`,
    basis,
  };
}

/**
 * A connection that sends nothing but the kernel's keepalive probes: the kernel gives up (ETIMEDOUT)
 * idle + count × interval after the last ACK, and the last probe that can still be answered leaves
 * idle + (count − 1) × interval after it — so, depending on where in the idle period the cut lands,
 * a blackout longer than (count − 1) × interval … idle + (count − 1) × interval outlasts the session.
 * With probes out, Linux gives up once the silence exceeds a TCP user timeout instead of the count.
 */
function idleKeepalivePrediction(info: Pick<ProbeInfo, 'name' | 'kind'>, k: { idleMs: number; intervalMs: number; count: number; what: string }, facts: NonNullable<ProbeInfo['facts']>): Prediction {
  const lo = (k.count - 1) * k.intervalMs;
  const hi = k.idleMs + (k.count - 1) * k.intervalMs;
  const ut = facts.deadlines.find((d) => d.type === 'user-timeout');
  const basis = [
    k.what,
    `the kernel gives up (ETIMEDOUT) ${formatLength(k.idleMs + k.count * k.intervalMs)} after the last ACK; the last probe that can still be answered leaves ${formatLength(hi)} after it`,
    ...facts.notes,
  ];
  if (ut) basis.push(`${ut.what}: with keepalive probes out, Linux gives up once the silence exceeds it instead of the count`);
  const b = (lo + hi) / 2;
  return {
    probe: info.name,
    kind: info.kind,
    breakingMs: ut ? Math.min(b, ut.ms) : b,
    range: [Math.max(0, lo - 50), hi + 50],
    mechanism: `kernel keepalive ${formatLength(k.idleMs)} + ${k.count} × ${formatLength(k.intervalMs)}: a blackout longer than ${formatLength(lo)}–${formatLength(hi)} (where in the idle period it starts) outlasts the last keepalive probe`,
    basis,
  };
}

export type Agreement = 'agrees' | 'breaks-earlier' | 'survives-longer' | 'inconclusive' | 'no-prediction';

export interface PredictionCheck {
  agreement: Agreement;
  /** one sentence for the report */
  text: string;
  /** true when the disagreement is a finding */
  finding: boolean;
}

/**
 * Compares a prediction with an observed bracket [maxSurvived, minFailed]
 * (ms; null for an open side). Slack: max(250 ms, 10 %) beyond the predicted
 * range, so timer granularity is not a finding.
 */
export function checkPrediction(p: Prediction, lo: number | null, hi: number | null, flaky = false): PredictionCheck {
  if (p.breakingMs === null || !p.range) return { agreement: 'no-prediction', text: p.mechanism, finding: false };
  if (flaky) return { agreement: 'inconclusive', text: 'outcomes not monotonic in the blackout length: no single breaking point to compare', finding: false };
  if (lo === null && hi === null) return { agreement: 'inconclusive', text: 'no completed trial', finding: false };
  const [rl, rh] = p.range;
  const slack = (v: number) => Math.max(250, 0.1 * v);
  const obs = `observed ${lo === null ? '<' : `survived ${formatLength(lo)}`}${lo !== null && hi !== null ? ', ' : ' '}${hi === null ? 'and every longer blackout tried' : `failed ${formatLength(hi)}`}`;
  const pred = Number.isFinite(p.breakingMs) ? `predicted ~${formatLength(p.breakingMs)} (${formatLength(rl)}–${formatLength(rh)})` : 'predicted: no breaking point';
  if (hi !== null && hi < rl - slack(rl)) {
    return {
      agreement: 'breaks-earlier',
      finding: true,
      text: `breaks earlier than its policy allows: ${obs}; ${pred} — something else ends the session (another timeout, a middlebox, the server side)`,
    };
  }
  if (lo !== null && lo > rh + slack(rh)) {
    return { agreement: 'survives-longer', finding: true, text: `survives longer than its policy allows: ${obs}; ${pred} — the client does not enforce the configured timeout` };
  }
  const consistent = (hi === null || hi >= rl - slack(rl)) && (lo === null || lo <= rh + slack(rh));
  if (consistent && lo !== null && hi !== null) return { agreement: 'agrees', finding: false, text: `${obs}; ${pred}` };
  return {
    agreement: consistent ? 'agrees' : 'inconclusive',
    finding: false,
    text: `${obs}; ${pred}${hi === null && Number.isFinite(rl) && lo !== null && lo < rl ? ' (the sweep did not reach it)' : ''}`,
  };
}
