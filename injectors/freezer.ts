/**
 * The lab target's cgroup v1 freezer, with a detached watchdog that thaws it
 * at the deadline if the harness dies (the freezer has no kernel timeout).
 */
import { childEnv } from '../src/child-env.ts';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { sleep } from '../src/clock.ts';
import type { LabState } from '../src/lab/lab.ts';

export class Freezer {
  private watchdogPid: number | null = null;
  constructor(private readonly lab: LabState) {}

  /** the armed watchdog's PID, so a later run can end one a dead run left armed */
  private get pidFile(): string {
    return `${this.lab.dir}/freezer-watchdog.pid`;
  }

  private get stateFile(): string {
    return `${this.lab.cgroup}/freezer.state`;
  }

  state(): string {
    return existsSync(this.stateFile) ? readFileSync(this.stateFile, 'utf8').trim() : 'MISSING';
  }

  /** Arms the watchdog: a detached `sh` in its own session that thaws after `ms`. */
  armWatchdog(ms: number): void {
    const child = spawn('sh', ['-c', 'sleep "$0"; echo THAWED > "$1"', (ms / 1000).toFixed(3), this.stateFile], {
      detached: true,
      stdio: 'ignore',
      env: childEnv(),
    });
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
    if (!existsSync(this.stateFile)) throw new Error(`the lab's freezer cgroup ${this.lab.cgroup} is missing: is the lab up?`);
    writeFileSync(this.stateFile, 'FROZEN');
    for (let i = 0; i < 200 && this.state() !== 'FROZEN'; i++) await sleep(5);
  }

  thaw(): void {
    if (existsSync(this.stateFile)) writeFileSync(this.stateFile, 'THAWED');
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
      if (cmd.includes(this.stateFile)) {
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
