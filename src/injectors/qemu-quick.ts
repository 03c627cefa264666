/**
 * Injector `qemu-quick`: a real quick migration of the lab's QEMU guest, over
 * one persistent QMP connection per QEMU process:
 *
 *   (before the blackout) start the destination QEMU on the other tap with
 *   `-incoming defer`; write the journal; start the watchdog
 *   stop                                  ← the cut instant (run clock)
 *   migrate exec:cat > STATE; poll query-migrate until completed (the save)
 *   quit the source
 *   migrate-incoming exec:cat STATE on the destination; poll (the restore)
 *   (emulate: wait until stop + model)
 *   cont                                  ← the restore instant (run clock)
 *
 * `emulate: { memory, link }` makes the small guest stand in for a VM of that
 * memory size on that storage link: the model says stop→cont = 2 × memory /
 * throughput (src/analysis/migration-model.ts). The save is throttled by QEMU's
 * `max-bandwidth` to the link's throughput scaled by guest RAM / emulated
 * memory (so the guest's RAM takes as long to save as the big VM's would);
 * a stopped guest's mostly-zero pages go faster than that, and the restore
 * from a local file cannot be throttled, so the rest of the model time is a
 * delay before `cont`. The figures of each phase are recorded.
 *
 * Without `emulate`, a requested blackout length N > 0 is treated the same
 * way (a real save/restore stretched to N from stop to cont), so a suite can
 * sweep `blackouts: [8s, 32s, 64s]` — the model lengths of 512 MB, 2 GB and
 * 4 GB on 1 GbE — with one injector; N = 0 gives the real, small times.
 *
 * selfTimed: the migration lasts what it lasts; the runner calls restore()
 * right after cut(), and restore() waits for the migration to finish.
 */
import { existsSync, rmSync } from 'node:fs';
import { z } from 'zod';
import { sleep } from '../core/clock.ts';
import { byteSize, duration } from '../core/schema-util.ts';
import { linkSchema, quickMigrationMs } from '../analysis/migration-model.ts';
import { pollMigration, QmpError, type RunStatus } from '../transport/qmp.ts';
import { startInstance, vmDir } from '../lab/vm.ts';
import { adoptInstance, healVm, specOf, writeJournal, type MigrationJournal } from '../lab/vm-heal.ts';
import {
  checkSameMachine,
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

export const QemuQuickSchema = z
  .object({
    kind: z.literal('qemu-quick').describe('the injector kind'),
    emulate: z
      .object({ memory: byteSize().describe('the emulated VM\'s memory ("4GB")'), link: linkSchema.describe('the storage link: a name such as "1GbE iSCSI", or a throughput in MB/s') })
      .strict()
      .optional()
      .describe("emulate a VM of this memory on this storage link (the model's downtime); omit for the real, small times"),
    timeout: duration({ min: 1000 }).default(120_000).describe('bound on one whole migration (save + restore), beyond the model time; default 120 s'),
  })
  .strict();
export type QemuQuickConfig = z.infer<typeof QemuQuickSchema>;

interface Flight extends MigrationFlight {
  stateFile: string;
  stop: Instant;
  /** the stop→cont length aimed at (from the model, or the requested length); null = as fast as it goes */
  modelMs: number | null;
  requestedMs: number;
  maxBandwidth: number | null;
  abort: AbortController;
  /** the save, the restore and the cont, running after cut() returned */
  done: Promise<Instant>;
  figures: Record<string, unknown>;
}

const MiB = 1024 ** 2;

export function createQemuQuick(config: QemuQuickConfig, ctx: InjectorContext): Injector {
  let flight: Flight | null = null;
  const emulate = config.emulate;

  /** save → quit source → restore → (model delay) → cont; updates the journal at each phase. */
  async function runMigration(f: Flight): Promise<Instant> {
    const { srcQ, dstQ, journal, lab } = f;
    const t0 = ctx.clock.now();
    // The writer ignores SIGTERM: on completion QEMU closes the pipe and, if the
    // writer has not exited yet, signals it; the rename marks a complete file.
    await srcQ.execute('migrate', { uri: `exec:trap '' TERM; cat > ${f.stateFile}.part && mv ${f.stateFile}.part ${f.stateFile}` });
    const save = await pollMigration(srcQ, { timeoutMs: config.timeout + (f.modelMs ?? 0), intervalMs: 10 });
    const tSaved = ctx.clock.now();
    if (save.status !== 'completed') throw new Error(`saving the guest state ${save.status}: ${save['error-desc'] ?? ''}`);
    const fileDeadline = Date.now() + 5000;
    while (!existsSync(f.stateFile)) {
      if (Date.now() > fileDeadline) throw new Error(`the saved state ${f.stateFile} is incomplete (the writer did not finish)`);
      await sleep(5);
    }
    journal.phase = 'saved';
    writeJournal(lab, journal);
    f.figures.save = migrationFigures(save);
    f.figures.saveMs = tSaved - t0;
    if (f.abort.signal.aborted) throw new Error('aborted after the save');
    // the source's job is done: it goes, like the old host's VM in a real quick migration
    await srcQ.execute('quit').catch((e: unknown) => {
      if (!(e instanceof QmpError && e.errorClass === 'Closed')) throw e;
    });
    dropQmp(f.src);
    f.figures.sourceExited = await waitExit(f.src.pid, 5000);
    f.figures.quitMs = ctx.clock.now() - tSaved;
    journal.phase = 'restoring';
    writeJournal(lab, journal);
    const t1 = ctx.clock.now();
    await dstQ.execute('migrate-incoming', { uri: `exec:cat ${f.stateFile}` });
    const restored = await pollMigration(dstQ, { timeoutMs: config.timeout, intervalMs: 10 });
    const tRestored = ctx.clock.now();
    if (restored.status !== 'completed') throw new Error(`restoring the guest state ${restored.status}: ${restored['error-desc'] ?? ''}`);
    journal.phase = 'restored';
    writeJournal(lab, journal);
    f.figures.restore = migrationFigures(restored);
    f.figures.restoreMs = tRestored - t1;
    // the model's remaining time: the part of a big VM's save/restore the small guest does not need
    if (f.modelMs !== null && !f.abort.signal.aborted) {
      const wait = f.stop.t + f.modelMs - ctx.clock.now();
      f.figures.delayMs = Math.max(0, wait);
      if (wait > 0) await sleep(wait, f.abort.signal).catch(() => {});
    }
    const s = await dstQ.execute<RunStatus>('query-status');
    f.figures.destStatusBeforeCont = s.status;
    const before = ctx.clock.now();
    await dstQ.execute('cont');
    const t = ctx.clock.now();
    const resume = dstQ.events().find((e) => e.event === 'RESUME');
    return { before, t, detail: { resumeEventAt: resume ? eventAt(ctx.clock, resume) : null } };
  }

  /** After a normal completion: the destination is the guest now. */
  async function finish(f: Flight, cont: Instant): Promise<Instant> {
    await disarmWatchdog(f.lab, f.journal);
    await adoptInstance(f.lab, f.vm, f.dest, [f.src]);
    rmSync(f.stateFile, { force: true });
    const same = await checkSameMachine(f.lab, f.vm, f.dest.tap);
    const stopToContMs = cont.t - f.stop.t;
    const data: Record<string, unknown> = {
      injector: 'qemu-quick',
      stopToContMs,
      modelMs: f.modelMs,
      lengthFrom: emulate ? 'model' : f.modelMs !== null ? 'requested' : 'real',
      requestedMs: f.requestedMs,
      modelErrorPct: f.modelMs ? ((stopToContMs - f.modelMs) / f.modelMs) * 100 : null,
      emulate: emulate ? { memoryBytes: emulate.memory, link: emulate.link.name, linkBytesPerSec: emulate.link.bytesPerSec } : null,
      maxBandwidth: f.maxBandwidth,
      guestMemoryMB: f.vm.memoryMB,
      source: instanceRef(f.src),
      dest: instanceRef(f.dest),
      ...f.figures,
      ...same,
    };
    ctx.info(data);
    ctx.log(`quick migration: stop→cont ${Math.round(stopToContMs)} ms` + (f.modelMs ? ` (model ${Math.round(f.modelMs)} ms)` : '') + `, ${sameMachineText(same)}`);
    return { ...cont, detail: { ...cont.detail, stopToContMs, modelMs: f.modelMs, sameBootId: same.sameBootId, macMoved: same.macMoved } };
  }

  return {
    kind: 'qemu-quick',
    migration: 'quick',
    selfTimed: true,
    // one trial at the model's length when emulating, else one at the real speed
    defaultBlackoutsMs: [emulate ? Math.round(quickMigrationMs(emulate.memory, emulate.link)) : 0],
    describe() {
      return {
        kind: 'qemu-quick',
        emulate: emulate ? { memoryBytes: emulate.memory, link: emulate.link.name, modelMs: quickMigrationMs(emulate.memory, emulate.link) } : null,
        timeoutMs: config.timeout,
      };
    },
    ...labVmMethods(ctx),
    async cut(requestedMs: number): Promise<CutInstant> {
      if (flight) throw new Error('qemu-quick: a migration is already in flight');
      const { lab, vm } = labVm(ctx);
      const src = vm.current;
      const srcQ = await qmpOf(src);
      const modelMs = emulate ? quickMigrationMs(emulate.memory, emulate.link) : requestedMs > 0 ? requestedMs : null;
      // the destination is started before the blackout: on a real cluster the other host is already there
      const dest = await startInstance(lab, specOf(vm), vm.nextGeneration, 'defer');
      const stateFile = `${vmDir(lab)}/state-${src.generation}.bin`;
      rmSync(stateFile, { force: true });
      const startedAtWallMs = Date.now();
      const journal: MigrationJournal = {
        migration: 'quick',
        phase: 'prepare',
        driverPid: process.pid,
        startedAtWallMs,
        deadlineWallMs: startedAtWallMs + (modelMs ?? 0) + config.timeout,
        source: src,
        dest,
        stateFile,
      };
      let maxBandwidth: number | null = null;
      const dstQ = await prepareMigration(lab, journal, dest, async () => {
        if (modelMs !== null) {
          // the guest's RAM takes half the target time to save: for `emulate` that is the
          // link's throughput scaled by guest RAM / emulated memory
          maxBandwidth = Math.max(1, Math.round((vm.memoryMB * MiB) / (modelMs / 2 / 1000)));
          await srcQ.execute('migrate-set-parameters', { 'max-bandwidth': maxBandwidth });
        }
      });
      const mark = srcQ.mark();
      const before = ctx.clock.now();
      try {
        await srcQ.execute('stop');
      } catch (e) {
        await healVm(lab).catch(() => {});
        throw e;
      }
      const t = ctx.clock.now();
      journal.phase = 'stopped';
      writeJournal(lab, journal);
      const stopEv = srcQ.events().find((e) => e.event === 'STOP' && e.seq >= mark);
      const f: Flight = {
        lab,
        vm,
        journal,
        src,
        dest,
        srcQ,
        dstQ,
        stateFile,
        stop: { before, t },
        modelMs,
        maxBandwidth,
        requestedMs,
        abort: new AbortController(),
        done: Promise.resolve({ before: 0, t: 0 }),
        figures: {},
      };
      f.done = runMigration(f);
      f.done.catch(() => {}); // handled in restore(); never an unhandled rejection
      flight = f;
      return {
        before,
        t,
        deadline: ctx.clock.fromWallMs(journal.deadlineWallMs),
        detail: {
          operation: 'QMP stop',
          stopEventAt: stopEv ? eventAt(ctx.clock, stopEv) : null,
          modelMs,
          maxBandwidth,
          sourcePid: src.pid,
          destPid: dest.pid,
        },
      };
    },
    async restore(reason: string): Promise<Instant> {
      const f = flight;
      if (!f) {
        const now = ctx.clock.now();
        return { before: now, t: now, detail: { noop: true } };
      }
      if (reason !== 'scheduled') {
        // error or Ctrl-C: no model delay; a save still running is cancelled (resuming the source is fastest)
        f.abort.abort();
        if (f.journal.phase === 'stopped') await f.srcQ.execute('migrate_cancel').catch(() => {});
      }
      try {
        const cont = await f.done;
        return await finish(f, cont);
      } catch (e) {
        return await healFailedMigration(ctx, 'qemu-quick', f, reason, e, f.figures);
      } finally {
        flight = null;
        rmSync(f.stateFile, { force: true });
        rmSync(`${f.stateFile}.part`, { force: true });
      }
    },
  };
}

export const qemuQuick: InjectorDefinition<QemuQuickConfig> = {
  kind: 'qemu-quick',
  summary: 'real quick migration of the lab QEMU guest: stop, save to a file, restore in a new QEMU, cont (optionally emulating a VM size on a storage link)',
  schema: QemuQuickSchema,
  create: createQemuQuick,
};
