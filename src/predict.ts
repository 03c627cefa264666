/**
 * Predicted breaking points: from a probe's configured policy (what its
 * client tolerates), the longest blackout its session should survive. Pure.
 *
 * The physics (LAB-NOTES.md): during a silent blackout the client's pending
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
 * Rules are per kind, on the policy keys each probe exposes in `policy()`
 * (also the keys the probes being added are expected to expose: statement /
 * query / read / I/O timeouts, keepalive interval × count, TCP user timeout,
 * FreeRDP's ack timeout). A kind without a rule gets no prediction.
 */
import type { ProbeInfo } from './events.ts';
import { parseDuration } from './clock.ts';

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

const norm = (k: string): string => k.toLowerCase().replace(/[^a-z0-9]/g, '').replace(/ms$/, '').replace(/millis$/, '');

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

const REQUEST_DEADLINES = new Set([
  'readtimeout', 'querytimeout', 'requesttimeout', 'iotimeout', 'commandtimeout', 'responsetimeout', 'operationtimeout',
  'sockettimeout', 'echotimeout', 'frametimeout', 'freezetimeout', 'heartbeattimeout', 'pingtimeout', 'pongtimeout',
  'wstimeout', 'websockettimeout', 'transfertimeout', 'stalltimeout', 'smbtimeout', 'timeout', 'datatimeout',
  // the web probe's declarative check that loads a page: the browser gives up on the load after that long
  'pageloadtimeout',
  // the rdp probe's own arithmetic of FreeRDP's fixed keepalive and ack timeout
  'dropsaftersilence',
]);
const USER_TIMEOUTS = new Set(['usertimeout', 'tcpusertimeout', 'tcpacktimeout']);
const SERVER_SIDE = new Set(['statementtimeout', 'idleintransactionsessiontimeout', 'locktimeout', 'idlesessiontimeout']);
const CONNECT_ONLY = new Set(['connecttimeout', 'connectiontimeout', 'logintimeout', 'readytimeout', 'handshaketimeout', 'connectiontimeoutmillis', 'opentimeout', 'logontimeout']);

/** Kinds the rules know: every TCP-based session kind; icmp has no session. */
const TCP_KINDS = new Set(['tcp', 'postgres', 'odbc', 'console', 'sftp', 'smb', 'web', 'rdp']);
const SSH_KINDS = new Set(['console', 'sftp']);

/** Defaults of the real clients when the policy names none (documented client behaviour). */
const KIND_DEFAULTS: Record<string, { key: string; ms: number; why: string }> = {
  smb: { key: 'ioTimeoutMs', ms: 20_000, why: "smbclient's default I/O timeout (-t 20); LAB-NOTES saw NT_STATUS_IO_TIMEOUT ~19 s in" },
  rdp: { key: 'tcpAckTimeoutMs', ms: 9000, why: "FreeRDP's default /tcp-ack-timeout (9 s), applied as TCP_USER_TIMEOUT" },
};

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

function fmt(ms: number): string {
  if (!Number.isFinite(ms)) return '∞';
  return ms >= 1000 ? `${+(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`;
}

/** App-level keepalive (SSH ServerAlive / ssh2 keepaliveInterval × keepaliveCountMax): dies (count+1) × interval after the last data received. */
function keepaliveDeadline(interval: number, count: number, what: string): Deadline {
  return { strict: true, ms: (count + 1) * interval, earliestMs: count * interval, what: `${what} ${fmt(interval)} × ${count}: the session is dropped ${fmt(count * interval)}–${fmt((count + 1) * interval)} after the last answer` };
}

/**
 * The predicted breaking point of one probe.
 * `opts.rttMs`: the measured request latency, added to the first RTO.
 */
export function predictBreakingPoint(info: Pick<ProbeInfo, 'name' | 'kind' | 'intervalMs' | 'policy'>, opts: { rttMs?: number } = {}): Prediction {
  const { name: probe, kind } = info;
  const none = (why: string): Prediction => ({ probe, kind, breakingMs: null, range: null, mechanism: why, basis: [] });
  if (kind === 'icmp') {
    return { probe, kind, breakingMs: Infinity, range: [Infinity, Infinity], mechanism: 'ping keeps no session: it only measures the outage', basis: [] };
  }
  if (!TCP_KINDS.has(kind)) return none(`no prediction rule for probe kind "${kind}"`);

  const rto0 = RTO_MIN_MS + Math.max(0, opts.rttMs ?? 0);
  const basis: string[] = [];
  const deadlines: Deadline[] = [];
  const policy = info.policy ?? {};
  const flat = new Map<string, [string, unknown]>();
  for (const [k, v] of Object.entries(policy)) flat.set(norm(k), [k, v]);

  for (const [nk, [k, v]] of flat) {
    if (USER_TIMEOUTS.has(nk)) {
      const ms = policyMs(v);
      if (ms === null) basis.push(`${k}: not set — no TCP user timeout`);
      else {
        // Linux counts the user timeout from the first retransmission and clamps the timer to it: measured on the lab, a 3 s user timeout still delivered the 3.0 s retransmission
        deadlines.push({ ms: ms + rto0, earliestMs: ms, what: `TCP user timeout ${fmt(ms)}: unacknowledged data for longer kills the connection` });
        basis.push(`${k} = ${fmt(ms)}: the kernel drops the connection when sent data stays unacknowledged that long`);
      }
    } else if (REQUEST_DEADLINES.has(nk)) {
      const ms = policyMs(v);
      if (ms === null) basis.push(`${k}: ${JSON.stringify(v)} — no deadline`);
      else {
        deadlines.push({ strict: true, ms, earliestMs: ms, what: `${k} ${fmt(ms)}: the client gives up on an answer after that long` });
        basis.push(`${k} = ${fmt(ms)}: the client gives up waiting for an answer after that long`);
      }
    } else if (SERVER_SIDE.has(nk)) {
      const ms = policyMs(v);
      if (ms !== null) basis.push(`${k} = ${fmt(ms)}: server-side (the server's clock, while it executes); a blackout delays the query's arrival instead, so it does not bound the breaking point`);
    } else if (CONNECT_ONLY.has(nk)) {
      const ms = policyMs(v);
      if (ms !== null) basis.push(`${k} = ${fmt(ms)}: applies to opening a session only`);
    } else if (nk === 'keepalive' || nk === 'serveralive' || nk === 'tcpkeepalive' || nk === 'keepalives') {
      if (v && typeof v === 'object') {
        const o = v as Record<string, unknown>;
        const interval = policyMs(o.interval ?? o.intervalMs);
        const count = typeof o.countMax === 'number' ? o.countMax : typeof o.count === 'number' ? o.count : null;
        if ('idle' in o || 'idleMs' in o || nk === 'tcpkeepalive' || nk === 'keepalives' || (!SSH_KINDS.has(kind) && nk === 'keepalive')) {
          basis.push(`${k} = ${JSON.stringify(v)}: TCP keepalive only probes an idle connection; with a request outstanding during the blackout it never fires`);
        } else if (interval !== null && count !== null) {
          deadlines.push(keepaliveDeadline(interval, count, nk === 'serveralive' ? 'ServerAlive' : 'keepalive'));
          basis.push(`${k} = ${fmt(interval)} × ${count}: application keepalive`);
        }
      } else if (v !== undefined && v !== 'off' && v !== false && v !== 'none') basis.push(`${k} = ${JSON.stringify(v)}`);
    } else if (nk === 'reconnect') {
      if (v && v !== 'none') basis.push(`reconnect = ${typeof v === 'object' ? JSON.stringify(v) : String(v)}: a lost session is reopened (outcome "recovered", which is not surviving)`);
    }
  }
  // flattened keepalive pairs (ssh2's keepaliveInterval + keepaliveCountMax, OpenSSH's ServerAliveInterval + ServerAliveCountMax)
  for (const [ik, ck, label] of [['keepaliveinterval', 'keepalivecountmax', 'keepalive'], ['serveraliveinterval', 'serveralivecountmax', 'ServerAlive']] as const) {
    const iv = flat.get(ik);
    if (!iv) continue;
    const interval = policyMs(iv[1]);
    const c = flat.get(ck)?.[1];
    const count = typeof c === 'number' ? c : 3;
    if (interval !== null) {
      deadlines.push(keepaliveDeadline(interval, count, label));
      basis.push(`${iv[0]} = ${fmt(interval)}, count ${count}${flat.has(ck) ? '' : ' (default)'}: application keepalive`);
    } else basis.push(`${iv[0]}: off`);
  }
  const def = KIND_DEFAULTS[kind];
  if (def && !flat.has(norm(def.key))) {
    const isUser = USER_TIMEOUTS.has(norm(def.key));
    deadlines.push({ strict: !isUser, ms: def.ms + (isUser ? rto0 : 0), earliestMs: def.ms, what: `${def.why}` });
    basis.push(`no ${def.key} in the policy: assumed ${fmt(def.ms)} (${def.why})`);
  }

  const giveUp = kernelGiveUpMs(rto0);
  if (!deadlines.length && !basis.some((b) => !b.startsWith('reconnect'))) {
    return { ...none('the policy names no timeout or keepalive to predict from'), basis };
  }
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
    mechanism: `${decisive.what}; the last retransmission before it is at ${fmt(b)}, so a blackout longer than ~${fmt(b)} outlasts the session`,
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
  const obs = `observed ${lo === null ? '<' : `survived ${fmt(lo)}`}${lo !== null && hi !== null ? ', ' : ' '}${hi === null ? 'and every longer blackout tried' : `failed ${fmt(hi)}`}`;
  const pred = Number.isFinite(p.breakingMs) ? `predicted ~${fmt(p.breakingMs)} (${fmt(rl)}–${fmt(rh)})` : 'predicted: no breaking point';
  if (hi !== null && hi < rl - slack(rl)) {
    return { agreement: 'breaks-earlier', finding: true, text: `breaks earlier than its policy allows: ${obs}; ${pred} — something else ends the session (another timeout, a middlebox, the server side)` };
  }
  if (lo !== null && lo > rh + slack(rh)) {
    return { agreement: 'survives-longer', finding: true, text: `survives longer than its policy allows: ${obs}; ${pred} — the client does not enforce the configured timeout` };
  }
  const consistent = (hi === null || hi >= rl - slack(rl)) && (lo === null || lo <= rh + slack(rh));
  if (consistent && lo !== null && hi !== null) return { agreement: 'agrees', finding: false, text: `${obs}; ${pred}` };
  return { agreement: consistent ? 'agrees' : 'inconclusive', finding: false, text: `${obs}; ${pred}${hi === null && Number.isFinite(rl) && lo !== null && lo < rl ? ' (the sweep did not reach it)' : ''}` };
}
