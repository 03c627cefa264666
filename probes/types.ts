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
import type { Clock } from '../src/clock.ts';
import type { BlackoutEvent } from '../src/events.ts';
import type { ResolvedTarget } from '../src/target.ts';

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

export interface ProbeDefinition<C extends ProbeConfigBase> {
  kind: C['kind'];
  /** one line for --help */
  summary: string;
  /** validates one entry of the suite's `probes:` list (name, kind, interval, tolerance included) */
  schema: z.ZodType<C>;
  /** fields holding a file path relative to the suite file (the suite loader makes them absolute) */
  fileFields?: readonly string[];
  /** the client's effective policy (timeouts, keepalives, reconnect), shown next to the outcome */
  policy(config: C): Record<string, unknown>;
  create(config: C, ctx: ProbeContext): Probe;
}
