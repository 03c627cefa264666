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
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import type { Clock } from '../../core/clock.ts';
import { duration } from '../../core/schema-util.ts';
import { makeExecutor, powershellCommandLine, psQuote, type Command, type ExecOptions, type ExecResult, type Executor, type SecretRef, type SshSettings } from '../../transport/ssh-exec.ts';
import type { InjectorContext } from '../../core/injector.ts';

const hostname = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$|^\[?[0-9A-Fa-f:.]+\]?$/, 'expected a host name or an IP address');
const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected an environment variable name');

/** `ssh:` of an injector: where its commands run. Secrets only by reference. */
export const sshSchema = z
  .strictObject({
    host: hostname.describe('the machine the commands run on'),
    port: z.number().int().min(1).max(65535).default(22).describe('its SSH port'),
    user: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_.\\-]{0,63}$/, 'expected a user name')
      .describe('the user to log in as'),
    privateKeyFile: z.string().min(1).optional().describe('a private key file to log in with'),
    passphraseEnv: envName.optional().describe("the environment variable holding the key's passphrase"),
    passphraseFile: z.string().min(1).optional().describe("a file holding the key's passphrase"),
    passwordEnv: envName.optional().describe('the environment variable holding the password'),
    passwordFile: z.string().min(1).optional().describe('a file holding the password'),
    hostKey: z
      .string()
      .regex(/^SHA256:[A-Za-z0-9+/]{43}=?$/, 'expected a host key fingerprint "SHA256:…" (ssh-keygen -lf KEY.pub)')
      .optional()
      .describe('the host key fingerprint, "SHA256:…" (ssh-keygen -lf KEY.pub); this or knownHostsFile is needed'),
    knownHostsFile: z.string().min(1).optional().describe('a known_hosts file holding the host key; this or hostKey is needed'),
    connectTimeout: duration({ min: 100, max: 300_000 }).default(15_000).describe('how long connecting and logging in may take'),
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
export const secretSchema = z.union([
  z.strictObject({ env: envName.describe('the environment variable holding the secret') }),
  z.strictObject({ file: z.string().min(1).describe('a file holding the secret') }),
]);

/** Fields every remote adapter has. */
export const remoteFields = {
  ssh: sshSchema.optional().describe('where the commands run; omit to run them on this machine'),
  timeout: duration({ min: 100, max: 3_600_000 }).default(30_000).describe('bound on every single command (the connect included)'),
  grace: duration({ min: 0, max: 3_600_000 }).optional().describe('the watchdog restores this long after the requested end if the harness has died'),
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

/**
 * A restore command in a watchdog runs until it succeeds: right after a slow
 * cut (an 8 GB hibernate still saving) the first `qm start` fails, the third
 * works. Every RETRY_EVERY_S seconds, at most RETRY_TRIES times (10 minutes).
 */
export const RETRY_TRIES = 120;
export const RETRY_EVERY_S = 5;
const RETRY_ARGV = `tries=$1; every=$2; shift 2
i=1
until "$@"; do
  [ "$i" -ge "$tries" ] && exit 1
  i=$((i + 1)); sleep "$every"
done
`;

/**
 * How a POSIX watchdog is started, decided where it runs: as a systemd timer
 * (`systemd-run --on-active`) when systemd is PID 1 there and we are root, so
 * it lives outside the harness's process tree, SSH session and cgroup (a
 * `systemctl stop`, a cancelled CI job, logind ending the user's processes do
 * not reach it); otherwise a detached `setsid nohup sh`. A watchdog that needs
 * secrets in its environment always takes the second way: a transient unit
 * would hold them on its command line. Prints "systemd:UNIT" or "pid:PID".
 */
const ARM = `secs=$1; unit=$2; mode=$3; script=$4; shift 4
if [ "$mode" = auto ] && [ -d /run/systemd/system ] && [ "$(id -u)" = 0 ] && command -v systemd-run >/dev/null 2>&1 &&
   systemd-run --quiet --collect --unit="$unit" --on-active="$secs" --timer-property=AccuracySec=100ms -- /bin/sh -c "$script" blackout-watchdog 0 "$@" >/dev/null 2>&1; then
  echo "systemd:$unit"
else
  s=; command -v setsid >/dev/null 2>&1 && s=setsid
  nohup $s /bin/sh -c "$script" blackout-watchdog "$secs" "$@" </dev/null >/dev/null 2>&1 &
  echo "pid:$!"
fi
`;

export interface Watchdog {
  /** run-clock ms by which it has fired (taken after arming returned: its own wait began earlier) */
  firesAt: number;
  id: string;
  /** what carries it: "systemd timer UNIT", "detached process PID", "scheduled task NAME" (the report says which armed each restore) */
  mechanism: string;
  disarm(): Promise<void>;
}

/** The watchdog ids of this project in a dead run's events, as recorded in its cut events (heal ends them). */
export function watchdogIdsFrom(detail: Record<string, unknown> | undefined): string[] {
  const id = detail?.watchdog;
  return typeof id === 'string' && id ? [id] : [];
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
  retry: { tries: number; everyS: number } = { tries: RETRY_TRIES, everyS: RETRY_EVERY_S },
): Promise<Watchdog> {
  const secs = (Math.max(0, delayMs) / 1000).toFixed(3);
  // the watchdog's first argument is its delay ("0" under a systemd timer, which did the waiting)
  const body = 'argv' in restore ? RETRY_ARGV : restore.script;
  const bodyArgs = 'argv' in restore ? [String(retry.tries), String(retry.everyS), ...restore.argv] : restore.args;
  const script = WATCHDOG_PRELUDE + body;
  const unit = `blackout-watchdog-${randomBytes(4).toString('hex')}`;
  const mode = env && Object.keys(env).length ? 'detached' : 'auto';
  const r = await ex.exec({ posixScript: ARM, args: [secs, unit, mode, script, ...bodyArgs], env }, { timeoutMs, label: 'arm watchdog' });
  // the latest instant it fires: its wait began where it runs before this call returned (over SSH that is
  // up to a round trip after the call started, so a deadline taken before the call would come too early)
  const firesAt = clock.now() + delayMs;
  const out = r.dryRun ? 'pid:PID' : (r.stdout.trim().split('\n').pop()?.trim() ?? '');
  const m = /^(systemd:(blackout-watchdog-[0-9a-f]{8})|pid:(\d+|PID))$/.exec(out);
  if (!m) throw new Error(`${ex.where}: the watchdog did not report how it was armed (got ${JSON.stringify(r.stdout.slice(0, 200))})`);
  const id = m[2] ? `systemd:${m[2]}` : m[3]!;
  return {
    firesAt,
    id,
    mechanism: m[2] ? `systemd timer ${m[2]} on ${ex.where}` : `detached process ${m[3]} on ${ex.where}`,
    async disarm() {
      await disarmPosixWatchdog(ex, id, timeoutMs);
    },
  };
}

/** Ends a POSIX watchdog by its id: a systemd timer (and its service) or a detached process. */
export async function disarmPosixWatchdog(ex: Executor, id: string, timeoutMs: number): Promise<boolean> {
  if (id.startsWith('systemd:')) {
    const unit = id.slice(8);
    if (!/^blackout-watchdog-[0-9a-f]{8}$/.test(unit)) return false;
    const r = await ex.exec({ argv: ['systemctl', 'stop', `${unit}.timer`, `${unit}.service`] }, { timeoutMs, allowFail: true, label: 'disarm watchdog' });
    return r.code === 0;
  }
  if (!/^\d+$/.test(id)) return false;
  const r = await ex.exec({ argv: ['kill', id] }, { timeoutMs, allowFail: true, label: 'disarm watchdog' });
  return r.code === 0;
}

// ---------------------------------------------------------------- PowerShell watchdog

/** A PowerShell script that stops at the first error and exits 1 with the error text on stderr. */
export function psStrict(body: string): string {
  return `$ErrorActionPreference = 'Stop'\n$ProgressPreference = 'SilentlyContinue'\ntry {\n${body}\n} catch {\n  [Console]::Error.WriteLine($_.Exception.Message)\n  exit 1\n}`;
}

export const PS_TASK_PREFIX = 'blackout-restore-';

/**
 * Arms a one-shot scheduled task (as SYSTEM) that runs `restoreBody` at the
 * deadline, again every RETRY_EVERY_S seconds until it succeeds (a Start-VM
 * right after a Save-VM that is still saving fails). Its name carries the run's
 * id (`runTag`), so a heal removes only this run's tasks.
 */
export async function armPowershellWatchdog(ex: Executor, clock: Clock, delayMs: number, restoreBody: string, timeoutMs: number, runTag = 'run'): Promise<Watchdog> {
  const id = `${PS_TASK_PREFIX}${runTag}-${randomBytes(4).toString('hex')}`;
  const retrying = `$ErrorActionPreference = 'Stop'\n$ProgressPreference = 'SilentlyContinue'\nfor ($i = 1; $i -le ${RETRY_TRIES}; $i++) {\n  try {\n${restoreBody}\n    exit 0\n  } catch {\n    Start-Sleep -Seconds ${RETRY_EVERY_S}\n  }\n}\nexit 1`;
  const inner = powershellCommandLine(retrying).replace(/^powershell\.exe /, '');
  const secs = Math.ceil(delayMs / 1000);
  const script = psStrict(
    [
      `$action = New-ScheduledTaskAction -Execute 'powershell.exe' -Argument ${psQuote(inner)}`,
      `$trigger = New-ScheduledTaskTrigger -Once -At ((Get-Date).AddSeconds(${secs}))`,
      `Register-ScheduledTask -TaskName ${psQuote(id)} -Description 'blackout: restores the VM if the harness died' -Action $action -Trigger $trigger -User 'SYSTEM' -RunLevel Highest -Force | Out-Null`,
    ].join('\n'),
  );
  await ex.exec({ powershell: script }, { timeoutMs, label: 'arm watchdog' });
  // the latest instant it fires (see armPosixWatchdog): the task's clock started before this call returned
  const firesAt = clock.now() + secs * 1000;
  return {
    firesAt,
    id,
    mechanism: `scheduled task ${id} on ${ex.where}`,
    async disarm() {
      await ex.exec({ powershell: `Unregister-ScheduledTask -TaskName ${psQuote(id)} -Confirm:$false -ErrorAction SilentlyContinue` }, { timeoutMs, allowFail: true, label: 'disarm watchdog' });
    },
  };
}

// ---------------------------------------------------------------- watchdog journal

/**
 * Which watchdogs a run armed, per target: a dead run's watchdog must be ended
 * by the next run's heal, or it fires inside that run's trial and the report
 * credits the probes with surviving the whole length. One JSON file per target
 * (kind, where, object) under $BLACKOUT_STATE_DIR (default
 * ~/.local/state/blackout/watchdogs); each entry names the harness process that
 * armed it, so a heal ends only the watchdogs of runs that are gone, never
 * those of a run still going.
 */
export interface JournalEntry {
  id: string;
  mechanism: string;
  pid: number;
  runDir: string;
  armedAtWallMs: number;
}

function journalDir(): string {
  return process.env.BLACKOUT_STATE_DIR ?? join(homedir(), '.local/state/blackout/watchdogs');
}

export function journalFile(target: string): string {
  return join(journalDir(), `${createHash('sha256').update(target).digest('hex').slice(0, 16)}.json`);
}

function readJournal(file: string): JournalEntry[] {
  try {
    const v = JSON.parse(readFileSync(file, 'utf8')) as unknown;
    return Array.isArray(v) ? (v as JournalEntry[]).filter((e) => e && typeof e.id === 'string' && Number.isInteger(e.pid)) : [];
  } catch {
    return [];
  }
}

function writeJournal(file: string, entries: JournalEntry[]): void {
  mkdirSync(journalDir(), { recursive: true, mode: 0o700 });
  writeFileSync(`${file}.tmp`, JSON.stringify(entries, null, 1), { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
}

export function recordWatchdog(target: string, e: JournalEntry): void {
  const f = journalFile(target);
  writeJournal(f, [...readJournal(f).filter((x) => x.id !== e.id), e]);
}

export function forgetWatchdog(target: string, id: string): void {
  const f = journalFile(target);
  if (existsSync(f))
    writeJournal(
      f,
      readJournal(f).filter((x) => x.id !== id),
    );
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The watchdogs armed against this target by runs that are no longer running. */
export function orphanedWatchdogs(target: string): JournalEntry[] {
  return readJournal(journalFile(target)).filter((e) => e.pid !== process.pid && !alive(e.pid));
}

/** A short tag of the run (its folder) for names such as Hyper-V's task names. */
export function runTag(runDir: string): string {
  return createHash('sha256').update(runDir).digest('hex').slice(0, 8);
}
