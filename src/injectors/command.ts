/**
 * command: any cut / restore command pair, on this machine or over SSH, timed
 * on the run clock (the cut window runs from the cut command's return to the
 * restore command's return; both instants are taken right around the
 * commands).
 *
 *   injector:
 *     kind: command
 *     ssh: { host: gw01, user: ops, privateKeyFile: ~/.ssh/id_ed25519, hostKey: "SHA256:…" }   # optional
 *     cut:     [ip, link, set, eth1, down]
 *     restore: [ip, link, set, eth1, up]
 *     verifyCut:     [sh, -c, "! ping -c1 -W1 10.0.0.5"]    # optional: must exit 0 while cut
 *     verifyRestore: [ping, -c1, -W2, 10.0.0.5]             # optional: must exit 0 once restored
 *     env: { API_TOKEN: { env: GW_TOKEN } }                 # optional; secrets travel on stdin
 *
 * Guaranteed restore: before the cut, a watchdog is armed where the commands
 * run (a detached `sh` under nohup: `sleep N; restore`), firing `grace` (5 s)
 * after the requested end; a normal restore disarms it. So kill -9 of the
 * harness, or a lost SSH session, cannot leave the target cut. The restore
 * command should therefore be idempotent.
 */
import { z } from 'zod';
import { MigrationKindSchema } from '../core/events.ts';
import { sleep } from '../core/clock.ts';
import type { Executor } from '../transport/ssh-exec.ts';
import {
  armPosixWatchdog,
  describeSsh,
  disarmPosixWatchdog,
  executorFor,
  forgetWatchdog,
  orphanedWatchdogs,
  recordWatchdog,
  remoteFields,
  secretSchema,
  timed,
  type Watchdog,
} from './shared/remote.ts';
import type { CutInstant, InjectorDefinition, Instant } from '../core/injector.ts';

const argv = z.array(z.string().max(4096)).min(1, 'expected a command as a list: [program, arg, …]').max(256, 'expected at most 256 arguments');

const schema = z.strictObject({
  kind: z.literal('command').describe('the injector kind'),
  ...remoteFields,
  cut: argv.describe('the command that cuts, as a list: [program, arg, …]'),
  restore: argv.describe('the command that restores (idempotent: the watchdog may run it too)'),
  verifyCut: argv.optional().describe('a command that must exit 0 while the target is cut'),
  verifyRestore: argv.optional().describe('a command that must exit 0 once the target is restored'),
  heal: argv.optional().describe('run before the first trial to undo what a dead run left (default: restore when verifyRestore fails)'),
  migration: MigrationKindSchema.default('none').describe('what the commands do to the target: a live or quick migration the report judges as such, or neither (default)'),
  env: z
    .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected a variable name'), z.union([z.string(), secretSchema]))
    .optional()
    .describe('environment variables for the commands: a value, or a secret { env: NAME } / { file: PATH } (secrets travel on stdin)'),
});
export type CommandConfig = z.infer<typeof schema>;

const DEFAULT_GRACE_MS = 5000;
const RESTORE_TRIES = 3;

export const command: InjectorDefinition<CommandConfig> = {
  kind: 'command',
  summary: 'any cut/restore command pair, local or over SSH, timed on the run clock, with a restore watchdog',
  schema,
  create(config, ctx) {
    let ex: Executor | null = null;
    const get = () => (ex ??= executorFor(ctx, config.ssh));
    const grace = config.grace ?? DEFAULT_GRACE_MS;
    const env = config.env;
    let dog: Watchdog | null = null;
    let cutActive = false;
    const journalKey = () => `command ${get().where} ${JSON.stringify(config.restore)}`;
    const run = (cmd: string[], label: string, allowFail = false) => get().exec({ argv: cmd, env }, { timeoutMs: config.timeout, label, allowFail });

    return {
      kind: 'command',
      migration: config.migration,
      dryRunCapable: true,
      describe: () => ({
        kind: 'command',
        ...describeSsh(config.ssh),
        cut: config.cut,
        restore: config.restore,
        verifyCut: config.verifyCut,
        verifyRestore: config.verifyRestore,
        env: env ? Object.keys(env) : undefined,
        watchdog: `restore ${grace} ms after the requested end if the harness died`,
      }),
      async preflight() {
        // reachability and, over SSH, the host key: one harmless command
        await get().exec({ argv: ['true'] }, { timeoutMs: config.timeout, label: 'preflight' });
      },
      async heal() {
        const actions: string[] = [];
        // a dead run's watchdog would run the restore inside this run's trial: end it first
        if (!get().isDryRun) {
          for (const o of orphanedWatchdogs(journalKey())) {
            const ended = await disarmPosixWatchdog(get(), o.id, config.timeout);
            forgetWatchdog(journalKey(), o.id);
            actions.push(`${ended ? 'ended' : 'found already gone'} the watchdog ${o.mechanism} armed by a dead run (${o.runDir})`);
          }
        }
        if (config.heal) {
          await run(config.heal, 'heal', true);
          actions.push(`ran the heal command ${config.heal.join(' ')} on ${get().where}`);
        } else if (config.verifyRestore) {
          const r = await run(config.verifyRestore, 'heal: verifyRestore', true);
          if (r.code !== 0 && !r.dryRun) {
            await run(config.restore, 'heal: restore');
            actions.push(`verifyRestore failed before the first trial: ran the restore command on ${get().where}`);
          }
        }
        return actions;
      },
      async cut(requestedMs): Promise<CutInstant> {
        const clock = ctx.clock;
        const armed = await armPosixWatchdog(get(), clock, requestedMs + grace, { argv: config.restore }, env, config.timeout);
        dog = armed;
        if (!get().isDryRun) recordWatchdog(journalKey(), { id: armed.id, mechanism: armed.mechanism, pid: process.pid, runDir: ctx.runDir, armedAtWallMs: Date.now() });
        cutActive = true; // before: a failure half-way must still be restored
        const c = await timed(get(), clock, { argv: config.cut, env }, { timeoutMs: config.timeout, label: 'cut' });
        const detail: Record<string, unknown> = { mechanism: `command on ${get().where}`, cutTookMs: c.t - c.before };
        if (config.verifyCut) {
          const v = await run(config.verifyCut, 'verifyCut', true);
          detail.verifyCut = v.code === 0 ? 'ok' : `failed (exit ${v.code})`;
          if (v.code !== 0) throw new Error(`verifyCut failed after the cut (exit ${v.code}): ${(v.stderr.trim() || v.stdout.trim()).slice(0, 300)}`);
        }
        detail.watchdog = armed.id;
        detail.watchdogMechanism = armed.mechanism;
        return { before: c.before, t: c.t, deadline: armed.firesAt, detail };
      },
      async restore(): Promise<Instant> {
        if (!cutActive && !dog) {
          const now = ctx.clock.now();
          return { before: now, t: now, detail: { nothingToRestore: true } };
        }
        let last: Error | null = null;
        // the watchdog's deadline passed before the harness got here: it restored first, at its deadline
        const watchdogFired = dog !== null && ctx.clock.now() >= dog.firesAt;
        for (let i = 1; i <= RESTORE_TRIES; i++) {
          try {
            const r = await timed(get(), ctx.clock, { argv: config.restore, env }, { timeoutMs: config.timeout, label: 'restore' });
            cutActive = false;
            const detail: Record<string, unknown> = { restoreTookMs: r.t - r.before, attempts: i, ...(watchdogFired ? { watchdogFired } : {}) };
            if (config.verifyRestore) {
              const v = await run(config.verifyRestore, 'verifyRestore', true);
              detail.verifyRestore = v.code === 0 ? 'ok' : `failed (exit ${v.code})`;
              if (v.code !== 0) ctx.log(`verifyRestore failed after the restore (exit ${v.code})`);
            }
            if (dog) {
              await dog.disarm().catch((e: Error) => ctx.log(`could not disarm the watchdog (${e.message}); it will run the restore again at its deadline`));
              if (!get().isDryRun) forgetWatchdog(journalKey(), dog.id);
              dog = null;
            }
            return { before: r.before, t: r.t, detail };
          } catch (e) {
            last = e as Error;
            ctx.log(`restore attempt ${i} failed: ${last.message}`);
            if (i < RESTORE_TRIES) await sleep(500 * i);
          }
        }
        throw new Error(`restore failed ${RESTORE_TRIES} times (${last?.message}); the watchdog on ${get().where} restores at its deadline`);
      },
      async dispose() {
        await ex?.close();
      },
    };
  },
};
