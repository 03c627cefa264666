/**
 * The probe interface: one worker that keeps ONE realistic client session open
 * against the target and reports what the application would see. Modelled on
 * Uptime Kuma's one-file-per-monitor registry.
 *
 * Lifecycle per trial: create → open() (the session is up, sampling starts) →
 * … blackout … → close() (sampling stops, after-the-fact checks such as
 * lost writes or checksums are emitted as `verify` events).
 *
 * A probe never throws out of its sampling loop: everything it sees becomes an
 * event through `ctx.emit` (sample, probe-error, session-lost, session-open,
 * verify, probe-note, attachment). Every operation is bounded by a timeout and
 * by `ctx.signal`.
 */
import type { z } from 'zod';
import type { Clock } from './clock.ts';
import type { BlackoutEvent } from './events.ts';
import type { ResolvedTarget } from './target.ts';

type Omitted = 't' | 'probe' | 'trial';
type ProbeEventTypes = 'sample' | 'probe-error' | 'session-open' | 'session-lost' | 'verify' | 'probe-note';
/** what a probe emits; the runner adds the probe name and trial, `t` defaults to now */
export type ProbeEvent = {
  [K in ProbeEventTypes]: Omit<Extract<BlackoutEvent, { type: K }>, Omitted> & { t?: number };
}[ProbeEventTypes];

export interface ProbeContext {
  name: string;
  trial: number;
  clock: Clock;
  target: ResolvedTarget;
  runDir: string;
  /** aborted when the probe must stop (close, Ctrl-C) */
  signal: AbortSignal;
  /** takes the event over: the runner completes this object (t, probe, trial) and logs it, so pass a fresh one */
  emit(event: ProbeEvent): void;
  /** saves a file into the run folder and records an attachment event; returns its relative path */
  attach(name: string, data: Buffer | string, contentType: string): string;
}

export interface Probe {
  /** opens the session; rejects with a readable error when it cannot (a preflight failure) */
  open(): Promise<void>;
  /** stops sampling, closes the session, runs after-the-fact checks */
  close(): Promise<void>;
}

/** fields every probe config has */
export interface ProbeConfigBase {
  name: string;
  kind: string;
  /** sampling interval, ms */
  interval: number;
  /** a gap longer than interval + tolerance is a stall, ms */
  tolerance: number;
}

/**
 * One deadline of the client during a silent blackout, in the form the
 * prediction reads:
 *  - `request`: an application timer on its own clock (a query or read
 *    timeout, a page's staleness limit): strict, a retransmission landing at
 *    the deadline is too late;
 *  - `user-timeout`: the kernel's TCP_USER_TIMEOUT on unacknowledged data;
 *  - `keepalive`: an application keepalive that gives up after `count`
 *    unanswered probes sent every `intervalMs`;
 *  - `idle-keepalive`: the kernel's keepalive on an otherwise idle connection
 *    (its only traffic), so where the cut falls in the idle period matters.
 */
export type ClientDeadline =
  | { type: 'request'; ms: number; what: string }
  | { type: 'user-timeout'; ms: number; what: string }
  | { type: 'keepalive'; intervalMs: number; count: number; what: string }
  /** the kernel's TCP keepalive on a connection that sends nothing else: probes after idleMs, every intervalMs, count unanswered end it */
  | { type: 'idle-keepalive'; idleMs: number; intervalMs: number; count: number; what: string };

/** What the core needs to know about a probe's client, typed (the display-only `policy` says the same in the client's words). */
export interface ClientFacts {
  /** false for a probe that holds no session (ping): nothing to break, it only measures the outage */
  session: boolean;
  /** the deadlines that can end the session during a blackout, the client's defaults included */
  deadlines: ClientDeadline[];
  /** settings that do not bound a blackout, each with why (server-side timers, connect-only timeouts, idle keepalives) */
  notes: string[];
  /** true when the probe reopens a lost session (the outcome is then "recovered", which is not surviving) */
  reconnect: boolean;
  /**
   * true when every sample carries its request's `seq` and round trip, so the analysis can date each
   * request's sending and bracket the outage by send times (the last answered request before the cut,
   * the first after the restore) rather than by the gap between answers (ping -O)
   */
  sendTimes?: boolean;
}

export interface ProbeDefinition<C extends ProbeConfigBase> {
  kind: C['kind'];
  /** one line for --help */
  summary: string;
  /**
   * Debian packages its client needs on the harness host, one array literal on the definition:
   * scripts/setup.sh reads them from this file (before any npm module is installed) and installs the missing ones
   */
  packages?: readonly string[];
  /** validates one entry of the suite's `probes:` list (name, kind, interval, tolerance included) */
  schema: z.ZodType<C>;
  /** fields holding a file path relative to the suite file (the suite loader makes them absolute) */
  fileFields?: readonly string[];
  /** the client's effective policy (timeouts, keepalives, reconnect), shown next to the outcome */
  policy(config: C): Record<string, unknown>;
  /** the client's deadlines and reconnect policy, recorded in run-start and read by the prediction and the runner */
  facts(config: C): ClientFacts;
  create(config: C, ctx: ProbeContext): Probe;
}
