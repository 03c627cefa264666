/**
 * Injector `qemu-live`: a real live migration of the lab's QEMU guest to a
 * second QEMU on the other tap, over TCP on the switch namespace's loopback:
 *
 *   (before) start the destination with `-incoming tcp:127.0.0.1:PORT`;
 *   set downtime-limit / max-bandwidth; journal + watchdog
 *   migrate tcp:127.0.0.1:PORT      (the guest keeps running: pre-copy)
 *   source STOP event               ← the cut instant (QEMU's own timestamp)
 *   destination RESUME event        ← the restore instant (QEMU's own timestamp)
 *   the source quits; the destination is the guest from now on
 *
 * The pause is QEMU's to choose (it switches over when the remaining dirty
 * memory fits the downtime limit at the measured bandwidth), so the cut and
 * restore instants are QEMU's STOP and RESUME event timestamps mapped onto the
 * run clock; the migration start and QEMU's own `downtime` figure are recorded
 * beside them, and the probes measure what the clients really saw.
 */
import { z } from 'zod';
import { sleep } from '../core/clock.ts';
import { byteSize, duration } from '../core/schema-util.ts';
import { pollMigration, QmpError, type MigrationInfo, type QmpClient, type QmpEvent, type RunStatus } from '../transport/qmp.ts';
import { startInstance } from '../lab/vm.ts';
import { adoptInstance, healVm, specOf, writeJournal, type MigrationJournal } from '../lab/vm-heal.ts';
import {
  checkSameMachine,
  consoleTail,
  disarmWatchdog,
  dropQmp,
  eventAt,
  healFailedMigration,
  instanceRef,
  labVm,
  labVmMethods,
  migrationFigures,
  prepareMigration,
  qmpOf,
  sameMachineText,
  waitExit,
  type MigrationFlight,
} from './shared/qemu-common.ts';
import type { CutInstant, Injector, InjectorContext, InjectorDefinition, Instant } from '../core/injector.ts';

export const QemuLiveSchema = z
  .object({
    kind: z.literal('qemu-live').describe('the injector kind'),
    downtimeLimit: duration({ min: 1, max: 60_000 }).optional().describe("QEMU's downtime-limit: the longest pause it aims for at switch-over; QEMU's default is 300 ms"),
    bandwidth: byteSize().optional().describe('QEMU\'s max-bandwidth in bytes per second ("128MB" = 128 MiB/s, QEMU\'s default); higher is not better for the pause'),
    timeout: duration({ min: 1000 }).default(120_000).describe('bound on one whole migration; default 120 s'),
  })
  .strict();
export type QemuLiveConfig = z.infer<typeof QemuLiveSchema>;

interface Flight extends MigrationFlight {
  srcMark: number;
  dstMark: number;
  started: Instant;
  stopAt: number | null;
}

/** Base of the migration port on the switch namespace's loopback; each lab has its own namespace. */
const PORT_BASE = 49_200;

/** Resolves with the first event of `names` after `after`, polling the kept history (bounded). */
async function firstEvent(q: QmpClient, after: number, pick: (e: QmpEvent) => boolean, timeoutMs: number, what: string): Promise<QmpEvent> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ev = q.events().find((e) => e.seq >= after && pick(e));
    if (ev) return ev;
    if (q.closed) throw new Error(`QMP closed while waiting for ${what}`);
    if (Date.now() > deadline) throw new Error(`no ${what} within ${timeoutMs} ms`);
    await sleep(5);
  }
}

const failed = (e: QmpEvent) => e.event === 'MIGRATION' && (e.data?.status === 'failed' || e.data?.status === 'cancelled');

export function createQemuLive(config: QemuLiveConfig, ctx: InjectorContext): Injector {
  let flight: Flight | null = null;

  async function complete(f: Flight): Promise<Instant> {
    // the guest resumes on the destination by itself once the switch-over is done
    const resume = await firstEvent(f.dstQ, f.dstMark, (e) => e.event === 'RESUME', config.timeout, 'RESUME on the destination');
    const restoreAt = eventAt(ctx.clock, resume);
    const info = await pollMigration(f.srcQ, { timeoutMs: 10_000, intervalMs: 10 });
    if (info.status !== 'completed') throw new Error(`live migration ${info.status}: ${info['error-desc'] ?? ''}`);
    const srcStatus = await f.srcQ.execute<RunStatus>('query-status').catch(() => null);
    await f.srcQ.execute('quit').catch((e: unknown) => {
      if (!(e instanceof QmpError && e.errorClass === 'Closed')) throw e;
    });
    dropQmp(f.src);
    await waitExit(f.src.pid, 5000);
    await disarmWatchdog(f.lab, f.journal);
    await adoptInstance(f.lab, f.vm, f.dest, [f.src]);
    const same = await checkSameMachine(f.lab, f.vm, f.dest.tap);
    const pauseMs = f.stopAt !== null ? restoreAt - f.stopAt : null;
    const qemu = migrationFigures(info);
    ctx.info({
      injector: 'qemu-live',
      migrateStartedAt: f.started.t,
      stopAt: f.stopAt,
      resumeAt: restoreAt,
      stopToResumeMs: pauseMs,
      qemuDowntimeMs: info.downtime,
      qemuTotalTimeMs: info['total-time'],
      qemuSetupTimeMs: info['setup-time'],
      transferredBytes: info.ram?.transferred,
      dirtySyncCount: info.ram?.['dirty-sync-count'],
      downtimeLimitMs: config.downtimeLimit ?? null,
      bandwidth: config.bandwidth ?? null,
      sourceStatusAfter: srcStatus?.status,
      source: instanceRef(f.src),
      dest: instanceRef(f.dest),
      qemu,
      ...same,
    });
    ctx.log(`live migration: paused ${pauseMs === null ? '?' : Math.round(pauseMs)} ms (QEMU downtime ${info.downtime ?? '?'} ms, total ${info['total-time'] ?? '?'} ms), ` + sameMachineText(same));
    return {
      before: restoreAt,
      t: restoreAt,
      detail: { operation: 'destination RESUME event', qemuDowntimeMs: info.downtime, stopToResumeMs: pauseMs, sameBootId: same.sameBootId, macMoved: same.macMoved },
    };
  }

  async function restore(reason: string): Promise<Instant> {
    const f = flight;
    if (!f) {
      const now = ctx.clock.now();
      return { before: now, t: now, detail: { noop: true } };
    }
    try {
      if (reason !== 'scheduled' && f.stopAt === null) {
        // still in pre-copy: cancel, the source keeps (or goes back to) running
        await f.srcQ.execute('migrate_cancel').catch(() => {});
        await pollMigration(f.srcQ, { timeoutMs: 10_000 }).catch(() => {});
        throw new Error(`cancelled (${reason})`);
      }
      return await complete(f);
    } catch (e) {
      return await healFailedMigration(ctx, 'qemu-live', f, reason, e);
    } finally {
      flight = null;
    }
  }

  return {
    kind: 'qemu-live',
    migration: 'live',
    selfTimed: true,
    // one live migration; its pause is QEMU's to choose (list more lengths for more runs)
    defaultBlackoutsMs: [0],
    describe() {
      return { kind: 'qemu-live', downtimeLimitMs: config.downtimeLimit ?? null, bandwidth: config.bandwidth ?? null, timeoutMs: config.timeout };
    },
    ...labVmMethods(ctx),
    async cut(): Promise<CutInstant> {
      if (flight) throw new Error('qemu-live: a migration is already in flight');
      const { lab, vm } = labVm(ctx);
      const src = vm.current;
      const srcQ = await qmpOf(src);
      const port = PORT_BASE + (vm.nextGeneration % 10_000);
      const uri = `tcp:127.0.0.1:${port}`;
      const dest = await startInstance(lab, specOf(vm), vm.nextGeneration, uri);
      const startedAtWallMs = Date.now();
      const journal: MigrationJournal = {
        migration: 'live',
        phase: 'prepare',
        driverPid: process.pid,
        startedAtWallMs,
        deadlineWallMs: startedAtWallMs + config.timeout,
        source: src,
        dest,
      };
      const dstQ = await prepareMigration(lab, journal, dest, async (dst) => {
        await dst.execute('query-status'); // answered from the main loop: the listener is up
        await srcQ.execute('migrate-set-capabilities', { capabilities: [{ capability: 'events', state: true }] });
        const params: Record<string, unknown> = {};
        if (config.downtimeLimit !== undefined) params['downtime-limit'] = Math.round(config.downtimeLimit);
        if (config.bandwidth !== undefined) params['max-bandwidth'] = config.bandwidth;
        if (Object.keys(params).length) await srcQ.execute('migrate-set-parameters', params);
      });
      const srcMark = srcQ.mark();
      const dstMark = dstQ.mark();
      const before = ctx.clock.now();
      try {
        await srcQ.execute('migrate', { uri });
      } catch (e) {
        await healVm(lab).catch(() => {});
        throw e;
      }
      const t = ctx.clock.now();
      journal.phase = 'migrating';
      writeJournal(lab, journal);
      const f: Flight = { lab, vm, journal, src, dest, srcQ, dstQ, srcMark, dstMark, started: { before, t }, stopAt: null };
      flight = f;
      // the cut is the moment QEMU pauses the source for the switch-over
      let stop: QmpEvent;
      try {
        stop = await firstEvent(srcQ, srcMark, (e) => e.event === 'STOP' || failed(e), config.timeout, 'STOP on the source');
      } catch (e) {
        await restore('error').catch(() => {});
        throw e;
      }
      if (stop.event !== 'STOP') {
        await restore('error').catch(() => {});
        throw new Error(`qemu-live: the migration ${String(stop.data?.status)} before the switch-over${consoleTail(vm)}`);
      }
      f.stopAt = eventAt(ctx.clock, stop);
      return {
        before: f.stopAt,
        t: f.stopAt,
        deadline: ctx.clock.fromWallMs(journal.deadlineWallMs),
        detail: { operation: 'source STOP event (switch-over)', migrateIssuedAt: t, precopyMs: f.stopAt - t, sourcePid: src.pid, destPid: dest.pid },
      };
    },
    restore,
  };
}

export const qemuLive: InjectorDefinition<QemuLiveConfig> = {
  kind: 'qemu-live',
  summary: 'real live migration of the lab QEMU guest to a second QEMU (TCP inside the lab switch); options downtime limit and bandwidth',
  schema: QemuLiveSchema,
  create: createQemuLive,
};

export type { MigrationInfo };
