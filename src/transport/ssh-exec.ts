/**
 * Running commands for the real-estate adapters: locally, over SSH (ssh2), or
 * not at all (--dry-run: a transcript of exactly what would be sent).
 *
 * Rules that hold for every path:
 *  - a command is an argument vector; for a remote POSIX shell each argument is
 *    single-quoted (posixQuote), for PowerShell the script is built from
 *    single-quoted literals (psQuote) and sent as `powershell.exe
 *    -EncodedCommand <base64 UTF-16LE>`, so neither cmd.exe (Windows OpenSSH's
 *    default shell) nor PowerShell re-parses anything that came from a suite;
 *  - the SSH host key is verified: a pinned "SHA256:…" fingerprint or a
 *    known_hosts file; an unknown or changed key is refused with the
 *    fingerprint the server offered, so the user can check and pin it;
 *  - every call has a timeout (connect included);
 *  - secrets come from an environment variable or a file at the moment of use,
 *    travel on the command's stdin (never on a command line, where `ps` would
 *    show them) and are scrubbed from every error text; transcripts show
 *    placeholders such as <secret from env GOVC_PASSWORD>.
 */
import { existsSync, readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { spawnWithoutSendLease } from './send-lease.ts';
import { Client, type ClientChannel, type ConnectConfig } from 'ssh2';
import { expandHome, isSecretName, readSecret, scrub, secretPlaceholder, type SecretRef } from '../core/secrets.ts';
import { checkHostKey, preferredHostKeyAlgorithms } from './ssh-trust.ts';
import { childEnv } from './child-env.ts';

export { fingerprint } from './ssh-trust.ts';
export { readSecret, secretPlaceholder, type SecretRef } from '../core/secrets.ts';

// ---------------------------------------------------------------- quoting

const POSIX_SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** One argument for a POSIX shell: bare when it is plainly safe, else single-quoted ('\'' for a quote). */
export function posixQuote(arg: string): string {
  if (arg.includes('\0')) throw new Error('an argument contains a NUL byte');
  if (arg !== '' && POSIX_SAFE.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

export function posixJoin(argv: readonly string[]): string {
  return argv.map(posixQuote).join(' ');
}

/**
 * A PowerShell single-quoted string literal: nothing inside is expanded. The
 * quote characters PowerShell accepts (' and the typographic ‘ ’ ‚ ‛) are doubled.
 */
export function psQuote(arg: string): string {
  if (arg.includes('\0')) throw new Error('an argument contains a NUL byte');
  return `'${arg.replace(/['\u2018\u2019\u201A\u201B]/g, (c) => c + c)}'`;
}

/** The exact command line that runs a PowerShell script: every character of it is safe in cmd.exe, sh and PowerShell. */
export function powershellCommandLine(script: string): string {
  return `powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand ${Buffer.from(script, 'utf16le').toString('base64')}`;
}

/** Decodes what powershellCommandLine made (tests and the recording server use it). */
export function decodePowershellCommandLine(line: string): string | null {
  const m = /-EncodedCommand ([A-Za-z0-9+/=]+)\s*$/.exec(line);
  return m ? Buffer.from(m[1]!, 'base64').toString('utf16le') : null;
}

// ---------------------------------------------------------------- commands

/**
 * What to run. `argv` is the normal case. `env` entries are handed to the
 * command through stdin (POSIX: `IFS= read -r NAME; export NAME`), so secret
 * values never appear on a command line. `posixScript` is a fixed script written
 * by this project (never by a suite) with its arguments passed as "$1".. —
 * the watchdogs use it for redirections and `&`.
 */
export type Command =
  | { argv: string[]; env?: Record<string, string | SecretRef>; stdin?: string }
  | { posixScript: string; args: string[]; env?: Record<string, string | SecretRef>; detach?: boolean }
  | { powershell: string };

export interface ExecOptions {
  timeoutMs?: number;
  /** do not throw on a non-zero exit status */
  allowFail?: boolean;
  /** a label for errors and the transcript ("cut", "restore", "watchdog", …) */
  label?: string;
}

export interface ExecResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** true when produced by the dry-run executor */
  dryRun?: boolean;
}

export class ExecError extends Error {
  constructor(
    message: string,
    readonly result: ExecResult | null,
    readonly timedOut = false,
  ) {
    super(message);
  }
}

const isSecret = (v: string | SecretRef): v is SecretRef => typeof v === 'object';

/**
 * Renders a command to the line a POSIX shell gets, plus the stdin it is fed.
 * With `forTranscript` secrets are placeholders; otherwise they are read now.
 */
export function renderPosix(cmd: Exclude<Command, { powershell: string }>, forTranscript: boolean): { line: string; stdin: string; secrets: string[] } {
  const envNames = Object.keys(cmd.env ?? {});
  for (const n of envNames) if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(n)) throw new Error(`bad environment variable name ${JSON.stringify(n)}`);
  const secrets: string[] = [];
  const values = envNames.map((n) => {
    const v = cmd.env![n]!;
    if (forTranscript && !isSecret(v) && isSecretName(n)) return `<value of ${n} withheld>`;
    if (isSecret(v)) {
      if (forTranscript) return secretPlaceholder(v);
      const s = readSecret(v, `${n}`);
      if (/[\r\n]/.test(s)) throw new Error(`${n}: a secret must be one line`);
      secrets.push(s);
      return s;
    }
    if (/[\r\n]/.test(v)) throw new Error(`${n}: an environment value must be one line`);
    // a literal under a secret's name (API_KEY: "…") is kept out of error texts like a referenced one
    if (isSecretName(n)) secrets.push(v);
    return v;
  });
  // values arrive on stdin, one per line, read into variables before anything else runs
  const prelude = envNames.map((n) => `IFS= read -r ${n} && export ${n} && `).join('');
  let body: string;
  if ('argv' in cmd) {
    if (cmd.argv.length === 0) throw new Error('empty command');
    body = envNames.length ? `exec ${posixJoin(cmd.argv)}` : posixJoin(cmd.argv);
  } else {
    body = `sh -c ${posixQuote(cmd.posixScript)} blackout ${posixJoin(cmd.args)}`;
    // braces: `&` must background only the watchdog, not the `read`s before it
    if (cmd.detach) body = `{ nohup ${body} </dev/null >/dev/null 2>&1 & } && echo $!`;
  }
  const stdinExtra = 'argv' in cmd && cmd.stdin !== undefined ? cmd.stdin : '';
  const stdin = values.map((v) => `${v}\n`).join('') + stdinExtra;
  return { line: prelude + body, stdin, secrets };
}

/**
 * The fixed line a remote login shell gets for a POSIX command: whatever that
 * shell is (fish, where \\' escapes inside single quotes; csh; zsh), it parses
 * the same thing: a single-quoted literal without a quote or backslash inside,
 * and one base64 word. /bin/sh decodes the word and runs the real command line,
 * so only /bin/sh ever parses what posixQuote made.
 */
const BOOTSTRAP = `/bin/sh -c 'eval "$(printf %s "$0" | base64 -d)"' `;

export function posixBootstrap(line: string): string {
  return BOOTSTRAP + Buffer.from(line, 'utf8').toString('base64');
}

/** The command line inside a bootstrap (tests and the recording server use it); null when it is not one. */
export function decodePosixBootstrap(sent: string): string | null {
  if (!sent.startsWith(BOOTSTRAP)) return null;
  const b64 = sent.slice(BOOTSTRAP.length);
  return /^[A-Za-z0-9+/]*={0,2}$/.test(b64) ? Buffer.from(b64, 'base64').toString('utf8') : null;
}

/** One line for the transcript; never holds a secret value. */
export function describeCommand(cmd: Command): string {
  if ('powershell' in cmd) return `${powershellCommandLine(cmd.powershell)}\n      # PowerShell: ${cmd.powershell.replace(/\n/g, '\n      #   ')}`;
  const r = renderPosix(cmd, true);
  const feed = r.stdin ? `   <<< stdin: ${JSON.stringify(r.stdin)}` : '';
  return r.line + feed;
}

// ---------------------------------------------------------------- executors

export interface Executor {
  /** where commands run, for the transcript and errors: "local", "ssh ops@hv01:22" */
  readonly where: string;
  readonly isDryRun: boolean;
  exec(cmd: Command, opts?: ExecOptions): Promise<ExecResult>;
  close(): Promise<void>;
}

function fail(where: string, label: string | undefined, detail: string, result: ExecResult | null, secrets: string[], timedOut = false): ExecError {
  return new ExecError(
    scrub(`${where}${label ? ` (${label})` : ''}: ${detail}`, secrets),
    result && { ...result, stdout: scrub(result.stdout, secrets), stderr: scrub(result.stderr, secrets) },
    timedOut,
  );
}

/** Runs commands on this machine. POSIX only (PowerShell adapters need a Windows host over SSH). */
export class LocalExecutor implements Executor {
  readonly where = 'local';
  readonly isDryRun = false;
  exec(cmd: Command, opts: ExecOptions = {}): Promise<ExecResult> {
    if ('powershell' in cmd) return Promise.reject(new Error('PowerShell commands run on a Windows host: give the injector an `ssh:` block'));
    const timeoutMs = opts.timeoutMs ?? 30_000;
    let file: string;
    let args: string[];
    let stdin = '';
    // a minimal environment plus the command's own variables: never the harness's whole env (its secrets)
    const env: NodeJS.ProcessEnv = childEnv();
    const secrets: string[] = [];
    for (const [k, v] of Object.entries(cmd.env ?? {})) {
      const val = isSecret(v) ? readSecret(v, k) : v;
      if (isSecret(v) || isSecretName(k)) secrets.push(val);
      env[k] = val;
    }
    if ('argv' in cmd) {
      [file, ...args] = cmd.argv as [string, ...string[]];
      stdin = cmd.stdin ?? '';
    } else {
      file = 'sh';
      args = ['-c', cmd.posixScript, 'blackout', ...cmd.args];
    }
    const detach = 'posixScript' in cmd && cmd.detach;
    return new Promise((resolve, reject) => {
      // no local command inherits a run's send lease (transport/send-lease.ts): a script may leave a watchdog
      // behind (`nohup … &`) that outlives the run, and the lab's shared guard must not wait for it
      const child = spawnWithoutSendLease(() => (detach ? spawn(file, args, { env, detached: true, stdio: 'ignore' }) : spawn(file, args, { env, stdio: ['pipe', 'pipe', 'pipe'] })));
      if (detach) {
        child.on('error', (e) => reject(fail(this.where, opts.label, e.message, null, secrets)));
        child.unref();
        // like the remote `… & echo $!`: the PID is the answer
        return resolve({ code: 0, stdout: `${child.pid ?? ''}\n`, stderr: '' });
      }
      let stdout = '';
      let stderr = '';
      let timedOut = false;
      child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, timeoutMs);
      child.on('error', (e) => {
        clearTimeout(timer);
        reject(fail(this.where, opts.label, `${file}: ${e.message}`, { code: null, stdout, stderr }, secrets));
      });
      child.on('close', (code) => {
        clearTimeout(timer);
        const result = { code, stdout, stderr };
        if (timedOut) return reject(fail(this.where, opts.label, `${file}: no answer within ${timeoutMs} ms (killed)`, result, secrets, true));
        if (code === 0 || opts.allowFail) return resolve(result);
        reject(fail(this.where, opts.label, `${[file, ...args].join(' ')}: exit ${code}: ${(stderr.trim() || stdout.trim()).slice(0, 2000)}`, result, secrets));
      });
      child.stdin!.on('error', () => {});
      child.stdin!.end(stdin);
    });
  }
  async close(): Promise<void> {}
}

/** Records what would run; runs nothing. Answers every command with exit 0 and no output. */
export class DryRunExecutor implements Executor {
  readonly isDryRun = true;
  constructor(
    readonly where: string,
    private readonly transcript: (line: string) => void,
  ) {}
  async exec(cmd: Command, opts: ExecOptions = {}): Promise<ExecResult> {
    this.transcript(`[${this.where}]${opts.label ? ` ${opts.label}:` : ''} ${describeCommand(cmd)}`);
    return { code: 0, stdout: '', stderr: '', dryRun: true };
  }
  async close(): Promise<void> {}
}

// ---------------------------------------------------------------- host keys

export interface SshSettings {
  host: string;
  port: number;
  user: string;
  privateKeyFile?: string;
  /** passphrase of the private key */
  passphraseEnv?: string;
  passphraseFile?: string;
  passwordEnv?: string;
  passwordFile?: string;
  /** pinned host key: "SHA256:…" (what `ssh-keygen -lf` prints) */
  hostKey?: string;
  knownHostsFile?: string;
  /** connect + handshake + auth bound, ms */
  connectTimeoutMs?: number;
}

// ---------------------------------------------------------------- SSH

export function sshWhere(s: Pick<SshSettings, 'user' | 'host' | 'port'>): string {
  return `ssh ${s.user}@${s.host}:${s.port}`;
}

/**
 * One SSH connection, opened on first use and re-opened when it dropped (a
 * restore must still go out after the network hiccuped). Every exec is bounded:
 * on timeout the remote process gets SIGKILL (where the server supports
 * signals) and the channel is closed.
 */
export class SshExecutor implements Executor {
  readonly isDryRun = false;
  readonly where: string;
  private client: Client | null = null;
  private connecting: Promise<Client> | null = null;
  private readonly secrets: string[] = [];

  constructor(private readonly s: SshSettings) {
    this.where = sshWhere(s);
  }

  /** Connects (or reuses the connection); rejects with a readable error, host key problems included. */
  connect(): Promise<Client> {
    if (this.client) return Promise.resolve(this.client);
    if (this.connecting) return this.connecting;
    const s = this.s;
    const timeout = s.connectTimeoutMs ?? 15_000;
    this.connecting = new Promise<Client>((resolve, reject) => {
      const c = new Client();
      let hostKeyProblem: string | null = null;
      let settled = false;
      const done = (err: Error | null) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.connecting = null;
        if (err) {
          c.end();
          reject(err);
        } else {
          this.client = c;
          resolve(c);
        }
      };
      const timer = setTimeout(() => done(new ExecError(`${this.where}: could not connect and log in within ${timeout} ms`, null, true)), timeout);
      const config: ConnectConfig = {
        host: s.host,
        port: s.port,
        username: s.user,
        readyTimeout: timeout,
        keepaliveInterval: 5000,
        keepaliveCountMax: 3,
        hostVerifier: (key: Buffer) => {
          hostKeyProblem = checkHostKey(s, key);
          return hostKeyProblem === null;
        },
      };
      const algos = preferredHostKeyAlgorithms(s);
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      if (algos) config.algorithms = { serverHostKey: { prepend: algos } as any };
      try {
        if (s.privateKeyFile) {
          const path = expandHome(s.privateKeyFile);
          if (!existsSync(path)) throw new Error(`private key file ${s.privateKeyFile} not found`);
          config.privateKey = readFileSync(path);
          if (s.passphraseEnv || s.passphraseFile) {
            config.passphrase = readSecret({ env: s.passphraseEnv, file: s.passphraseFile }, 'SSH key passphrase');
            this.secrets.push(config.passphrase);
          }
        }
        if (s.passwordEnv || s.passwordFile) {
          const pw = readSecret({ env: s.passwordEnv, file: s.passwordFile }, 'SSH password');
          this.secrets.push(pw);
          config.password = pw;
          config.tryKeyboard = true;
          c.on('keyboard-interactive', (_n, _i, _l, prompts, finish) => finish(prompts.map(() => pw)));
        }
        if (!config.privateKey && !config.password && process.env.SSH_AUTH_SOCK) config.agent = process.env.SSH_AUTH_SOCK;
        if (!config.privateKey && !config.password && !config.agent) throw new Error('no credentials: give privateKeyFile, passwordEnv or passwordFile');
      } catch (e) {
        return done(new ExecError(`${this.where}: ${scrub((e as Error).message, this.secrets)}`, null));
      }
      c.on('ready', () => done(null));
      c.on('error', (e: Error & { level?: string }) => {
        const msg = hostKeyProblem ?? (e.level === 'client-authentication' ? `authentication as ${s.user} failed (${e.message})` : e.message);
        done(new ExecError(`${this.where}: ${scrub(msg, this.secrets)}`, null));
      });
      c.on('close', () => {
        if (this.client === c) this.client = null;
        done(new ExecError(`${this.where}: connection closed during the handshake`, null));
      });
      c.connect(config);
    });
    return this.connecting;
  }

  async exec(cmd: Command, opts: ExecOptions = {}): Promise<ExecResult> {
    const timeoutMs = opts.timeoutMs ?? 30_000;
    const started = Date.now();
    let line: string;
    let stdin = '';
    let secrets: string[] = [...this.secrets];
    if ('powershell' in cmd) line = powershellCommandLine(cmd.powershell);
    else {
      const r = renderPosix(cmd, false);
      line = posixBootstrap(r.line);
      stdin = r.stdin;
      secrets = [...secrets, ...r.secrets];
    }
    let client: Client;
    try {
      client = await withDeadline(this.connect(), timeoutMs, () => new ExecError(`${this.where}${opts.label ? ` (${opts.label})` : ''}: could not connect within ${timeoutMs} ms`, null, true));
    } catch (e) {
      throw e instanceof ExecError ? e : fail(this.where, opts.label, (e as Error).message, null, secrets);
    }
    const left = Math.max(1, timeoutMs - (Date.now() - started));
    return new Promise<ExecResult>((resolve, reject) => {
      let channel: ClientChannel | null = null;
      let stdout = '';
      let stderr = '';
      let code: number | null = null;
      let signal: string | undefined;
      let finished = false;
      const finish = (err: ExecError | null) => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        if (err) return reject(err);
        const result = { code, stdout, stderr };
        if (code === 0 || opts.allowFail) return resolve(result);
        const why = code === null ? `killed by signal ${signal ?? '?'}` : `exit ${code}`;
        reject(fail(this.where, opts.label, `${why}: ${(stderr.trim() || stdout.trim()).slice(0, 2000)}`, result, secrets));
      };
      const timer = setTimeout(() => {
        if (channel) {
          // ssh2's channel.signal() refuses once stdin is closed (always, here); the
          // protocol layer sends the same "signal" request (OpenSSH ≥ 7.9 honours it)
          try {
            const ch = channel as unknown as { outgoing?: { id: number; state: string }; _client?: { _protocol?: { signal(id: number, name: string): void } } };
            if (ch.outgoing && ch.outgoing.state !== 'closed') ch._client?._protocol?.signal(ch.outgoing.id, 'KILL');
          } catch {
            /* not supported */
          }
          channel.close();
        }
        finish(fail(this.where, opts.label, `no answer within ${timeoutMs} ms (the remote command may still be running)`, { code: null, stdout, stderr }, secrets, true));
      }, left);
      try {
        client.exec(line, (err, ch) => {
          if (err) {
            // the connection may have died: forget it so the next call reconnects
            this.client = null;
            return finish(fail(this.where, opts.label, `could not start the command: ${err.message}`, null, secrets));
          }
          channel = ch;
          ch.on('data', (d: Buffer) => (stdout += d.toString()));
          ch.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
          ch.on('exit', (c: number | null, sig?: string) => {
            code = c;
            signal = sig;
          });
          ch.on('close', () => finish(null));
          ch.end(stdin);
        });
      } catch (e) {
        this.client = null;
        finish(fail(this.where, opts.label, (e as Error).message, null, secrets));
      }
    });
  }

  async close(): Promise<void> {
    this.client?.end();
    this.client = null;
  }
}

function withDeadline<T>(p: Promise<T>, ms: number, err: () => Error): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(err()), ms);
    }),
  ]);
}

/** The executor for an adapter: dry-run, SSH when `ssh` is given, else local. */
export function makeExecutor(ssh: SshSettings | undefined, dryRun?: { transcript(line: string): void }): Executor {
  if (dryRun) return new DryRunExecutor(ssh ? `${sshWhere(ssh)} hostkey ${ssh.hostKey ?? `from ${ssh.knownHostsFile ?? '~/.ssh/known_hosts'}`}` : 'local', dryRun.transcript);
  return ssh ? new SshExecutor(ssh) : new LocalExecutor();
}
