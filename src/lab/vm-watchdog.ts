/**
 * The detached watchdog of one VM migration (started by vm-heal.ts
 * `spawnWatchdog`, in its own session, so it outlives a kill -9 of the harness).
 *
 *   node vm-watchdog.js LAB DRIVER_PID DEADLINE_WALL_MS VM_DIR/
 *   (from the sources: node --import tsx vm-watchdog.ts …; core/runtime.ts nodeArgv picks)
 *
 * It polls every 50 ms: when the migration journal is gone (the driver
 * finished normally) it exits; when the driver's PID is gone, or the deadline
 * passes, it heals the guest (`healVm`) and exits. The driver normally ends it
 * by PID before that. VM_DIR is only there so `vmDown` can find this process.
 */
import { pidAlive } from '../transport/exec.ts';
import { readLabState } from './state.ts';
import { healVm, readJournal } from './vm-heal.ts';

const [labName = '', driverArg = '', deadlineArg = ''] = process.argv.slice(2);
const driverPid = Number(driverArg);
const deadlineWallMs = Number(deadlineArg);
const say = (line: string) => process.stdout.write(`${new Date().toISOString()} watchdog ${process.pid} ${line}\n`);

async function main(): Promise<number> {
  const lab = readLabState(labName);
  if (!lab || !Number.isInteger(driverPid) || !Number.isFinite(deadlineWallMs)) {
    say(`bad arguments or no lab: ${process.argv.slice(2).join(' ')}`);
    return 2;
  }
  // ignore SIGINT/SIGHUP from the terminal the harness ran in: only our driver's
  // death or the deadline matter; the driver ends us with SIGTERM
  process.on('SIGINT', () => {});
  process.on('SIGHUP', () => {});
  say(`ready: watching driver pid ${driverPid} until ${new Date(deadlineWallMs).toISOString()}`);
  for (;;) {
    const j = readJournal(lab);
    if (!j) {
      say('journal gone: the migration finished; exiting');
      return 0;
    }
    if (j.watchdogPid !== undefined && j.watchdogPid !== process.pid) {
      say(`journal belongs to watchdog ${j.watchdogPid}; exiting`);
      return 0;
    }
    const why = !pidAlive(driverPid) ? `driver pid ${driverPid} died` : Date.now() > deadlineWallMs ? 'deadline passed' : null;
    if (why) {
      say(`${why} during a ${j.migration} migration (phase ${j.phase}): healing`);
      try {
        const actions = await healVm(lab, { by: 'watchdog' });
        for (const a of actions) say(`  ${a}`);
        say('healed');
        return 0;
      } catch (e) {
        say(`heal failed: ${(e as Error).stack ?? e}`);
        return 1;
      }
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    say(`crashed: ${(e as Error).stack ?? e}`);
    process.exit(1);
  },
);
