/**
 * The injector interface: what causes the blackout. Modelled on Toxiproxy's
 * toxics — a small plug-in with a guaranteed cleanup.
 *
 * Contract:
 *  - `cut()` starts the blackout and, before it returns, arms a restore that
 *    does not depend on this process (a kernel-side nft timeout, a detached
 *    watchdog): if the harness is killed with -9 the target is restored by
 *    `deadline` on its own.
 *  - `restore()` ends the blackout; it is idempotent and safe to call after a
 *    failed or partial `cut()`.
 *  - `heal()` undoes whatever a dead run of this injector may have left on the
 *    target (stale rules, frozen processes, paused guests) and says what it did.
 *  - The instants are taken on the run clock right around the operation that
 *    takes effect: `before` just before it, `t` just after it.
 */
import type { z } from 'zod';
import type { Clock } from './clock.ts';
import type { ResolvedTarget } from './target.ts';
import type { BlackoutEvent, MigrationKind } from './events.ts';

export interface InjectorContext {
  target: ResolvedTarget;
  clock: Clock;
  /** the run folder, for state files and attachments */
  runDir: string;
  /** free-form progress lines for the terminal (never secrets) */
  log(line: string): void;
  /** extra facts for the event log, e.g. QEMU's own migration figures */
  info(data: Record<string, unknown>): void;
  /**
   * `blackout run --dry-run`: the injector writes every command it would send
   * into this transcript and touches nothing (adapters that support it set
   * `dryRunCapable`).
   */
  dryRun?: { transcript(line: string): void };
  /** the run's event stream as it happens (the manual injector shows the probes' live state); returns unsubscribe */
  subscribe?(listener: (e: BlackoutEvent) => void): () => void;
}

export interface Instant {
  /** run-clock ms just before the operation */
  before: number;
  /** run-clock ms just after it: the operation took effect in [before, t] */
  t: number;
  detail?: Record<string, unknown>;
}

export interface CutInstant extends Instant {
  /** run-clock ms by which the target is restored even if the harness dies */
  deadline: number;
}

export interface Injector {
  readonly kind: string;
  /**
   * What this injector (in its configured mode) does to the target: a live
   * migration, a quick migration (the VM pauses while its state is saved and
   * restored), or neither. Recorded in run-start; the verdict reads it.
   */
  readonly migration: MigrationKind;
  /**
   * A fixed blackout length this injector imposes (live migration's pause),
   * overriding the suite's `blackouts` when the suite gives none.
   */
  readonly defaultBlackoutsMs?: number[];
  /**
   * True when the injector times the blackout itself (a real migration ends
   * when it ends): the runner calls restore() right after cut() instead of
   * sleeping for the requested length.
   */
  readonly selfTimed?: boolean;
  /** true when it honours ctx.dryRun (prints its commands instead of running them) */
  readonly dryRunCapable?: boolean;
  /** what it will do, recorded in run-start (never secrets) */
  describe(): Record<string, unknown>;
  /** checks it can act: tools present, target of the right kind; throws a readable error */
  preflight(): Promise<void>;
  heal(): Promise<string[]>;
  cut(requestedMs: number): Promise<CutInstant>;
  restore(reason: string): Promise<Instant>;
  /** releases resources at the end of the run */
  dispose?(): Promise<void>;
}

export interface InjectorDefinition<C extends { kind: string }> {
  kind: C['kind'];
  /** one line for --help */
  summary: string;
  /** true when it talks to the operator on the terminal during a blackout (the live view stays off) */
  ownsTerminal?: boolean;
  /** validates the suite's `injector:` block */
  schema: z.ZodType<C>;
  create(config: C, ctx: InjectorContext): Injector;
}
