/**
 * A migration in flight, written down, and what to do when its driver dies.
 *
 * Before a migration pauses the guest, its driver (the qemu-quick or
 * qemu-live injector) writes <vm dir>/migration.json: which QEMU instance is
 * the source, which the destination, where the saved state goes, who drives
 * it (PID) and until when. It then starts a detached watchdog
 * (vm-watchdog.ts) that watches the driver's PID. If the driver dies (kill -9)
 * or overruns the deadline, the watchdog runs `healVm`, which looks at both
 * QEMU processes and brings the guest back on whichever can hold it soonest:
 * a paused guest is the VM equivalent of a cut cable left unplugged.
 * A driver that finishes normally ends the watchdog by PID and removes the
 * journal. `healVm` is also what the injectors' heal() runs at the start of a
 * run, to fix what a dead run left.
 */
import { spawn } from 'node:child_process';
import { spawnWithoutSendLease } from './lease.ts';
import { closeSync, existsSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { nodeArgv } from '../core/runtime.ts';
import { pidAlive } from '../transport/exec.ts';
import { sleep } from '../core/clock.ts';
import { connectQmp, pollMigration, type MigrationInfo, type QmpClient, type RunStatus } from '../transport/qmp.ts';
import type { Topology } from './topology.ts';
import { endPids, isVmProcess, readVmState, removeTap, startInstance, stopInstance, vmDir, vmProcessPids, vmTap, vmUp, writeVmState, type InstanceSpec, type VmInstance, type VmState } from './vm.ts';

export type MigrationPhase = 'prepare' | 'stopped' | 'migrating' | 'saved' | 'restoring' | 'restored';

export interface MigrationJournal {
  migration: 'quick' | 'live';
  phase: MigrationPhase;
  /** the process driving the migration (the harness) */
  driverPid: number;
  watchdogPid?: number;
  startedAtWallMs: number;
  /** the watchdog heals at this wall-clock time even if the driver still lives */
  deadlineWallMs: number;
  source: VmInstance;
  dest?: VmInstance;
  /** quick migration: the saved guest state */
  stateFile?: string;
}

export function journalPath(lab: Topology): string {
  return `${vmDir(lab)}/migration.json`;
}

export function readJournal(lab: Topology): MigrationJournal | null {
  try {
    return JSON.parse(readFileSync(journalPath(lab), 'utf8')) as MigrationJournal;
  } catch {
    return null;
  }
}

export function writeJournal(lab: Topology, j: MigrationJournal): void {
  const p = journalPath(lab);
  writeFileSync(`${p}.tmp`, JSON.stringify(j, null, 2));
  renameSync(`${p}.tmp`, p);
}

export function removeJournal(lab: Topology): void {
  rmSync(journalPath(lab), { force: true });
}

export function specOf(vm: VmState): InstanceSpec {
  return { image: vm.image, mac: vm.mac, memoryMB: vm.memoryMB, address: vm.address, prefixLength: vm.prefixLength, console: vm.console };
}

/**
 * Starts the watchdog for the journal's migration, detached in its own
 * session (a kill -9 of the harness, or of its process group, leaves it
 * alone), and waits (bounded) until it says it is watching.
 */
export async function spawnWatchdog(lab: Topology, driverPid: number, deadlineWallMs: number): Promise<number> {
  const log = `${vmDir(lab)}/watchdog.log`;
  const fd = openSync(log, 'a');
  let pid: number | undefined;
  try {
    // the VM directory is in the argv so vmDown finds (and ends) it by PID
    const child = spawnWithoutSendLease(() =>
      spawn(process.execPath, [...nodeArgv('./vm-watchdog.ts', import.meta.url), lab.name, String(driverPid), String(Math.round(deadlineWallMs)), `${vmDir(lab)}/`], {
        detached: true,
        stdio: ['ignore', fd, fd],
      }),
    );
    child.unref();
    pid = child.pid;
  } finally {
    closeSync(fd);
  }
  if (pid === undefined) throw new Error('could not start the VM watchdog');
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (readFileSync(log, 'utf8').includes(`watchdog ${pid} ready`)) return pid;
    if (!pidAlive(pid)) break;
    await sleep(20);
  }
  await endPids([pid], 200);
  throw new Error(`the VM watchdog did not start: ${readFileSync(log, 'utf8').split('\n').slice(-5).join(' | ')}`);
}

/** Ends the watchdog by PID (after a normal completion), if it is still ours. */
export async function endWatchdog(lab: Topology, pid: number | undefined): Promise<void> {
  if (pid && pid !== process.pid && isVmProcess(lab, pid)) await endPids([pid], 500);
}

async function aux(inst: VmInstance | undefined, lab: Topology): Promise<QmpClient | null> {
  if (!inst || !isVmProcess(lab, inst.pid)) return null;
  try {
    return await connectQmp(inst.qmpAux, 5000);
  } catch {
    return null;
  }
}

const ACTIVE = new Set(['setup', 'active', 'pre-switchover', 'device', 'wait-unplug', 'postcopy-active', 'cancelling']);

/** Makes `holder` the VM's current instance, ends every other QEMU and watchdog of this VM, removes the other tap. */
export async function adoptInstance(lab: Topology, vm: VmState, holder: VmInstance, others: Array<VmInstance | undefined>): Promise<string[]> {
  const actions: string[] = [];
  for (const o of others) {
    if (!o || o.generation === holder.generation) continue;
    if (isVmProcess(lab, o.pid)) actions.push(`ended QEMU pid ${o.pid} (generation ${o.generation})`);
    await stopInstance(lab, o, { keepTap: o.tap === holder.tap });
  }
  vm.current = holder;
  vm.nextGeneration = Math.max(vm.nextGeneration, holder.generation + 1);
  writeVmState(vm);
  return actions;
}

/**
 * Finds the guest of an interrupted migration and makes it run again.
 * Returns what it did, one line per action.
 */
async function resolveMigration(lab: Topology, vm: VmState, j: MigrationJournal): Promise<string[]> {
  const actions: string[] = [];
  const src = await aux(j.source, lab);
  let dst = await aux(j.dest, lab);
  try {
    // 1. a migration still running on the source: a live one is left to finish
    //    (QEMU drives it and resumes the guest on either side by itself); a
    //    quick save is cancelled, because resuming the source is the fastest way back
    if (src) {
      const m = await src.execute<MigrationInfo>('query-migrate').catch(() => ({}) as MigrationInfo);
      if (m.status && ACTIVE.has(m.status)) {
        if (j.migration === 'quick') {
          await src.execute('migrate_cancel').catch(() => {});
          actions.push('cancelled the unfinished save on the source');
        }
        await pollMigration(src, { timeoutMs: j.migration === 'live' ? 60_000 : 10_000, until: (s) => !s.status || !ACTIVE.has(s.status) }).catch(() => {});
      }
    }
    const dstStatus = dst ? await dst.execute<RunStatus>('query-status').catch(() => null) : null;
    // 2. the destination already runs the guest: keep it
    if (dst && dstStatus?.running) {
      actions.push(`the guest runs on the destination (pid ${j.dest?.pid})`);
      return [...actions, ...(await adoptInstance(lab, vm, j.dest as VmInstance, [j.source]))];
    }
    // 3. the destination holds a complete incoming state: resume it there
    if (dst && j.dest) {
      const dm = await dst.execute<MigrationInfo>('query-migrate').catch(() => ({}) as MigrationInfo);
      if (dm.status === 'completed' && dstStatus && !dstStatus.running) {
        await dst.execute('cont');
        actions.push(`resumed the guest on the destination (pid ${j.dest.pid}, was ${dstStatus.status})`);
        return [...actions, ...(await adoptInstance(lab, vm, j.dest, [j.source]))];
      }
    }
    // 4. the source still has the guest: resume it there, drop the destination
    if (src) {
      const s = await src.execute<RunStatus>('query-status').catch(() => null);
      if (s && !s.running) {
        await src.execute('cont');
        actions.push(`resumed the guest on the source (pid ${j.source.pid}, was ${s.status})`);
      } else if (s) {
        actions.push(`the guest runs on the source (pid ${j.source.pid})`);
      }
      if (s) {
        dst?.close();
        dst = null;
        return [...actions, ...(await adoptInstance(lab, vm, j.source, [j.dest]))];
      }
    }
    // 5. the source is gone (a quick migration after its save): restore from the saved state
    if (j.stateFile && existsSync(j.stateFile) && (j.phase === 'saved' || j.phase === 'restoring' || j.phase === 'restored')) {
      let holder = j.dest;
      let q = dst;
      if (q && holder) {
        const dm = await q.execute<MigrationInfo>('query-migrate').catch(() => ({}) as MigrationInfo);
        if (!dm.status || dm.status === 'none') {
          await q.execute('migrate-incoming', { uri: `exec:cat ${j.stateFile}` });
          actions.push(`started the restore on the destination (pid ${holder.pid})`);
        }
        const done = await pollMigration(q, { timeoutMs: 60_000 }).catch((e: Error) => ({ status: 'failed', 'error-desc': e.message }) as MigrationInfo);
        if (done.status !== 'completed') {
          actions.push(`the destination's restore ${done.status}: ${done['error-desc'] ?? ''}; starting a new QEMU`);
          q.close();
          q = null;
          await stopInstance(lab, holder);
          holder = undefined;
        }
      }
      if (!q || !holder) {
        const gen = Math.max(vm.nextGeneration, (j.dest?.generation ?? 0) + 1);
        // the slot of a dead destination is free again; the source's tap is gone with it
        holder = await startInstance(lab, specOf(vm), gen, `exec:cat ${j.stateFile}`);
        q = await connectQmp(holder.qmpAux, 10_000);
        const done = await pollMigration(q, { timeoutMs: 60_000 });
        if (done.status !== 'completed') throw new Error(`restore from ${j.stateFile} ${done.status}: ${done['error-desc'] ?? ''}`);
        actions.push(`restored the guest from ${j.stateFile} in a new QEMU (pid ${holder.pid})`);
      }
      await q.execute('cont');
      actions.push(`resumed the restored guest (pid ${holder.pid})`);
      if (q !== dst) q.close();
      return [...actions, ...(await adoptInstance(lab, vm, holder, [j.source, j.dest]))];
    }
    throw new Error('no QEMU holds the guest and no complete saved state exists');
  } finally {
    src?.close();
    dst?.close();
  }
}

/**
 * Brings the lab's guest back to a running state, whatever a dead run left:
 * an interrupted migration (see resolveMigration), a paused guest, stray QEMU
 * processes or taps, a dead QEMU (the guest is booted again: its boot id
 * changes, and the action says so). Returns one line per action; [] when all
 * was well. With `reboot: false` a lost guest is reported, not rebooted.
 */
export async function healVm(lab: Topology, opts: { reboot?: boolean; by?: string } = {}): Promise<string[]> {
  const vm = readVmState(lab);
  if (!vm) return [];
  const actions: string[] = [];
  const j = readJournal(lab);
  if (j) {
    if (j.driverPid !== process.pid && pidAlive(j.driverPid) && opts.by !== 'watchdog') {
      // another live process is migrating this guest right now: not ours to touch
      return [`a migration driven by pid ${j.driverPid} is in progress: left alone`];
    }
    if (j.watchdogPid && j.watchdogPid !== process.pid) await endWatchdog(lab, j.watchdogPid);
    actions.push(`found an interrupted ${j.migration} migration (phase ${j.phase}, driver pid ${j.driverPid})`);
    try {
      actions.push(...(await resolveMigration(lab, vm, j)));
      if (j.stateFile) rmSync(j.stateFile, { force: true });
      removeJournal(lab);
    } catch (e) {
      actions.push(`could not resume the guest: ${(e as Error).message}`);
      removeJournal(lab);
    }
  }
  const now = readVmState(lab) ?? vm;
  // stray processes: anything with our VM dir in its argv that is not the current QEMU (and not us)
  const stray = vmProcessPids(lab).filter((p) => p !== now.current.pid && p !== process.pid);
  if (stray.length) {
    await endPids(stray);
    actions.push(`ended stray VM processes ${stray.join(', ')}`);
  }
  const otherTap = vmTap(lab, now.current.generation + 1);
  await removeTap(lab, otherTap);
  if (!isVmProcess(lab, now.current.pid)) {
    if (opts.reboot === false) return [...actions, 'the guest is not running (no QEMU process)'];
    await stopInstance(lab, now.current);
    writeVmState({ ...now, current: { ...now.current, pid: 0 } });
    const fresh = await vmUp(lab, { memoryMB: now.memoryMB });
    actions.push(`the guest was not running: booted it again (boot id ${now.bootId} → ${fresh.bootId})`);
    return actions;
  }
  let q: QmpClient | null = null;
  try {
    q = await connectQmp(now.current.qmpAux, 5000);
    const s = await q.execute<RunStatus>('query-status');
    if (!s.running) {
      const m = await q.execute<MigrationInfo>('query-migrate').catch(() => ({}) as MigrationInfo);
      if (m.status && ACTIVE.has(m.status)) await q.execute('migrate_cancel').catch(() => {});
      await q.execute('cont');
      actions.push(`resumed the paused guest (was ${s.status})`);
    }
  } finally {
    q?.close();
  }
  return actions;
}
