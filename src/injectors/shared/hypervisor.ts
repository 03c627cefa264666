/**
 * The engine behind the hypervisor adapters (libvirt, hyperv, vsphere,
 * proxmox): each adapter describes its mode as a plan of commands, and this
 * turns the plan into an Injector with the same guarantees everywhere:
 *
 *  - timed modes (save, pause, virtual cable): watchdog armed first, then the
 *    cut commands; restore retried, then the watchdog disarmed; a failed cut is
 *    restored by the runner (restore() knows how far the cut got);
 *  - self-timed modes (migrations): cut() starts the migration command and
 *    returns, restore() waits for it (bounded by `migrationTimeout`; on expiry
 *    the plan's abort command runs); the injected window is the command's run,
 *    an upper bound of the real pause that the probes measure;
 *  - heal(): the plan's "make it normal again" script, whose `healed: …`
 *    output lines are what it did.
 */
import { sleep } from '../../core/clock.ts';
import type { MigrationKind } from '../../core/events.ts';
import { type Command, type ExecResult, type Executor, psQuote } from '../../transport/ssh-exec.ts';
import { describeSsh, disarmPosixWatchdog, executorFor, forgetWatchdog, orphanedWatchdogs, recordWatchdog, type SshConfig, timed, type Watchdog } from './remote.ts';
import type { CutInstant, Injector, InjectorContext, Instant } from '../../core/injector.ts';

export interface Step {
  label: string;
  cmd: Command;
  /** in a restore: this step's return is the restore instant (default: the last step) */
  instant?: boolean;
}

export interface TimedPlan {
  selfTimed?: false;
  /** the first is the instant of the cut; the others follow within cut() (e.g. a save after the pause) */
  cut: Step[];
  /**
   * how to undo a cut of which `started` steps were started and `completed`
   * returned successfully (a step that failed or timed out may still have taken
   * effect: undo it idempotently)
   */
  restore(started: number, completed: number): Step[];
  /** the watchdog, armed before the cut with the deadline delay */
  watchdog(ex: Executor, delayMs: number): Promise<Watchdog>;
  /** the hypervisor's own record of when the guest stopped and ran again, where it keeps one */
  events?: GuestEvents;
}

/**
 * A call returns some time after it took effect, and under load that time is
 * long: `virsh restore` once returned 1.0 s after the guest ran again (the
 * held ping replies said so). Where the hypervisor announces its guests'
 * state changes (libvirt's lifecycle events), a listener started before the
 * cut hears the instants themselves. They are read together with the
 * hypervisor's wall clock, so its clock never has to agree with ours: an
 * instant is placed on the run clock by its distance from that "now".
 */
export interface GuestEvents {
  /** starts a listener that ends itself after `lifetimeS`; prints one line, its handle, once it listens */
  start(lifetimeS: number): Step;
  /** prints what the listener heard so far, then the hypervisor's wall clock */
  read(handle: string): Step;
  /** ends the listener and removes what it kept */
  stop(handle: string): Step;
  /** what read printed: each state change on the hypervisor's wall clock (epoch ms), and its "now" */
  parse(stdout: string): { changes: Array<{ wallMs: number; running: boolean }>; nowWallMs: number } | null;
}

export interface MigrationPlan {
  selfTimed: true;
  migrate: Step;
  /** run when the migration outlives migrationTimeout */
  abort?: Step;
  migrationTimeoutMs: number;
}

export interface HypervisorSpec {
  kind: string;
  mode: string;
  /** what the mode is: the adapter's own table of its modes says */
  migration: MigrationKind;
  ssh: SshConfig | undefined;
  timeoutMs: number;
  graceMs: number;
  describe: Record<string, unknown>;
  /** a migration: the plan() is a MigrationPlan */
  selfTimed: boolean;
  /** read-only checks; each must exit 0 (its stdout may be checked by `expect`) */
  preflight: Array<Step & { expect?: RegExp; hint?: string }>;
  /** learns facts before the plan is built (e.g. the NIC's switch); runs after preflight */
  prepare?(ex: Executor): Promise<void>;
  plan(): TimedPlan | MigrationPlan;
  /** idempotent "make it normal" command; prints `healed: …` lines for what it changed */
  heal?: Step;
}

const RESTORE_TRIES = 3;

/**
 * Where a call's effect lies within [call.before, call.t]: the first state
 * change of the wanted kind the listener heard from the call's start on,
 * placed on the run clock by its distance from the hypervisor's "now" (read
 * at the midpoint of the read; its half-length plus the timestamps' 1 ms is
 * the slack). Null when none was heard.
 */
export function heardInstant(heard: ReturnType<GuestEvents['parse']>, read: { before: number; t: number }, call: { before: number; t: number }, running: boolean): number | null {
  if (!heard) return null;
  const mid = (read.before + read.t) / 2;
  const slack = (read.t - read.before) / 2 + 1;
  const at = heard.changes
    .filter((c) => c.running === running)
    .map((c) => mid - (heard.nowWallMs - c.wallMs))
    .find((t) => t >= call.before - slack);
  // heard after the call returned (a late listener): the return bounds it
  return at === undefined ? null : Math.min(Math.max(at, call.before), call.t);
}

export function hypervisorInjector(spec: HypervisorSpec, ctx: InjectorContext): Injector {
  let ex: Executor | null = null;
  const get = () => (ex ??= executorFor(ctx, spec.ssh));
  const run = (s: Step, opts: { timeoutMs?: number; allowFail?: boolean } = {}): Promise<ExecResult> =>
    get().exec(s.cmd, { timeoutMs: opts.timeoutMs ?? spec.timeoutMs, label: s.label, allowFail: opts.allowFail });
  let plan: TimedPlan | MigrationPlan | null = null;
  const getPlan = () => (plan ??= spec.plan());

  // state of the current trial
  let started = 0;
  let completed = 0;
  let dog: Watchdog | null = null;
  let active = false;
  let migration: { start: number; promise: Promise<{ t: number; result: ExecResult | null; error: Error | null }> } | null = null;
  // the handle of this trial's state-change listener (TimedPlan.events)
  let listener: string | null = null;
  const stopListening = async (events: GuestEvents | undefined) => {
    if (!events || listener === null) return;
    const h = listener;
    listener = null;
    await run(events.stop(h), { allowFail: true }).catch((e: Error) => ctx.log(`could not end the state-change listener (${e.message}); it ends itself`));
  };
  /**
   * A call's effect, placed at the state change the listener heard for it (`detail` says which source gave
   * the instant, and how long after it the call returned); the call as it was when nothing was heard.
   */
  const settle = async <T extends { before: number; t: number }>(events: GuestEvents | undefined, call: T, running: boolean, detail: Record<string, unknown>): Promise<T> => {
    if (!events) return call;
    let at: number | null = null;
    if (listener !== null) {
      try {
        const step = events.read(listener);
        const r = await timed(get(), ctx.clock, step.cmd, { timeoutMs: spec.timeoutMs, label: step.label });
        at = heardInstant(events.parse(r.result.stdout), r, call, running);
      } catch (e) {
        ctx.log(`could not read the state-change listener (${(e as Error).message}); the call's return is the instant`);
      }
    }
    detail.instantFrom = at === null ? 'call return' : 'state-change event';
    if (at === null) return call;
    detail.callReturnedAfterMs = call.t - at;
    return { ...call, t: at };
  };
  // the journal of armed watchdogs is per target: this adapter, where it runs, and what it acts on
  const journalKey = () => `${spec.kind} ${get().where} ${JSON.stringify(spec.describe)}`;
  const disarm = async (d: Watchdog) => {
    await d.disarm().catch((e: Error) => ctx.log(`could not disarm the watchdog (${e.message}); it restores again at its deadline`));
    if (!get().isDryRun) forgetWatchdog(journalKey(), d.id);
  };

  return {
    kind: spec.kind,
    migration: spec.migration,
    dryRunCapable: true,
    selfTimed: spec.selfTimed,
    // a migration lasts what it lasts: one trial when the suite gives no lengths
    defaultBlackoutsMs: spec.selfTimed ? [0] : undefined,
    describe: () => ({ kind: spec.kind, mode: spec.mode, ...describeSsh(spec.ssh), ...spec.describe }),
    async preflight() {
      for (const p of spec.preflight) {
        const r = await run(p);
        if (!r.dryRun && p.expect && !p.expect.test(r.stdout)) {
          throw new Error(`${spec.kind} preflight (${p.label}) on ${get().where}: ${p.hint ?? `unexpected answer`}: ${r.stdout.trim().slice(0, 300) || '(no output)'}`);
        }
      }
      await spec.prepare?.(get());
      getPlan();
    },
    async heal() {
      const lines: string[] = [];
      // first end the watchdogs a dead run left armed: else one fires inside this run's trial
      if (!get().isDryRun) {
        for (const o of orphanedWatchdogs(journalKey())) {
          const ended = o.id.startsWith('blackout-restore-')
            ? (
                await get().exec(
                  { powershell: `Unregister-ScheduledTask -TaskName ${psQuote(o.id)} -Confirm:$false -ErrorAction SilentlyContinue` },
                  { timeoutMs: spec.timeoutMs, allowFail: true, label: "heal: end a dead run's watchdog" },
                )
              ).code === 0
            : await disarmPosixWatchdog(get(), o.id, spec.timeoutMs);
          forgetWatchdog(journalKey(), o.id);
          lines.push(`${ended ? 'ended' : 'found already gone'} the watchdog ${o.mechanism} armed by a dead run (${o.runDir})`);
        }
      }
      if (!spec.heal) return lines;
      const r = await run(spec.heal, { allowFail: true, timeoutMs: Math.max(spec.timeoutMs, 120_000) });
      lines.push(
        ...r.stdout
          .split('\n')
          .filter((l) => l.startsWith('healed: '))
          .map((l) => `${l.slice(8)} (${get().where})`),
      );
      if (r.code !== 0 && !r.dryRun) lines.push(`heal on ${get().where} exited ${r.code}: ${(r.stderr.trim() || r.stdout.trim()).slice(0, 300)}`);
      return lines;
    },
    async cut(requestedMs): Promise<CutInstant> {
      const p = getPlan();
      const clock = ctx.clock;
      started = 0;
      completed = 0;
      if (p.selfTimed) {
        const start = clock.now();
        active = true;
        const promise = get()
          .exec(p.migrate.cmd, { timeoutMs: p.migrationTimeoutMs, label: p.migrate.label })
          .then(
            (result) => ({ t: clock.now(), result, error: null }),
            (error: Error) => ({ t: clock.now(), result: null, error }),
          );
        migration = { start, promise };
        return {
          before: start,
          t: start,
          deadline: start + p.migrationTimeoutMs,
          detail: { mechanism: `${spec.kind} ${spec.mode} on ${get().where}`, selfTimed: 'the migration command runs from cut to restore; the real pause lies inside and is what the probes measure' },
        };
      }
      // the watchdog is armed before the cut (a kill -9 during a slow cut step is covered too) and fires only
      // after every cut step could have run to its timeout, plus the requested length and the grace: it never
      // tries to restore while a Save-VM or a hibernate is still under way
      const cutBudgetMs = p.cut.length * spec.timeoutMs;
      if (p.events) {
        await stopListening(p.events);
        // it outlives the trial's every step and retry, then ends itself (a kill -9 of the harness leaves it that long)
        const lifetimeS = Math.ceil((requestedMs + spec.graceMs + cutBudgetMs + RESTORE_TRIES * 4 * spec.timeoutMs) / 1000) + 60;
        try {
          const h = (await run(p.events.start(lifetimeS))).stdout.trim();
          listener = h || null;
        } catch (e) {
          ctx.log(`could not start listening for the guest's state changes (${(e as Error).message}); the calls' returns are the instants`);
        }
      }
      const arm = async (delayMs: number) => {
        const d = await p.watchdog(get(), delayMs);
        if (!get().isDryRun) recordWatchdog(journalKey(), { id: d.id, mechanism: d.mechanism, pid: process.pid, runDir: ctx.runDir, armedAtWallMs: Date.now() });
        return d;
      };
      dog = await arm(requestedMs + spec.graceMs + cutBudgetMs);
      active = true;
      const detail: Record<string, unknown> = { mechanism: `${spec.kind} ${spec.mode} on ${get().where}`, watchdog: dog.id, watchdogMechanism: dog.mechanism, watchdogCoversCutStepsMs: cutBudgetMs };
      let first: { before: number; t: number } | null = null;
      for (const step of p.cut) {
        started++;
        const r = await timed(get(), clock, step.cmd, { timeoutMs: spec.timeoutMs, label: step.label });
        completed++;
        detail[`${step.label}Ms`] = r.t - r.before;
        first ??= { before: r.before, t: r.t };
      }
      first = await settle(p.events, first!, false, detail);
      // the cut took effect: re-arm for the requested length + grace from now, then end the early watchdog
      // (if the re-arm fails, the early one stays: later, but still a restore)
      try {
        const tight = await arm(Math.max(0, first!.t + requestedMs - clock.now()) + spec.graceMs);
        const early = dog;
        dog = tight;
        await disarm(early);
        detail.watchdog = tight.id;
        detail.watchdogMechanism = tight.mechanism;
        detail.watchdogRearmedAfterCut = true;
      } catch (e) {
        ctx.log(`could not re-arm the watchdog after the cut (${(e as Error).message}); the one armed before it restores at its later deadline`);
      }
      return { before: first!.before, t: first!.t, deadline: dog.firesAt, detail };
    },
    async restore(reason): Promise<Instant> {
      const p = getPlan();
      const clock = ctx.clock;
      if (p.selfTimed) {
        if (!migration) {
          const now = clock.now();
          return { before: now, t: now, detail: { nothingToRestore: true } };
        }
        const m = migration;
        migration = null;
        active = false;
        const out = await m.promise;
        if (out.error) {
          const timedOut = (out.error as { timedOut?: boolean }).timedOut === true;
          if (timedOut && p.abort) await run(p.abort, { allowFail: true }).catch(() => {});
          throw new Error(`${spec.kind} ${spec.mode} failed after ${(out.t - m.start).toFixed(0)} ms: ${out.error.message}${timedOut && p.abort ? ' (aborted)' : ''}`);
        }
        return { before: m.start, t: out.t, detail: { migrationMs: out.t - m.start, output: out.result?.stdout.trim().slice(-500) } };
      }
      if (!active) {
        const now = clock.now();
        return { before: now, t: now, detail: { nothingToRestore: true } };
      }
      const steps = p.restore(started, completed);
      let last: Error | null = null;
      // the watchdog's deadline passed before the harness got here: it restored first, at its deadline
      const watchdogFired = dog !== null && clock.now() >= dog.firesAt;
      for (let i = 1; i <= RESTORE_TRIES; i++) {
        try {
          let instant: { before: number; t: number; fixed: boolean } | null = null;
          const detail: Record<string, unknown> = { attempts: i, reason, ...(watchdogFired ? { watchdogFired } : {}) };
          for (const step of steps) {
            const r = await timed(get(), clock, step.cmd, { timeoutMs: spec.timeoutMs, label: step.label });
            detail[`${step.label}Ms`] = r.t - r.before;
            if (!instant?.fixed) instant = { before: r.before, t: r.t, fixed: step.instant === true };
          }
          if (instant) instant = await settle(p.events, instant, true, detail);
          await stopListening(p.events);
          active = false;
          if (dog) {
            const d = dog;
            dog = null;
            await disarm(d);
          }
          const now = clock.now();
          return { before: instant?.before ?? now, t: instant?.t ?? now, detail };
        } catch (e) {
          last = e as Error;
          ctx.log(`${spec.kind}: restore attempt ${i} failed: ${last.message}`);
          if (i < RESTORE_TRIES) await sleep(1000 * i);
        }
      }
      throw new Error(`${spec.kind}: restore failed ${RESTORE_TRIES} times (${last?.message}); the watchdog on ${get().where} restores at its deadline`);
    },
    async dispose() {
      if (plan && !plan.selfTimed) await stopListening(plan.events);
      await ex?.close();
    },
  };
}
