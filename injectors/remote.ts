/**
 * What the real-estate adapters share: the `ssh:` block of an injector, the
 * executor (local / SSH / dry-run), timed commands on the run clock, and the
 * restore watchdogs that do not depend on the harness staying alive:
 *
 *  - POSIX (local or over SSH): a detached `sh` under nohup that sleeps until
 *    the deadline and then runs the restore; disarmed with `kill PID` after a
 *    normal restore. It survives kill -9 of the harness and a dropped SSH
 *    session (its stdio is /dev/null, so sshd does not wait for it).
 *  - PowerShell (Windows): a one-shot scheduled task running as SYSTEM,
 *    unregistered after a normal restore.
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { Clock } from '../src/clock.ts';
import { duration } from '../src/schema-util.ts';
import { makeExecutor, powershellCommandLine, psQuote, type Command, type ExecOptions, type ExecResult, type Executor, type SecretRef, type SshSettings } from '../src/ssh-exec.ts';
import type { InjectorContext } from './types.ts';

const hostname = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$|^\[?[0-9A-Fa-f:.]+\]?$/, 'expected a host name or an IP address');
const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected an environment variable name');

/** `ssh:` of an injector: where its commands run. Secrets only by reference. */
export const sshSchema = z
  .strictObject({
    host: hostname,
    port: z.number().int().min(1).max(65535).default(22),
    user: z.string().regex(/^[A-Za-z_][A-Za-z0-9_.\\-]{0,63}$/, 'expected a user name'),
    privateKeyFile: z.string().min(1).optional(),
    passphraseEnv: envName.optional(),
    passphraseFile: z.string().min(1).optional(),
    passwordEnv: envName.optional(),
    passwordFile: z.string().min(1).optional(),
    hostKey: z.string().regex(/^SHA256:[A-Za-z0-9+/]{43}=?$/, 'expected a host key fingerprint "SHA256:…" (ssh-keygen -lf KEY.pub)').optional(),
    knownHostsFile: z.string().min(1).optional(),
    connectTimeout: duration({ min: 100, max: 300_000 }).default(15_000),
  })
  .refine((s) => s.hostKey || s.knownHostsFile, { message: 'give hostKey: "SHA256:…" or knownHostsFile: the host key must be verified' });
export type SshConfig = z.infer<typeof sshSchema>;

/**
 * The name of one VM (or host, switch, adapter) on a hypervisor: exactly one
 * object. Hyper-V's -Name takes wildcards (`*` would pause every VM on the
 * host) and govc / virsh read a positional name starting with "-" as a flag:
 * glob characters and a leading "-" are refused; the adapters also put "--"
 * before positional names.
 */
export function exactName(max: number) {
  return z
    .string()
    .min(1)
    .max(max)
    .regex(/^[^\0\r\n]+$/, 'expected a name on one line')
    .regex(/^[^-]/, 'expected a name that does not start with "-" (it would be read as an option)')
    .regex(/^[^*?[\]]+$/, 'expected an exact name: the wildcard characters * ? [ ] would match other VMs too');
}

/** A secret reference in an injector block: { env: NAME } or { file: PATH }. */
export const secretSchema = z.union([z.strictObject({ env: envName }), z.strictObject({ file: z.string().min(1) })]);

/** Fields every remote adapter has. */
export const remoteFields = {
  /** where the commands run; omit to run them on this machine */
  ssh: sshSchema.optional(),
  /** bound on every single command (the connect included) */
  timeout: duration({ min: 100, max: 3_600_000 }).default(30_000),
  /** the watchdog restores this long after the requested end if the harness has died */
  grace: duration({ min: 0, max: 3_600_000 }).optional(),
};

export function sshSettings(c: SshConfig | undefined): SshSettings | undefined {
  if (!c) return undefined;
  return {
    host: c.host.replace(/^\[|\]$/g, ''),
    port: c.port,
    user: c.user,
    privateKeyFile: c.privateKeyFile,
    passphraseEnv: c.passphraseEnv,
    passphraseFile: c.passphraseFile,
    passwordEnv: c.passwordEnv,
    passwordFile: c.passwordFile,
    hostKey: c.hostKey,
    knownHostsFile: c.knownHostsFile,
    connectTimeoutMs: c.connectTimeout,
  };
}

export function describeSsh(c: SshConfig | undefined): Record<string, unknown> {
  if (!c) return { runsOn: 'local' };
  return {
    runsOn: `ssh ${c.user}@${c.host}:${c.port}`,
    hostKey: c.hostKey ?? `known_hosts ${c.knownHostsFile}`,
    auth: c.privateKeyFile ? `key ${c.privateKeyFile}` : c.passwordEnv ? `password from env ${c.passwordEnv}` : c.passwordFile ? `password from file ${c.passwordFile}` : 'agent',
  };
}

/** The adapter's executor (created once), honouring --dry-run. */
export function executorFor(ctx: InjectorContext, ssh: SshConfig | undefined): Executor {
  return makeExecutor(sshSettings(ssh), ctx.dryRun);
}

export interface Timed {
  before: number;
  t: number;
  result: ExecResult;
}

/** Runs one command with its instants on the run clock taken right around it. */
export async function timed(ex: Executor, clock: Clock, cmd: Command, opts: ExecOptions): Promise<Timed> {
  const before = clock.now();
  const result = await ex.exec(cmd, opts);
  return { before, t: clock.now(), result };
}

// ---------------------------------------------------------------- POSIX watchdog

const WATCHDOG_PRELUDE = `trap 'kill "$s" 2>/dev/null; exit 0' TERM
sleep "$1" & s=$!
wait "$s"
shift
`;

export interface Watchdog {
  /** run-clock ms when it fires */
  firesAt: number;
  id: string;
  disarm(): Promise<void>;
}

/**
 * Arms a POSIX watchdog (local or remote): after `delayMs` it runs `restore`
 * (an argv, or a fixed script of this project taking its arguments as "$@").
 */
export async function armPosixWatchdog(
  ex: Executor,
  clock: Clock,
  delayMs: number,
  restore: { argv: string[] } | { script: string; args: string[] },
  env: Record<string, string | SecretRef> | undefined,
  timeoutMs: number,
): Promise<Watchdog> {
  const secs = (Math.max(0, delayMs) / 1000).toFixed(3);
  const script = 'argv' in restore ? `${WATCHDOG_PRELUDE}exec "$@"\n` : WATCHDOG_PRELUDE + restore.script;
  const args = 'argv' in restore ? [secs, ...restore.argv] : [secs, ...restore.args];
  const firesAt = clock.now() + delayMs;
  const r = await ex.exec({ posixScript: script, args, env, detach: true }, { timeoutMs, label: 'arm watchdog' });
  const pid = r.dryRun ? 'PID' : r.stdout.trim().split('\n').pop()?.trim() ?? '';
  if (!r.dryRun && !/^\d+$/.test(pid)) throw new Error(`${ex.where}: the watchdog did not report its PID (got ${JSON.stringify(r.stdout.slice(0, 200))})`);
  return {
    firesAt,
    id: pid,
    async disarm() {
      await ex.exec({ argv: ['kill', pid] }, { timeoutMs, allowFail: true, label: 'disarm watchdog' });
    },
  };
}

// ---------------------------------------------------------------- PowerShell watchdog

/** A PowerShell script that stops at the first error and exits 1 with the error text on stderr. */
export function psStrict(body: string): string {
  return `$ErrorActionPreference = 'Stop'\n$ProgressPreference = 'SilentlyContinue'\ntry {\n${body}\n} catch {\n  [Console]::Error.WriteLine($_.Exception.Message)\n  exit 1\n}`;
}

export const PS_TASK_PREFIX = 'blackout-restore-';

/** Arms a one-shot scheduled task (as SYSTEM) that runs `restoreScript` at the deadline. */
export async function armPowershellWatchdog(ex: Executor, clock: Clock, delayMs: number, restoreScript: string, timeoutMs: number): Promise<Watchdog> {
  const id = `${PS_TASK_PREFIX}${randomBytes(4).toString('hex')}`;
  const inner = powershellCommandLine(restoreScript).replace(/^powershell\.exe /, '');
  const secs = Math.ceil(delayMs / 1000);
  const script = psStrict(
    [
      `$action = New-ScheduledTaskAction -Execute 'powershell.exe' -Argument ${psQuote(inner)}`,
      `$trigger = New-ScheduledTaskTrigger -Once -At ((Get-Date).AddSeconds(${secs}))`,
      `Register-ScheduledTask -TaskName ${psQuote(id)} -Description 'blackout: restores the VM if the harness died' -Action $action -Trigger $trigger -User 'SYSTEM' -RunLevel Highest -Force | Out-Null`,
    ].join('\n'),
  );
  const firesAt = clock.now() + secs * 1000;
  await ex.exec({ powershell: script }, { timeoutMs, label: 'arm watchdog' });
  return {
    firesAt,
    id,
    async disarm() {
      await ex.exec({ powershell: `Unregister-ScheduledTask -TaskName ${psQuote(id)} -Confirm:$false -ErrorAction SilentlyContinue` }, { timeoutMs, allowFail: true, label: 'disarm watchdog' });
    },
  };
}
