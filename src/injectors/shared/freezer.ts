/**
 * The lab target's cgroup freezer, v1 (`freezer.state`: FROZEN/THAWED) or v2
 * (`cgroup.freeze`: 1/0, confirmed by `frozen 1` in `cgroup.events`), whichever
 * the lab's cgroup was made in (src/lab/cgroup.ts), with a detached watchdog
 * that thaws it at the deadline if the harness dies (neither freezer has a
 * kernel timeout).
 */
import { spawn } from 'node:child_process';
import { childEnv } from '../../transport/child-env.ts';
import { spawnWithoutSendLease } from '../../lab/lease.ts';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { sleep } from '../../core/clock.ts';
import { cgroupVersion, thawCgroup } from '../../lab/cgroup.ts';

export { thawCgroup };
import type { LabState } from '../../lab/state.ts';

/** Thaws a lab cgroup of either version (lab down, heal); no-op when it is gone. */

export class Freezer {
  private watchdogPid: number | null = null;
  constructor(private readonly lab: LabState) {}

  /** the armed watchdog's PID, so a later run can end one a dead run left armed */
  private get pidFile(): string {
    return `${this.lab.dir}/freezer-watchdog.pid`;
  }

  /** 1 or 2; null when the lab's cgroup is missing */
  get version(): 1 | 2 | null {
    return cgroupVersion(this.lab.cgroup);
  }

  /** the file a write freezes or thaws, and the value that thaws */
  private get control(): { file: string; thawed: string; frozen: string } {
    return this.version === 2 ? { file: `${this.lab.cgroup}/cgroup.freeze`, thawed: '0', frozen: '1' } : { file: `${this.lab.cgroup}/freezer.state`, thawed: 'THAWED', frozen: 'FROZEN' };
  }

  /** FROZEN, FREEZING, THAWED or MISSING, for either version */
  state(): string {
    const v = this.version;
    if (v === null) return 'MISSING';
    if (v === 1) return readFileSync(`${this.lab.cgroup}/freezer.state`, 'utf8').trim();
    const wanted = readFileSync(`${this.lab.cgroup}/cgroup.freeze`, 'utf8').trim() === '1';
    const frozen = /^frozen 1$/m.test(readFileSync(`${this.lab.cgroup}/cgroup.events`, 'utf8'));
    return frozen ? 'FROZEN' : wanted ? 'FREEZING' : 'THAWED';
  }

  /** Arms the watchdog: a detached `sh` in its own session that thaws after `ms`. */
  armWatchdog(ms: number): void {
    const { file, thawed } = this.control;
    const child = spawnWithoutSendLease(() =>
      spawn('sh', ['-c', 'sleep "$0"; echo "$2" > "$1"', (ms / 1000).toFixed(3), file, thawed], {
        detached: true,
        stdio: 'ignore',
        env: childEnv(),
      }),
    );
    child.unref();
    this.watchdogPid = child.pid ?? null;
    if (this.watchdogPid !== null) writeFileSync(this.pidFile, String(this.watchdogPid));
  }

  disarmWatchdog(): void {
    if (this.watchdogPid !== null) {
      try {
        process.kill(this.watchdogPid, 'SIGKILL');
      } catch {
        /* it already fired */
      }
      this.watchdogPid = null;
      rmSync(this.pidFile, { force: true });
    }
  }

  /** Freezes every process of the target; resolves once the kernel reports FROZEN. */
  async freeze(): Promise<void> {
    if (this.version === null) throw new Error(`the lab's freezer cgroup ${this.lab.cgroup} is missing: is the lab up?`);
    const { file, frozen } = this.control;
    writeFileSync(file, frozen);
    for (let i = 0; i < 200 && this.state() !== 'FROZEN'; i++) await sleep(5);
  }

  thaw(): void {
    thawCgroup(this.lab.cgroup);
  }

  heal(): string[] {
    const actions: string[] = [];
    // a dead run's watchdog would thaw a later run's freeze early: end it (by PID, after checking it is ours)
    if (existsSync(this.pidFile)) {
      const pid = Number(readFileSync(this.pidFile, 'utf8'));
      let cmd = '';
      try {
        cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      } catch {
        /* gone */
      }
      if (cmd.includes(this.lab.cgroup)) {
        process.kill(pid, 'SIGKILL');
        actions.push(`ended the freezer watchdog (pid ${pid}) a dead run left armed`);
      }
      rmSync(this.pidFile, { force: true });
    }
    if (this.state() === 'FROZEN' || this.state() === 'FREEZING') {
      this.thaw();
      actions.push(`thawed the frozen target processes of lab ${this.lab.name}`);
    }
    return actions;
  }
}
