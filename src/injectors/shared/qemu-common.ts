/**
 * What the qemu-quick and qemu-live injectors share: finding the lab's guest,
 * one persistent QMP connection per QEMU instance, the watchdog-armed
 * migration journal, and the after-the-fact checks (same machine: boot id
 * unchanged; the MAC moved: the bridge learned it on the new tap).
 */
import { existsSync } from 'node:fs';
import type { Clock } from '../../core/clock.ts';
import { sleep } from '../../core/clock.ts';
import { run } from '../../transport/exec.ts';
import { labStateOf, type LabState } from '../../lab/state.ts';
import { connectQmp, eventWallMs, type MigrationInfo, type QmpClient, type QmpEvent, type RunStatus } from '../../transport/qmp.ts';
import { bridgePortOf, fetchBootIdRetry, isVmProcess, processGone, readVmState, tail, type VmInstance, type VmState } from '../../lab/vm.ts';
import { endWatchdog, healVm, removeJournal, spawnWatchdog, writeJournal, type MigrationJournal } from '../../lab/vm-heal.ts';
import type { Injector, InjectorContext, Instant } from '../../core/injector.ts';

/** The lab and its VM for this run's target; throws a readable error when the target has no VM. */
export function labVm(ctx: InjectorContext): { lab: LabState; vm: VmState } {
  const lab = ctx.target.lab && labStateOf(ctx.target.lab);
  if (!lab) throw new Error(`target ${ctx.target.name} is not a lab target: the qemu injectors need "target: lab-vm"`);
  const vm = readVmState(lab);
  if (!vm) throw new Error(`lab ${lab.name} has no VM: run "blackout lab up --vm"`);
  return { lab, vm };
}

const connections = new Map<string, QmpClient>();

/**
 * The persistent QMP connection to an instance's main monitor, shared by
 * every injector in this process (a QMP socket serves one client at a time).
 */
export async function qmpOf(inst: VmInstance, timeoutMs = 10_000): Promise<QmpClient> {
  const have = connections.get(inst.qmp);
  if (have && !have.closed) return have;
  const q = await connectQmp(inst.qmp, timeoutMs);
  connections.set(inst.qmp, q);
  return q;
}

export function dropQmp(inst: VmInstance | undefined): void {
  if (!inst) return;
  connections.get(inst.qmp)?.close();
  connections.delete(inst.qmp);
}

/** Checks shared by both injectors' preflight: QEMU installed, the guest up and running. */
export async function preflightVm(ctx: InjectorContext): Promise<void> {
  const r = await run('qemu-system-x86_64', ['--version'], { allowFail: true, timeoutMs: 10_000 }).catch(() => null);
  if (!r || r.code !== 0) throw new Error('qemu-system-x86_64 is not installed (scripts/setup.sh installs qemu-system-x86)');
  const { lab, vm } = labVm(ctx);
  if (!isVmProcess(lab, vm.current.pid)) throw new Error(`the guest of lab ${lab.name} is not running (pid ${vm.current.pid}); "blackout lab up --vm" boots it`);
  const q = await qmpOf(vm.current);
  const s = await q.execute<RunStatus>('query-status');
  if (!s.running) throw new Error(`the guest of lab ${lab.name} is ${s.status}, not running: heal it first`);
}

/** The injector methods that are the same for both: preflight, heal and dispose of the lab's guest. */
export function labVmMethods(ctx: InjectorContext): Pick<Injector, 'preflight' | 'heal' | 'dispose'> {
  return {
    async preflight() {
      await preflightVm(ctx);
    },
    async heal() {
      const { lab } = labVm(ctx);
      return healVm(lab);
    },
    async dispose() {
      // the connection is per process and per QEMU: close it so nothing keeps the event loop alive
      const lab = ctx.target.lab && labStateOf(ctx.target.lab);
      const vm = lab ? readVmState(lab) : null;
      if (vm) dropQmp(vm.current);
    },
  };
}

/** Run-clock ms of a QMP event, from QEMU's own timestamp. */
export function eventAt(clock: Clock, ev: QmpEvent): number {
  return clock.fromWallMs(eventWallMs(ev));
}

/**
 * Writes the journal and starts the watchdog before anything pauses the
 * guest; from then on a kill -9 of the harness leaves the guest to the
 * watchdog. Returns the watchdog's PID.
 */
export async function armWatchdog(lab: LabState, j: MigrationJournal): Promise<number> {
  writeJournal(lab, j);
  const pid = await spawnWatchdog(lab, j.driverPid, j.deadlineWallMs);
  j.watchdogPid = pid;
  writeJournal(lab, j);
  return pid;
}

/**
 * Before the guest is touched: journals the started destination (from here on
 * heal knows it, so a failure before the migration begins removes it again),
 * connects to it, runs `setup` (migration parameters and the like) and arms the
 * watchdog. On any failure the destination is dropped and healed away.
 */
export async function prepareMigration(lab: LabState, journal: MigrationJournal, dest: VmInstance, setup: (dstQ: QmpClient) => Promise<void>): Promise<QmpClient> {
  writeJournal(lab, journal);
  try {
    const dstQ = await qmpOf(dest);
    await setup(dstQ);
    await armWatchdog(lab, journal);
    return dstQ;
  } catch (e) {
    dropQmp(dest);
    await healVm(lab).catch(() => {});
    throw e;
  }
}

/** Normal completion: the watchdog is ended by PID, then the journal goes. */
export async function disarmWatchdog(lab: LabState, j: MigrationJournal): Promise<void> {
  await endWatchdog(lab, j.watchdogPid);
  removeJournal(lab);
}

export interface SameMachine {
  bootIdBefore: string;
  bootIdAfter: string | null;
  sameBootId: boolean;
  /** the switch port the bridge learned the guest MAC on after the migration */
  macPort: string | null;
  macMoved: boolean;
  error?: string;
}

/** After a migration: is it the same machine (boot id), and did the bridge relearn the MAC on the new tap? Bounded. */
export async function checkSameMachine(lab: LabState, vm: VmState, newTap: string, timeoutMs = 10_000): Promise<SameMachine> {
  const res: SameMachine = { bootIdBefore: vm.bootId, bootIdAfter: null, sameBootId: false, macPort: null, macMoved: false };
  try {
    res.bootIdAfter = await fetchBootIdRetry(vm.address, timeoutMs);
    res.sameBootId = res.bootIdAfter === vm.bootId;
  } catch (e) {
    res.error = (e as Error).message;
  }
  // the HTTP exchange above made the guest send frames, so the bridge has seen it by now if it ever will
  const deadline = Date.now() + 3000;
  for (;;) {
    res.macPort = await bridgePortOf(lab, vm.mac);
    res.macMoved = res.macPort === newTap;
    if (res.macMoved || Date.now() > deadline) break;
    await sleep(100);
  }
  return res;
}

/** What both injectors hold of a migration in flight. */
export interface MigrationFlight {
  lab: LabState;
  vm: VmState;
  journal: MigrationJournal;
  src: VmInstance;
  dest: VmInstance;
  srcQ: QmpClient;
  dstQ: QmpClient;
}

/**
 * After a migration that failed or was aborted: whatever state it died in, heal
 * finds the guest and resumes it. An abort (reason other than 'scheduled': an
 * error elsewhere, Ctrl-C) is recorded, with `figures`, and ends at the heal;
 * a failed scheduled restore throws, with the heal's actions and the guest console.
 */
export async function healFailedMigration(ctx: InjectorContext, kind: string, f: MigrationFlight, reason: string, error: unknown, figures: Record<string, unknown> = {}): Promise<Instant> {
  const before = ctx.clock.now();
  dropQmp(f.src);
  dropQmp(f.dest);
  let actions: string[];
  try {
    actions = await healVm(f.lab);
  } catch (h) {
    actions = [`heal failed: ${(h as Error).message}`];
  }
  const t = ctx.clock.now();
  if (reason !== 'scheduled') {
    ctx.info({ injector: kind, aborted: reason, error: (error as Error).message, heal: actions, ...figures });
    return { before, t, detail: { aborted: reason, heal: actions } };
  }
  throw new Error(`${kind}: the migration failed: ${(error as Error).message}; heal: ${actions.join('; ')}${consoleTail(f.vm)}`);
}

/** An instance as the injector-info records it. */
export function instanceRef(inst: VmInstance): { pid: number; tap: string; generation: number } {
  return { pid: inst.pid, tap: inst.tap, generation: inst.generation };
}

/** The same-machine check in one phrase, for the run's log. */
export function sameMachineText(same: SameMachine): string {
  return `boot id ${same.sameBootId ? 'unchanged' : `CHANGED or unread (${same.error ?? same.bootIdAfter})`}, MAC on ${same.macPort ?? '?'}`;
}

/** QEMU's own figures of one migration (query-migrate), as the injector-info records them. */
export function migrationFigures(m: MigrationInfo): Record<string, unknown> {
  return {
    status: m.status,
    totalTimeMs: m['total-time'],
    downtimeMs: m.downtime,
    setupTimeMs: m['setup-time'],
    transferredBytes: m.ram?.transferred,
    ramTotalBytes: m.ram?.total,
    normalPages: m.ram?.normal,
    duplicatePages: m.ram?.duplicate,
    mbps: m.ram?.mbps,
  };
}

/** The console tail, for error messages (a failed migration says what the guest printed). */
export function consoleTail(vm: VmState, lines = 20): string {
  return existsSync(vm.console) ? `\n--- guest console (last lines) ---\n${tail(vm.console, lines)}` : '';
}

/** Waits until `pid` has exited (bounded; a zombie has exited); SIGKILL after the bound. */
export async function waitExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (processGone(pid)) return true;
    await sleep(5);
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return true;
  }
  return false;
}
