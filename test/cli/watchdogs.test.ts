/**
 * Watchdogs that outlive anything (real processes on this machine, and the
 * recording SSH server for Hyper-V):
 *  - a watchdog's restore is retried until it succeeds (the first `qm start`
 *    after a slow hibernate fails);
 *  - a local watchdog runs outside the harness's process tree: a systemd timer
 *    where systemd is PID 1 (and we are root), else a setsid'd process in its
 *    own session; the cut says which;
 *  - the next run's heal ends the watchdogs a dead run left armed (from the
 *    journal of the armed watchdogs), Hyper-V's only by their exact task name.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClock, sleep } from '../../src/core/clock.ts';
import { LocalExecutor } from '../../src/transport/ssh-exec.ts';
import { armPosixWatchdog, recordWatchdog, journalFile } from '../../src/injectors/shared/remote.ts';
import { makeInjector } from '../helpers/injector.ts';
import { startFakeSsh, type FakeSsh } from '../helpers/fake-ssh.ts';
import { tempDir } from '../helpers/lab.ts';

const systemd = existsSync('/run/systemd/system') && process.getuid?.() === 0;
const deadPid = () => spawnSync('true').pid!; // a process that has exited: its run is gone
const sessionOf = (pid: number) => Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[3]);
const alive = (pid: number) => existsSync(`/proc/${pid}`) && !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await sleep(50);
  }
  return cond();
}

describe('local POSIX watchdog', () => {
  it('retries its restore until it succeeds, outside the harness process tree, and says how it was armed', async () => {
    const dir = tempDir('blackout-wd-');
    const tally = join(dir, 'tries');
    const ex = new LocalExecutor();
    // the restore fails twice (a VM still saving), then works
    const restore = ['sh', '-c', 'echo x >> "$0"; [ "$(wc -l < "$0")" -ge 3 ]', tally];
    const dog = await armPosixWatchdog(ex, createClock(), 200, { argv: restore }, undefined, 5000, { tries: 10, everyS: 0.2 });
    if (systemd) expect(dog.mechanism).toMatch(/^systemd timer blackout-watchdog-[0-9a-f]{8} on local$/);
    else {
      expect(dog.mechanism).toMatch(/^detached process \d+ on local$/);
      // its own session: a signal to the harness's process group or session does not reach it
      // (nohup execs setsid, which execs sh: the new session exists a moment after the PID is reported)
      expect(await until(() => !alive(Number(dog.id)) || sessionOf(Number(dog.id)) !== sessionOf(process.pid), 3000)).toBe(true);
      if (alive(Number(dog.id))) expect(sessionOf(Number(dog.id))).not.toBe(sessionOf(process.pid));
    }
    expect(await until(() => existsSync(tally) && readFileSync(tally, 'utf8').split('\n').filter(Boolean).length >= 3, 10_000)).toBe(true);
    await sleep(600);
    // it stopped once the restore succeeded
    expect(readFileSync(tally, 'utf8').split('\n').filter(Boolean)).toHaveLength(3);
    if (!systemd) expect(await until(() => !alive(Number(dog.id)), 3000)).toBe(true);
  });
});

describe('heal ends a dead run’s watchdogs', () => {
  it('command (local): the next run’s heal kills the watchdog a dead run left, so it never restores inside the new run', async () => {
    const dir = tempDir('blackout-heal-');
    const fired = join(dir, 'fired');
    const block = { kind: 'command', cut: ['true'], restore: ['touch', fired], grace: '3s' };
    // the dead run: cut, then it "died" (no restore); its journal entry names a process that is gone
    const dead = makeInjector(block);
    const cut = await dead.injector.cut(500);
    const id = String(cut.detail!.watchdog);
    expect(String(cut.detail!.watchdogMechanism)).toMatch(systemd ? /systemd timer/ : /detached process/);
    const key = `command local ${JSON.stringify(block.restore)}`;
    expect(existsSync(journalFile(key))).toBe(true);
    recordWatchdog(key, { id, mechanism: String(cut.detail!.watchdogMechanism), pid: deadPid(), runDir: '/runs/dead', armedAtWallMs: Date.now() });
    // the next run heals before its first trial
    const next = makeInjector(block);
    const healed = await next.injector.heal();
    expect(healed.join('\n')).toMatch(/ended the watchdog .* armed by a dead run \(\/runs\/dead\)/);
    await sleep(4500); // past the dead run's deadline (0.5 s + 3 s grace)
    expect(existsSync(fired)).toBe(false);
    // once ended and forgotten, there is nothing left to end
    expect(await makeInjector(block).injector.heal()).toEqual([]);
  });

  describe('hyperv over SSH', () => {
    let fake: FakeSsh;
    beforeAll(async () => {
      fake = await startFakeSsh({ user: 'ops' });
    });
    afterAll(async () => {
      await fake.close();
    });

    it('heal removes the dead run’s own task by its exact name, not every blackout task', async () => {
      fake.rules.push({ match: ').State', stdout: 'Running\r\n' });
      const ssh = { host: fake.host, port: fake.port, user: fake.user, privateKeyFile: fake.privateKeyFile, hostKey: fake.hostKey };
      const block = { kind: 'hyperv', ssh, vm: 'app01', mode: 'pause' };
      const first = makeInjector(block);
      await first.injector.preflight();
      const cut = await first.injector.cut(1000);
      const task = String(cut.detail!.watchdog);
      expect(task).toMatch(/^blackout-restore-[0-9a-f]{8}-[0-9a-f]{8}$/);
      // the run dies: its journal entry now names a process that is gone
      const key = `hyperv ssh ops@${fake.host}:${fake.port} ${JSON.stringify({ vm: 'app01' })}`;
      recordWatchdog(key, { id: task, mechanism: `scheduled task ${task}`, pid: deadPid(), runDir: '/runs/dead', armedAtWallMs: Date.now() });
      await first.injector.dispose?.();
      fake.recorded.length = 0;
      const next = makeInjector(block);
      const healed = await next.injector.heal();
      await next.injector.dispose?.();
      const bodies = fake.commands();
      expect(bodies.some((b) => b.includes(`Unregister-ScheduledTask -TaskName '${task}' -Confirm:$false`))).toBe(true);
      expect(bodies.some((b) => b.includes('blackout-restore-*'))).toBe(false);
      expect(healed.join('\n')).toContain(`scheduled task ${task}`);
    });
  });
});
