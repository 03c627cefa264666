/**
 * The runner: one execution of a suite.
 *
 *   preflight (target up, injector can act, stale faults healed)
 *   for each blackout length — a trial:
 *     open every probe's session → warm-up (steady state) → cut → wait →
 *     restore (always: finally, signals, errors; kill -9 is covered by the
 *     injector's kernel timeout / watchdog) → recovery watch → close sessions
 *   run-end, analysis, reports
 *
 * One writer appends every fact to events.jsonl as it happens. Exit codes:
 * 0 every expectation held, 1 one did not, 2 bad input or preflight failure
 * (nothing injected; also: another run holds the target or lab), 3 the
 * injector failed mid-run (a cut or restore command failed) and the target
 * was restored, 4 the injector failed and the restore failed too (the target
 * is restored by the kernel timeout / watchdog at its deadline at the
 * latest), 5 the lab's safety net (its guards or blackhole routes) vanished
 * mid-run and the run stopped (the target restored), 130 after Ctrl-C (the
 * target restored first). Whatever happens, the run ends with run-end and
 * its reports.
 *
 * Leases (transport/lease.ts, lab/lease.ts): a run holds its target's (or lab's) lease
 * exclusively from before the heal to the end, so two runs never flush each
 * other's cut or thaw each other's freeze; and the machine-wide send lease,
 * shared and inherited by every process it spawns, so the lab's shared guard
 * stays while any of them could still send to the lab range.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { setMaxListeners } from 'node:events';
import { setImmediate } from 'node:timers/promises';
import { hostname } from 'node:os';
import { join, relative } from 'node:path';
import { createClock, sleep, sleepUntil, type Clock } from '../core/clock.ts';
import { EventLog } from '../core/event-log.ts';
import { EVENT_SCHEMA_VERSION, type BlackoutEvent, type ProbeInfo } from '../core/events.ts';
import { resolveTarget, leaseTargetOf, PreflightError } from './resolve-target.ts';
import { labHealth } from '../lab/lab.ts';
import { labStateOf } from '../lab/state.ts';
import { acquireLabLease, holdSendLease, releaseSendLease } from '../lab/lease.ts';
import { LeaseBusyError, acquireLease, describeHolder, targetLeasePath, writeHolder, type Lease } from '../transport/lease.ts';
import type { Suite } from './suite.ts';
import type { ResolvedTarget } from '../core/target.ts';
import { probeDefinition } from '../probes/index.ts';
import type { Probe, ProbeConfigBase, ProbeContext, ProbeEvent } from '../core/probe.ts';
import { injectorDefinition } from '../injectors/index.ts';
import type { CutInstant, Injector } from '../core/injector.ts';
import { redactConfig } from '../core/secrets.ts';
import { AnalysisBuilder } from '../analysis/analysis.ts';
import { createPlanner, type PlannedTrial, type Sweep } from '../analysis/search.ts';
import { VERSION } from '../core/version.ts';
import { installCrashGuards, probeScope } from './containment.ts';
import { LiveState } from '../core/live-state.ts';

import { EXIT } from './exit-codes.ts';
import { fileNamePart } from '../core/format.ts';

export { EXIT };

/** how much longer than the warm-up a session that is quiet (not lost) at its end may take to answer */
const WARMUP_GRACE_MS = 1000;
/**
 * After the warm-up the cut waits a random time up to the longest probe interval, at most this long,
 * so it falls at a random phase of every probe's sends (of every probe at up to 100 ms), as a real
 * failure does. Without it the cut came at the same phase trial after trial: the trial before ended
 * on a probe's sample, and the cooldown and warm-up that followed were whole periods long, so the
 * icmp probe at 10 ms saw 7 of 8 cuts 1.2-1.7 ms after one of its sends, and its error was about
 * -3.7 ms each time instead of spread over ±5 ms around 0.
 */
const CUT_PHASE_MAX_MS = 100;

/** The injector failed mid-run: the run stops after this trial and says whether the target was restored. */
export class InjectorFailure extends Error {
  constructor(
    message: string,
    readonly restored: boolean,
  ) {
    super(message);
  }
}

export interface RunOptions {
  outDir: string;
  /** lab name override for `target: lab` */
  lab?: string;
  /** aborting it is Ctrl-C: restore, write what completed, exit 130 */
  signal?: AbortSignal;
  /** terminal progress */
  log?: (line: string) => void;
  /** subscribers to the event stream (live view, store); `line` is the event as written to events.jsonl */
  onEvent?: (e: BlackoutEvent, line?: string) => void;
  /** an externally shared clock (tests) */
  clock?: Clock;
  /** how long to wait for another run that holds the same target or lab (default 0: refuse at once) */
  leaseWaitMs?: number;
  /**
   * Runs only the planned trials this accepts (by their position in the sweep's plan): a static
   * shard's share, or what a retried campaign job has still to do. Trials keep their planned
   * position as their number, so the shards' run folders merge into the unsharded matrix.
   * List sweeps only (an adaptive search's next length depends on every earlier outcome).
   */
  only?: (plannedIndex: number) => boolean;
  /** aborting it drains: the current trial finishes (and restores) as planned, no further trial starts */
  drain?: AbortSignal;
  /** recorded in run-start: which shard of a sweep, which campaign job */
  shard?: { index: number; total: number };
  job?: { campaign: string; id: string; attempt: number; target: string; worker: string };
}

export interface RunResult {
  exitCode: number;
  outDir: string;
  eventsPath: string;
  reason: string;
}

export async function runSuite(suite: Suite, opts: RunOptions): Promise<RunResult> {
  const held: { send: Lease | null; target: Lease | null } = { send: null, target: null };
  try {
    return await runSuiteLeased(suite, opts, held);
  } finally {
    // whatever happened (an exception included): a lease never outlives the run in this process
    held.target?.release();
    releaseSendLease(held.send);
  }
}

/** Takes the target's (or lab's) lease for this run; throws LeaseBusyError naming the holder. */
async function takeTargetLease(suite: Suite, opts: RunOptions): Promise<Lease> {
  const what = `run of suite "${suite.name}", out dir ${opts.outDir}`;
  const hint = ": two runs on one target would undo each other's blackout; wait for that run to finish, or give `--wait SECONDS`";
  const t = leaseTargetOf(suite.target, { lab: opts.lab });
  if (t.scope === 'lab') return acquireLabLease(t.name, what, opts.leaseWaitMs ?? 0, hint);
  const path = targetLeasePath(t.host);
  const lease = await acquireLease(path, 'exclusive', opts.leaseWaitMs ?? 0, opts.signal);
  if (!lease) {
    const h = describeHolder(path);
    throw new LeaseBusyError(`target "${t.host}" is in use by ${h.text}${hint}`, h.holder);
  }
  writeHolder(lease, what);
  return lease;
}

async function runSuiteLeased(suite: Suite, opts: RunOptions, held: { send: Lease | null; target: Lease | null }): Promise<RunResult> {
  const log = opts.log ?? (() => {});
  const clock = opts.clock ?? createClock();
  mkdirSync(opts.outDir, { recursive: true });
  const eventsPath = join(opts.outDir, 'events.jsonl');
  const events = new EventLog(eventsPath);
  // the analysis folds every event as it is written: the search planner reads each finished trial from it
  const analysis = new AnalysisBuilder();
  events.subscribe((e) => analysis.add(e));
  // each session's live state, folded from the same stream (the warm-up check and the recovery watch read it)
  const live = new LiveState();
  events.subscribe((e) => live.add(e));
  if (opts.onEvent) events.subscribe(opts.onEvent);
  const emit = (e: BlackoutEvent) => events.append(e);
  const signal = opts.signal ?? new AbortController().signal;
  let injector: Injector | null = null;
  let target: ResolvedTarget | null = null;

  const probeInfos: ProbeInfo[] = suite.probes.map((p) => ({
    name: p.name,
    kind: p.kind,
    intervalMs: p.interval,
    toleranceMs: p.tolerance,
    policy: probeDefinition(p.kind)!.policy(p),
    facts: probeDefinition(p.kind)!.facts(p),
  }));
  const finish = (exitCode: number, reason: string): RunResult => {
    emit({ type: 'run-end', t: clock.now(), exitCode, reason });
    events.close();
    return { exitCode, outDir: opts.outDir, eventsPath, reason };
  };

  let preflightError: string | null = null;
  try {
    // before anything can send to the target (the probes' children inherit it)
    held.send = await holdSendLease();
    // before the heal: it undoes another run's blackout if two runs shared the target
    held.target = await takeTargetLease(suite, opts);
    target = await resolveTarget(suite.target, { lab: opts.lab });
    const def = injectorDefinition(suite.injector.kind)!;
    injector = def.create(suite.injector, {
      target,
      clock,
      runDir: opts.outDir,
      log,
      info: (data) => emit({ type: 'injector-info', t: clock.now(), trial: currentTrial, data }),
      subscribe: (listener) => events.subscribe(listener),
    });
    await injector.preflight();
  } catch (e) {
    preflightError = (e as Error).message;
  }
  emit({
    type: 'run-start',
    t: clock.now(),
    schema: EVENT_SCHEMA_VERSION,
    runId: `${new Date(clock.originWallMs).toISOString().replace(/[:.]/g, '-')}-${process.pid}`,
    suite: suite.name,
    config: redactConfig(suite),
    wallMs: clock.originWallMs,
    host: hostname(),
    target: { name: target?.name ?? '(unresolved)', address: target?.address ?? '' },
    injector: { kind: suite.injector.kind, ...(injector?.describe() ?? {}), migration: injector?.migration ?? 'none' },
    probes: probeInfos,
    version: VERSION,
    ...(opts.shard ? { shard: opts.shard } : {}),
    ...(opts.job ? { job: opts.job } : {}),
  });
  if (preflightError || !injector || !target) {
    emit({ type: 'preflight', t: clock.now(), ok: false, message: preflightError ?? 'preflight failed' });
    log(`preflight failed: ${preflightError}`);
    return finish(EXIT.badInput, `preflight: ${preflightError}`);
  }

  // heal what a dead run may have left, and log it
  const healed = await injector.heal().catch((e: Error) => [`heal failed: ${e.message}`]);
  if (healed.length) {
    emit({ type: 'heal', t: clock.now(), actions: healed });
    for (const h of healed) log(`healed: ${h}`);
  }

  // how lengths are chosen: the suite's sweep (a list, or an adaptive search), else the injector's default
  const sweep: Sweep | null =
    suite.sweep ??
    (suite.blackouts?.length ? { mode: 'list', lengths: suite.blackouts, repeat: 1 } : injector.defaultBlackoutsMs?.length ? { mode: 'list', lengths: injector.defaultBlackoutsMs, repeat: 1 } : null);
  if (!sweep) {
    emit({ type: 'preflight', t: clock.now(), ok: false, message: 'blackouts: no blackout lengths given' });
    return finish(EXIT.badInput, 'no blackout lengths');
  }
  if (opts.only && sweep.mode === 'search') {
    emit({ type: 'preflight', t: clock.now(), ok: false, message: 'sweep: an adaptive search cannot be split into shards or resumed; use a list of blackouts' });
    return finish(EXIT.badInput, 'search sweep with a trial subset');
  }
  const planner = createPlanner(
    sweep,
    suite.probes.map((p) => p.name),
  );
  const total = planner.plannedTrials;

  let currentTrial = -1;
  let interrupted = false;
  let unsafe: string | null = null;
  let drained = false;
  let failure: InjectorFailure | null = null;
  // an exception no probe owns is a harness bug: record it, keep going, restore as always
  const uninstallGuards = installCrashGuards((err) => log(`internal error (the run continues): ${(err as Error)?.stack ?? String(err)}`));
  const onAbort = () => (interrupted = true);
  signal.addEventListener('abort', onAbort, { once: true });

  try {
    for (let k = 0, ran = 0; ; k++) {
      if (interrupted) break;
      if (opts.drain?.aborted) {
        drained = true;
        break;
      }
      const step = planner.next();
      if (!step) break;
      // another shard's trial, or one an earlier attempt of this job already finished
      if (opts.only && !opts.only(k)) continue;
      const i = opts.only ? k : ran;
      if (ran > 0 && suite.cooldown > 0) await sleep(suite.cooldown, signal).catch(() => {});
      if (interrupted) break;
      // the lab's safety net is checked again before every trial after the first (resolveTarget checked
      // it before the first): a guard or a blackhole route that vanished (a forced `lab down`, a foreign
      // tool) stops the run here, with the target restored by the trial that just ended
      if (i > 0 && target.lab) {
        const health = await labHealth(labStateOf(target.lab));
        if (!health.up) {
          unsafe = `lab "${target.lab.name}" is no longer safe to use (${health.problems.join('; ')}); the run stopped before trial ${i + 1}, the target was restored`;
          emit({ type: 'preflight', t: clock.now(), ok: false, message: unsafe });
          log(unsafe);
          break;
        }
      }
      currentTrial = i;
      let outcome: Awaited<ReturnType<typeof runTrial>>;
      try {
        outcome = await runTrial(i, step, ran === 0);
      } catch (e) {
        // an injector that failed mid-run ends the run, recorded and reported like any other
        if (!(e instanceof InjectorFailure)) throw e;
        failure = e;
        break;
      }
      ran++;
      if (outcome === 'preflight-failed') return finish(EXIT.badInput, `preflight: ${preflightError}`);
      // the planner sees the finished trial's analysis (folded from the events as they were written)
      const result = analysis.trial(i);
      planner.observe({
        index: i,
        requestedMs: step.lengthMs,
        outcomes: result ? Object.fromEntries(Object.entries(result.probes).map(([n, r]) => [n, r.outcome])) : {},
      });
    }
    const why = planner.stopReason();
    if (why && sweep.mode === 'search') log(`search done: ${why}`);
  } finally {
    signal.removeEventListener('abort', onAbort);
    await injector.dispose?.().catch(() => {});
    uninstallGuards();
  }
  if (failure) {
    log(failure.message);
    return failure.restored
      ? finish(EXIT.injectorFailed, `the injector failed; the target was restored: ${failure.message}`)
      : finish(EXIT.restoreFailed, `the injector failed and so did the restore; the target is restored by its kernel timeout / watchdog at the deadline at the latest: ${failure.message}`);
  }
  if (interrupted) return finish(EXIT.interrupted, 'interrupted (Ctrl-C / SIGTERM); the target was restored');
  if (unsafe) return finish(EXIT.labUnsafe, unsafe);
  if (drained) return finish(EXIT.interrupted, 'drained: the trial under way finished and restored; the rest was left to another run');
  // expectations are judged by the analysis from the events; the runner only reports completion
  return finish(EXIT.ok, 'completed');

  /**
   * One trial, as named phases: open the probes' sessions → warm up (steady
   * state, else a preflight failure) → cut → blackout (the requested length)
   * → restore → recovery watch → drain (close every session). Each phase is
   * a function below; the run's live state (core/live-state.ts, folded from
   * the same events the log records) tells them how each session is.
   */
  async function runTrial(index: number, step: PlannedTrial, first: boolean): Promise<'ok' | 'preflight-failed' | 'skipped'> {
    const trial = beginTrial(index, step);
    try {
      const opened = await openProbes(trial, first);
      if (opened !== 'ok') return opened;
      const warm = await warmUp(trial, first);
      if (warm !== 'ok') return warm;
      const cut = await cutPhase(trial);
      const reason = await blackoutPhase(trial, cut);
      const restoredAt = await restorePhase(trial, cut, reason);
      if (interrupted) return 'ok';
      await recoveryWatch(trial, restoredAt);
      return 'ok';
    } finally {
      await drain(trial);
    }
  }

  interface Trial {
    index: number;
    requestedMs: number;
    /** aborted when the trial's sessions must stop (drain, Ctrl-C) */
    abort: AbortController;
    stopProbes: () => void;
    running: Array<{ cfg: ProbeConfigBase; probe: Probe }>;
  }

  function beginTrial(index: number, step: PlannedTrial): Trial {
    const requestedMs = step.lengthMs;
    emit({ type: 'trial-start', t: clock.now(), trial: index, requestedMs, reason: step.reason, ...(step.plan ? { plan: step.plan } : {}) });
    log(`trial ${index + 1}${total ? `/${total}` : ''}: ${requestedMs} ms blackout — ${step.reason}`);
    const abort = new AbortController();
    // every probe (hundreds in a load test) listens on the one trial signal: that is by design, not a leak
    setMaxListeners(0, abort.signal);
    const stopProbes = () => abort.abort(new Error('trial over'));
    signal.addEventListener('abort', stopProbes, { once: true });
    return { index, requestedMs, abort, stopProbes, running: [] };
  }

  /** a preflight problem: the first trial fails the run (nothing injected), a later one is skipped */
  function notReady(trial: Trial, first: boolean, message: string): 'preflight-failed' | 'skipped' {
    if (first) {
      preflightError = message;
      log(`preflight failed: ${message}`);
      return 'preflight-failed';
    }
    log(`trial ${trial.index + 1}: ${message}; skipping its blackout`);
    return 'skipped';
  }

  /** phase 1: every probe opens its session (each inside its containment scope) */
  async function openProbes(trial: Trial, first: boolean): Promise<'ok' | 'preflight-failed' | 'skipped'> {
    const { index } = trial;
    emit({ type: 'phase', t: clock.now(), trial: index, phase: 'open' });
    const opened = await Promise.allSettled(
      suite.probes.map(async (cfg) => {
        const def = probeDefinition(cfg.kind)!;
        // each probe its own signal, following the trial's: every session adds and removes a listener
        // at each tick, and on one shared signal each add walked the thousands already there (3.9 s of
        // the main thread's 13 s of CPU at 2 000 sessions)
        const probeAbort = new AbortController();
        setMaxListeners(0, probeAbort.signal);
        const stop = () => probeAbort.abort(trial.abort.signal.reason);
        if (trial.abort.signal.aborted) stop();
        else trial.abort.signal.addEventListener('abort', stop, { once: true });
        const ctx: ProbeContext = {
          name: cfg.name,
          trial: index,
          clock,
          target: target!,
          runDir: opts.outDir,
          signal: probeAbort.signal,
          // completes the probe's own object instead of copying it: at 2 000 sessions the copy was ~4 % of
          // the main thread in a CPU profile (the keys come out in the same order either way)
          emit: (e: ProbeEvent) => {
            const ev = e as ProbeEvent & { t: number; probe: string; trial: number };
            if (ev.t === undefined) ev.t = clock.now();
            ev.probe = cfg.name;
            ev.trial = index;
            emit(ev as BlackoutEvent);
          },
          attach: (name, data, contentType) => {
            const dir = join(opts.outDir, 'attachments');
            mkdirSync(dir, { recursive: true });
            const file = join(dir, fileNamePart(`t${index}-${cfg.name}-${name}`));
            writeFileSync(file, data);
            const rel = relative(opts.outDir, file);
            emit({ type: 'attachment', t: clock.now(), trial: index, probe: cfg.name, name, path: rel, contentType });
            return rel;
          },
        };
        let crashed = false;
        const scope = {
          probe: cfg.name,
          trial: index,
          onCrash: (err: unknown) => {
            if (crashed) return;
            crashed = true;
            const message = `the probe crashed: ${(err as Error)?.message ?? String(err)}`;
            ctx.emit({ type: 'probe-error', message, fatal: true });
            ctx.emit({ type: 'session-lost', message });
            // stop it (bounded); it will not be asked again in this trial
            void withTimeout(probe.close(), 5000, 'close after crash').catch(() => {});
          },
        };
        const probe = probeScope.run(scope, () => def.create(cfg, ctx));
        trial.running.push({ cfg, probe });
        await withTimeout(
          probeScope.run(scope, () => probe.open()),
          30_000,
          `${cfg.name}: opening the session took longer than 30 s`,
        );
      }),
    );
    const failures = opened.flatMap((r, i) => (r.status === 'rejected' ? [`${suite.probes[i]!.name}: ${(r.reason as Error).message}`] : []));
    if (!failures.length) return 'ok';
    for (const f of failures) emit({ type: 'preflight', t: clock.now(), ok: false, probe: f.split(':')[0], message: f });
    return first ? notReady(trial, first, failures.join('; ')) : notReady(trial, first, `could not open ${failures.join('; ')}`);
  }

  /** phase 2: warm-up; every session must be steady before anything is cut */
  async function warmUp(trial: Trial, first: boolean): Promise<'ok' | 'preflight-failed' | 'skipped'> {
    emit({ type: 'phase', t: clock.now(), trial: trial.index, phase: 'warmup' });
    await sleep(suite.warmup, signal).catch(() => {});
    if (interrupted) return 'skipped';
    const unsteadyNow = () => {
      const now = clock.now();
      return suite.probes.filter((cfg) => {
        const st = live.sessions.get(cfg.name);
        return !st || st.lost !== null || st.lastOkAt === null || now - st.lastOkAt > Math.max(cfg.interval + cfg.tolerance, suite.warmup);
      });
    };
    // what has already arrived is read first: after the harness was busy or starved of CPU, the
    // warm-up's timer runs before the I/O that waited beside it, and a sample read late is not a
    // session gone quiet
    await setImmediate();
    let unsteady = unsteadyNow();
    // sessions that are quiet (not lost) just at the end of the warm-up get up to 1 s more to answer:
    // on a loaded machine a client (ping, a query) can miss a beat; one that stays quiet still fails
    for (const until = clock.now() + WARMUP_GRACE_MS; unsteady.length && clock.now() < until && !interrupted;) {
      if (unsteady.some((c) => live.sessions.get(c.name)?.lost != null)) break;
      await sleep(50, signal).catch(() => {});
      unsteady = unsteadyNow();
    }
    if (interrupted) return 'skipped';
    if (unsteady.length) {
      const msg = unsteady.map((c) => `${c.name}: no steady good samples during warm-up${live.sessions.get(c.name)?.lastError ? ` (${live.sessions.get(c.name)!.lastError})` : ''}`).join('; ');
      emit({ type: 'preflight', t: clock.now(), ok: false, message: msg });
      return notReady(trial, first, msg);
    }
    if (first) emit({ type: 'preflight', t: clock.now(), ok: true, message: 'every probe has a steady session' });
    const phaseSpan = Math.min(CUT_PHASE_MAX_MS, Math.max(...suite.probes.map((c) => c.interval)));
    await sleep(Math.random() * phaseSpan, signal).catch(() => {});
    if (interrupted) return 'skipped';
    return 'ok';
  }

  /** phase 3: the cut; a half-done cut is undone, and a restore that fails too is never swallowed */
  async function cutPhase(trial: Trial): Promise<CutInstant> {
    const { index } = trial;
    emit({ type: 'phase', t: clock.now(), trial: index, phase: 'cut' });
    let cut: CutInstant;
    try {
      cut = await injector!.cut(trial.requestedMs);
    } catch (e) {
      const cutError = (e as Error).message;
      try {
        const r = await injector!.restore('error');
        emit({ type: 'restore', t: r.t, before: r.before, trial: index, reason: 'error', detail: { error: cutError, ...r.detail } });
      } catch (re) {
        const restoreError = (re as Error).message;
        emit({ type: 'injector-error', t: clock.now(), trial: index, step: 'cut', message: cutError, restored: false, restoreError });
        throw new InjectorFailure(`trial ${index + 1}: the cut failed (${cutError}), and the restore after it failed too (${restoreError})`, false);
      }
      emit({ type: 'injector-error', t: clock.now(), trial: index, step: 'cut', message: cutError, restored: true });
      throw new InjectorFailure(`trial ${index + 1}: the cut failed (${cutError}); the target was restored`, true);
    }
    emit({ type: 'cut', t: cut.t, before: cut.before, deadline: cut.deadline, trial: index, detail: cut.detail });
    return cut;
  }

  /** phase 4: the blackout lasts the requested length from the instant the cut took effect; returns why it ended */
  async function blackoutPhase(trial: Trial, cut: CutInstant): Promise<string> {
    try {
      // never shorter than asked, however long the cut command took (a slow `virsh suspend` over SSH);
      // a self-timed injector (a real migration) ends when it ends
      if (!injector!.selfTimed) await sleepUntil(clock, cut.t + trial.requestedMs, signal);
      return 'scheduled';
    } catch {
      return 'signal';
    }
  }

  /** phase 5: the restore; returns its instant */
  async function restorePhase(trial: Trial, cut: CutInstant, reason: string): Promise<number> {
    try {
      const r = await injector!.restore(reason);
      emit({ type: 'restore', t: r.t, before: r.before, trial: trial.index, reason, detail: r.detail });
      log(`restored after ${(r.t - cut.t).toFixed(1)} ms (${reason})`);
      return r.t;
    } catch (e) {
      const message = (e as Error).message;
      emit({ type: 'injector-error', t: clock.now(), trial: trial.index, step: 'restore', message, restored: false });
      throw new InjectorFailure(
        `trial ${trial.index + 1}: the restore failed (${message}); the deadline restore (kernel timeout / watchdog) is due at ${(cut.deadline / 1000).toFixed(1)} s on the run clock`,
        false,
      );
    }
  }

  /** phase 6: until every session came back or gave up, bounded by `recovery`; then a little steady state */
  async function recoveryWatch(trial: Trial, restoredAt: number): Promise<void> {
    emit({ type: 'phase', t: clock.now(), trial: trial.index, phase: 'recovery' });
    const recoveryEnd = restoredAt + suite.recovery;
    while (clock.now() < recoveryEnd && !interrupted) {
      const settled = suite.probes.every((cfg, i) => {
        const st = live.sessions.get(cfg.name);
        if (!st) return true;
        // a lost session with no reconnect policy has nothing more to show
        const terminal = st.lost !== null && !probeInfos[i]!.facts?.reconnect;
        return terminal || (st.okAfterRestore && st.lost === null);
      });
      if (settled) break;
      await sleep(50);
    }
    // so "resumed" is seen to hold
    const linger = Math.min(2000, Math.max(500, ...suite.probes.map((p) => 3 * p.interval)));
    await sleep(linger, signal).catch(() => {});
  }

  /** phase 7: drain — every session closes (bounded), then the trial ends */
  async function drain(trial: Trial): Promise<void> {
    signal.removeEventListener('abort', trial.stopProbes);
    emit({ type: 'phase', t: clock.now(), trial: trial.index, phase: 'drain' });
    trial.abort.abort(new Error('trial over'));
    await Promise.allSettled(
      trial.running.map(({ cfg, probe }) =>
        withTimeout(probe.close(), 15_000, `${cfg.name}: close took longer than 15 s`).catch((e: Error) =>
          emit({ type: 'probe-error', t: clock.now(), probe: cfg.name, trial: trial.index, message: e.message, fatal: false }),
        ),
      ),
    );
    emit({ type: 'trial-end', t: clock.now(), trial: trial.index });
  }
}

export function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(message)), ms);
    }),
  ]);
}

export { PreflightError };
