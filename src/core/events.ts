/**
 * The one discriminated union of everything a run records. `events.jsonl` is a
 * sequence of these, one per line; analysis and every reporter are pure
 * functions of that sequence, so a report can be rebuilt at any time — also
 * from a run that died half-way.
 *
 * Every event has `t`: ms on the run's monotonic clock (see clock.ts).
 * Schema changes bump EVENT_SCHEMA_VERSION; readers reject newer versions.
 */
import { z } from 'zod';

export const EVENT_SCHEMA_VERSION = 1;

const base = { t: z.number() };
const probeRef = { ...base, probe: z.string(), trial: z.number().int() };

/** probe-error code: the probe's operation (a copy) was still running when the trial ended, so its result is unknown */
export const UNFINISHED = 'UNFINISHED';

export const OutcomeSchema = z.enum(['transparent', 'stalled', 'recovered', 'failed', 'unknown']);
export type Outcome = z.infer<typeof OutcomeSchema>;

export const ClientDeadlineSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('request'), ms: z.number(), what: z.string() }),
  z.object({ type: z.literal('user-timeout'), ms: z.number(), what: z.string() }),
  z.object({ type: z.literal('keepalive'), intervalMs: z.number(), count: z.number(), what: z.string() }),
  z.object({ type: z.literal('idle-keepalive'), idleMs: z.number(), intervalMs: z.number(), count: z.number(), what: z.string() }),
]);
export const ClientFactsSchema = z.object({
  session: z.boolean(),
  deadlines: z.array(ClientDeadlineSchema),
  notes: z.array(z.string()),
  reconnect: z.boolean(),
  sendTimes: z.boolean().optional(),
});

/** What an injector mode does to the target: a live or a quick migration, or no migration at all (a cut, a pause). */
export const MigrationKindSchema = z.enum(['live', 'quick', 'none']);
export type MigrationKind = z.infer<typeof MigrationKindSchema>;

export const ProbeInfoSchema = z.object({
  name: z.string(),
  kind: z.string(),
  /** the nominal sampling interval, ms */
  intervalMs: z.number(),
  /** a gap longer than interval + tolerance is a stall */
  toleranceMs: z.number(),
  /** the client's effective policy (timeouts, keepalives, reconnect), shown next to the outcome */
  policy: z.record(z.string(), z.unknown()),
  /** the client's deadlines and reconnect policy, typed (absent in logs written before they were recorded) */
  facts: ClientFactsSchema.optional(),
});
export type ProbeInfo = z.infer<typeof ProbeInfoSchema>;

export const EventSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('run-start'),
    ...base,
    schema: z.number().int(),
    runId: z.string(),
    suite: z.string(),
    /** the suite as validated, secrets replaced by their source (env var or file name) */
    config: z.unknown(),
    wallMs: z.number(),
    host: z.string(),
    target: z.object({ name: z.string(), address: z.string() }).loose(),
    /** `migration`: what the injector's mode is (absent in logs written before it was recorded: read as "none") */
    injector: z.object({ kind: z.string(), migration: MigrationKindSchema.optional() }).loose(),
    probes: z.array(ProbeInfoSchema),
    version: z.string(),
    /** a static shard of the sweep (`run --shard i/n`): its trials keep their planned numbers */
    shard: z.object({ index: z.number().int(), total: z.number().int() }).optional(),
    /** a campaign job run by `blackout worker` */
    job: z.object({ campaign: z.string(), id: z.string(), attempt: z.number().int(), target: z.string(), worker: z.string() }).optional(),
    /** a run folder built by `blackout merge` from these runs */
    merged: z.array(z.object({ runId: z.string(), host: z.string(), shard: z.object({ index: z.number().int(), total: z.number().int() }).optional() })).optional(),
  }),
  z.object({ type: z.literal('heal'), ...base, actions: z.array(z.string()) }),
  z.object({
    type: z.literal('preflight'),
    ...base,
    ok: z.boolean(),
    probe: z.string().optional(),
    message: z.string(),
  }),
  z.object({
    type: z.literal('trial-start'),
    ...base,
    trial: z.number().int(),
    requestedMs: z.number(),
    /** why this length was chosen (list position, search step) */
    reason: z.string().optional(),
    /** the planner's context: brackets before this trial, expected gain (src/analysis/search.ts) */
    plan: z.record(z.string(), z.unknown()).optional(),
  }),
  z.object({
    type: z.literal('phase'),
    ...base,
    trial: z.number().int(),
    phase: z.enum(['open', 'warmup', 'cut', 'recovery', 'drain']),
  }),
  z.object({
    type: z.literal('cut'),
    ...base,
    trial: z.number().int(),
    /** before/after the operation: the cut took effect inside [before, t] */
    before: z.number(),
    /** the kernel-side / watchdog deadline after which the target is restored even if the harness died */
    deadline: z.number(),
    detail: z.record(z.string(), z.unknown()).optional(),
  }),
  z.object({
    type: z.literal('restore'),
    ...base,
    trial: z.number().int(),
    before: z.number(),
    /** why: 'scheduled', 'error', 'signal', 'heal' */
    reason: z.string(),
    detail: z.record(z.string(), z.unknown()).optional(),
  }),
  /** the injector failed mid-run (the run ends after this trial); restored: whether the target was restored after it */
  z.object({
    type: z.literal('injector-error'),
    ...base,
    trial: z.number().int(),
    step: z.enum(['cut', 'restore']),
    message: z.string(),
    restored: z.boolean(),
    restoreError: z.string().optional(),
  }),
  z.object({
    type: z.literal('injector-info'),
    ...base,
    trial: z.number().int(),
    data: z.record(z.string(), z.unknown()),
  }),
  /** the probe's session opened (first time, or again after a reconnect) */
  z.object({ type: z.literal('session-open'), ...probeRef, reconnect: z.boolean(), message: z.string().optional() }),
  /** the session was lost: the application saw an error/close */
  z.object({ type: z.literal('session-lost'), ...probeRef, message: z.string(), code: z.string().optional() }),
  /** one good sample: the application got what it asked for */
  z.object({
    type: z.literal('sample'),
    ...probeRef,
    /** request/response latency in ms, when the probe has one */
    latencyMs: z.number().optional(),
    seq: z.number().optional(),
    /**
     * icmp: ms from the previous request's send to this one's, answered or
     * not (the socket sender knows it; ping does not say): the first reply
     * after a cut places the restore within this step
     */
    sendStepMs: z.number().optional(),
    /** extra numbers, e.g. bytes transferred so far */
    value: z.number().optional(),
    /** how late the request went out against the probe's schedule (harness-side jitter), ms */
    lateMs: z.number().optional(),
  }),
  /** an error the application saw (fatal: the operation, not only a sample, failed) */
  z.object({
    type: z.literal('probe-error'),
    ...probeRef,
    message: z.string(),
    code: z.string().optional(),
    /** true when it ended the session or reached the application as a failure */
    fatal: z.boolean(),
  }),
  /** a check after the fact: lost writes, checksum, same boot id */
  z.object({
    type: z.literal('verify'),
    ...probeRef,
    ok: z.boolean(),
    message: z.string(),
    data: z.record(z.string(), z.unknown()).optional(),
  }),
  z.object({ type: z.literal('probe-note'), ...probeRef, message: z.string(), data: z.record(z.string(), z.unknown()).optional() }),
  z.object({
    type: z.literal('attachment'),
    ...base,
    trial: z.number().int().optional(),
    probe: z.string().optional(),
    name: z.string(),
    /** relative to the run folder */
    path: z.string(),
    contentType: z.string(),
  }),
  z.object({ type: z.literal('trial-end'), ...base, trial: z.number().int() }),
  z.object({
    type: z.literal('run-end'),
    ...base,
    exitCode: z.number().int(),
    reason: z.string(),
  }),
]);

export type BlackoutEvent = z.infer<typeof EventSchema>;
export type EventType = BlackoutEvent['type'];
export type EventOf<K extends EventType> = Extract<BlackoutEvent, { type: K }>;
