/**
 * smb: a large file copy over SMB with Samba's own client, `smbclient`, run as
 * a child process (no maintained npm SMB2 client was worth trusting here). The
 * file is fetched with `get FILE -`, so its bytes stream through the probe:
 * that stream is the progress (a sample per interval, value = bytes so far)
 * and is hashed (sha256) against the server's published checksum (FILE.sha256
 * beside it on the share, or the probe's `sha256`).
 *
 * Policy: smbclient's own per-request timeout (`-t`, default 20 s: the
 * NT_STATUS_IO_TIMEOUT the seeds saw ~19–20 s into a blackout), the protocol
 * ceiling, an optional application stall timeout. No reconnect: a broken copy
 * is a failed copy. Credentials go through a 0600 authentication file in a
 * private temp folder, never on the command line.
 */
import { request, sessionFacts } from './shared/facts.ts';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { duration, probeBase, secretRef } from '../core/schema-util.ts';
import { CopyProgress } from './shared/copy-progress.ts';
import { passwordRef, readSecret } from '../core/secrets.ts';
import type { ProbeContext, ProbeDefinition } from '../core/probe.ts';
import { childEnv } from '../transport/child-env.ts';

const schema = z.strictObject({
  ...probeBase('smb', { interval: 250, tolerance: 750 }),
  host: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9.:-]{0,252}$/, 'expected a host name or an IP address')
    .optional()
    .describe("the SMB server (default: the target's address)"),
  port: z.number().int().min(1).max(65535).optional().describe("the port (default: the target's smb service, else 445)"),
  share: z
    .string()
    .regex(/^[^\\/;"'\x00-\x1f\x7f]{1,80}$/, 'expected a share name without /, \\, ;, quotes or control characters')
    .optional()
    .describe("the share (default: the target's smb service's)"),
  // user and domain become lines of smbclient's authentication file: one line each
  user: z
    .string()
    .regex(/^[^;"'\x00-\x1f\x7f]{1,104}$/, 'expected a user name without ;, quotes or control characters')
    .optional()
    .describe("the user (default: the target's smb service's)"),
  domain: z
    .string()
    .regex(/^[^;"'\x00-\x1f\x7f]{1,64}$/, 'expected a domain without ;, quotes or control characters')
    .default('WORKGROUP')
    .describe("the user's domain or workgroup"),
  ...secretRef,
  /**
   * the file on the share (default: the lab's large file). It goes into smbclient's own command
   * language (-c), which splits commands on ";" and quotes with '"': neither may appear
   */
  file: z
    .string()
    .regex(/^[^;"'\x00-\x1f\x7f]{1,1024}$/, 'expected a file name without ;, quotes or control characters')
    .optional()
    .describe("the file on the share that is copied (default: the lab's large file)"),
  sha256: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .optional()
    .describe('the expected sha256 (hex); default: read from FILE.sha256 on the share'),
  timeout: duration({ min: 1000 }).default(20_000).describe("smbclient -t: its timeout for each SMB request (default 20 s, smbclient's own)"),
  maxProtocol: z.enum(['SMB2', 'SMB3']).default('SMB3').describe('smbclient -m: the highest protocol to negotiate'),
  stallTimeout: duration().default(0).describe('the application aborts a copy that made no progress this long (0: never)'),
  closeWait: duration().default(13_000).describe('close() waits this long for a copy still running at the end of the trial'),
});
export type SmbConfig = z.infer<typeof schema>;

interface Smb {
  host: string;
  port: number;
  share: string;
  /** smbclient's authentication file text (the password in it): never written to disk */
  auth: string;
}

/**
 * smbclient's arguments. The authentication file is fd 3 (spawnSmb): a file
 * unlinked the moment it was written, open only as that descriptor, so the
 * password never stays on disk (a kill -9 of the harness leaves nothing), nor
 * appears on a command line. (Node's stdio "pipe" is a socket, which
 * /dev/fd/3 cannot open.)
 */
function smbArgs(s: Smb, config: SmbConfig, command: string): string[] {
  return [`//${s.host}/${s.share}`, '-p', String(s.port), '-A', '/dev/fd/3', '-E', '-t', String(Math.round(config.timeout / 1000)), '-m', config.maxProtocol, '-c', command];
}

/** smbclient with its authentication on fd 3 and a minimal environment */
function spawnSmb(s: Smb, config: SmbConfig, command: string): ChildProcess {
  const dir = mkdtempSync(join(tmpdir(), 'blackout-smb-'));
  const path = join(dir, 'auth');
  let fd: number;
  try {
    fd = openSync(path, 'wx+', 0o600);
    writeSync(fd, s.auth);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  try {
    return spawn('smbclient', smbArgs(s, config, command), { stdio: ['ignore', 'pipe', 'pipe', fd], env: childEnv() });
  } finally {
    closeSync(fd);
  }
}

/** the NT_STATUS line smbclient printed, or its last line */
function smbError(stderr: string, code: number | null, signal: NodeJS.Signals | null): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const nt = lines.filter((l) => /NT_STATUS_\w+/.test(l));
  const text = (nt.length ? nt.join('; ') : lines.at(-1)) ?? '';
  return `smbclient ${signal ? `killed by ${signal}` : `exit ${code}`}${text ? `: ${text}` : ''}`;
}

function fetchSmall(s: Smb, config: SmbConfig, file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawnSmb(s, config, `get "${file}" -`);
    let out = '';
    let err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), config.timeout + 5000);
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`smbclient: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0 && out) resolve(out);
      else reject(new Error(`//${s.host}/${s.share}/${file}: ${smbError(err, code, signal)}`));
    });
  });
}

function smbTarget(config: SmbConfig, ctx: ProbeContext): Smb & { password: string } {
  const t = ctx.target.services.smb;
  const share = config.share ?? t?.share;
  const user = config.user ?? t?.user;
  if (!share || !user) throw new Error(`${config.name}: no SMB share/user (the lab's smb service or the probe's share and user)`);
  const ref = config.passwordEnv || config.passwordFile ? config : (t ?? {});
  const password = readSecret(passwordRef(ref), `${config.name}: SMB password`);
  if (/[\r\n]/.test(password)) throw new Error(`${config.name}: the SMB password must be one line`);
  const auth = `username = ${user}\npassword = ${password}\ndomain = ${config.domain}\n`;
  return { host: config.host ?? t?.host ?? ctx.target.address, port: config.port ?? t?.port ?? 445, share, auth, password };
}

export const smb: ProbeDefinition<SmbConfig> = {
  kind: 'smb',
  summary: 'large SMB file copy with smbclient (child process, progress from the byte stream), sha256 checked',
  packages: ['smbclient'],
  schema,
  policy: (c) => ({
    client: 'smbclient (Samba)',
    requestTimeoutMs: c.timeout,
    maxProtocol: c.maxProtocol,
    stallTimeoutMs: c.stallTimeout || 'none',
    reconnect: 'none',
    verify: 'sha256 of the received bytes vs the server-published checksum',
  }),
  // smbclient's -t: the I/O timeout of one request (its default is 20 s; the lab saw NT_STATUS_IO_TIMEOUT ~19 s in)
  facts: (c) => sessionFacts([...request(c.timeout, 'smbclient I/O timeout'), ...request(c.stallTimeout, 'stall timeout')], [], false),
  create(config, ctx) {
    let s: (Smb & { password: string }) | null = null;
    let child: ChildProcess | null = null;
    let progress: CopyProgress | null = null;
    let copy: Promise<void> | null = null;
    let lostEmitted = false;
    let stderrTail = () => '';

    const lose = (message: string) => {
      if (lostEmitted || ctx.signal.aborted) return;
      lostEmitted = true;
      progress?.stop();
      ctx.emit({ type: 'session-lost', message: s ? message.split(s.password).join('[redacted]') : message });
    };

    return {
      async open() {
        s = smbTarget(config, ctx);
        const file = config.file ?? ctx.target.services.files?.file;
        if (!file) throw new Error(`${config.name}: no file to copy (the probe's file)`);
        // the server's end: its published checksum (this also checks login and share before anything is injected)
        const expected = config.sha256 ?? (await fetchSmall(s, config, `${file}.sha256`)).split(/\s+/)[0]!;
        if (!/^[0-9a-f]{64}$/.test(expected)) throw new Error(`${file}.sha256 on the share holds no sha256`);
        const smbc = s;
        const hash = createHash('sha256');
        let stderr = '';
        child = spawnSmb(smbc, config, `get "${file}" -`);
        const c = child;
        stderrTail = () => stderr;
        let opened = false;
        c.stderr!.on('data', (d: Buffer) => {
          stderr = (stderr + d.toString()).slice(-4000);
          // smbclient reports the failure at once (e.g. NT_STATUS_IO_TIMEOUT) but may take many seconds
          // more to exit: the error reached the application when it was printed
          const line = stderr.split('\n').find((l) => /NT_STATUS_\w+/.test(l));
          if (line && opened && !progress?.done) {
            lose(`smbclient: ${line.trim()}`);
            c.kill('SIGKILL');
          }
        });
        const firstBytes = new Promise<void>((resolve, reject) => {
          c.stdout!.once('data', () => resolve());
          c.once('close', (code, signal) => reject(new Error(smbError(stderr, code, signal))));
          c.once('error', (e) => reject(new Error(`smbclient: ${e.message}`)));
        });
        const prog = (progress = new CopyProgress(ctx, config.interval, config.stallTimeout, (e) => {
          lose(e.message);
          c.kill('SIGKILL');
        }));
        c.stdout!.on('data', (d: Buffer) => {
          hash.update(d);
          prog.add(d.length);
        });
        copy = new Promise<void>((resolve) => {
          c.on('close', (code, signal) => {
            if (code === 0 && !lostEmitted) {
              prog.finish();
              const got = hash.digest('hex');
              ctx.emit({ type: 'probe-note', message: `copy finished: ${prog.bytes} bytes in ${((prog.finishedAt! - prog.startedAt) / 1000).toFixed(1)} s`, data: prog.summary(prog.bytes) });
              ctx.emit({
                type: 'verify',
                ok: got === expected,
                message: got === expected ? `${file}: sha256 matches the server's` : `${file}: sha256 mismatch — server ${expected}, received ${got}: the copy is corrupt`,
                data: { file, server: expected, client: got, bytes: prog.bytes },
              });
            } else if (!ctx.signal.aborted || !progress?.done) {
              lose(smbError(stderr, code, signal));
            }
            resolve();
          });
        });
        try {
          await firstBytes;
        } catch (e) {
          throw e;
        }
        opened = true;
        ctx.emit({ type: 'session-open', reconnect: false, message: `get ${file} started` });
        prog.start();
      },
      async close() {
        if (copy && progress && !progress.done && !lostEmitted) {
          await progress.settleAtClose(copy, config.closeWait);
        }
        progress?.stop();
        if (child && child.exitCode === null && child.signalCode === null) {
          if (stderrTail().trim()) ctx.emit({ type: 'probe-note', message: `smbclient still running at close (ended); it had said: ${stderrTail().trim().split('\n').slice(-3).join(' | ')}` });
          child.kill('SIGKILL');
        }
      },
    };
  },
};
