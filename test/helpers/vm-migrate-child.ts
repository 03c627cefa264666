/**
 * A harness stand-in for the VM tests: starts one migration of the lab's guest
 * with the named injector and prints "cut <run-clock ms>" once the guest is
 * paused; then it waits for the test to kill it with SIGKILL (the watchdog's
 * case) — or, if not killed, finishes the migration normally.
 *
 *   node --import tsx test/helpers/vm-migrate-child.ts LAB quick|live
 */
import { createClock } from '../../src/core/clock.ts';
import { readLabState } from '../../src/lab/state.ts';
import { readVmState, vmTarget } from '../../src/lab/vm.ts';
import { readJournal } from '../../src/lab/vm-heal.ts';
import { qemuLive } from '../../src/injectors/qemu-live.ts';
import { qemuQuick } from '../../src/injectors/qemu-quick.ts';

const [labName = '', which = 'quick'] = process.argv.slice(2);
const lab = readLabState(labName);
const vm = lab && readVmState(lab);
if (!lab || !vm) throw new Error(`lab ${labName} has no VM`);
const ctx = {
  target: vmTarget(lab, vm),
  clock: createClock(),
  runDir: vm.dir,
  log: (l: string) => process.stdout.write(`log ${l}\n`),
  info: (d: Record<string, unknown>) => process.stdout.write(`info ${JSON.stringify(d)}\n`),
};
const injector =
  which === 'live'
    ? qemuLive.create(qemuLive.schema.parse({ kind: 'qemu-live', bandwidth: '16MB' }), ctx)
    : qemuQuick.create(qemuQuick.schema.parse({ kind: 'qemu-quick', emulate: { memory: '640MB', link: '1GbE' } }), ctx);
if (which === 'live') {
  // a throttled live migration: "cut" is printed once the pre-copy runs (the guest still runs) and the
  // watchdog is armed; under load, starting the destination QEMU and the watchdog alone can take seconds
  const cut = injector.cut(0);
  const poll = setInterval(() => {
    const j = readJournal(lab);
    if (j?.phase === 'migrating' && j.watchdogPid !== undefined) {
      clearInterval(poll);
      process.stdout.write(`cut ${ctx.clock.now()}\n`);
    }
  }, 20);
  await cut;
  clearInterval(poll);
} else {
  const c = await injector.cut(0);
  process.stdout.write(`cut ${c.t}\n`);
}
await injector.restore('scheduled');
process.stdout.write('done\n');
