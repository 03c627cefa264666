/**
 * What the SSH probes (console, sftp) share: the connection settings in a
 * suite, the client's policy (keepalive = OpenSSH's ServerAliveInterval /
 * ServerAliveCountMax, ready timeout), and host key verification. The host key
 * is checked against the fingerprint recorded for the target (the lab records
 * it at `lab up`) or a known_hosts file; a key that matches neither is an
 * error, never accepted.
 */
import { readFileSync } from 'node:fs';
import { checkHostKey, type HostTrust } from '../../transport/ssh-trust.ts';
import { Client, type ConnectConfig } from 'ssh2';
import { z } from 'zod';
import { duration, secretRef } from '../../core/schema-util.ts';
import type { SshAccess } from '../../core/target.ts';
import { passwordRef, readSecret } from '../../core/secrets.ts';
import type { ProbeContext } from '../../core/probe.ts';

export const sshFields = {
  host: z.string().min(1).optional().describe("the SSH server (default: the target's address)"),
  port: z.number().int().min(1).max(65535).optional().describe("the SSH port (default: the target's SSH port, else 22)"),
  user: z.string().min(1).optional().describe("the user to log in as (default: the target's SSH user)"),
  privateKeyFile: z.string().min(1).optional().describe('a private key file to log in with'),
  ...secretRef,
  hostKey: z
    .string()
    .regex(/^SHA256:[A-Za-z0-9+/]{43}=?$/, 'expected a host key fingerprint "SHA256:…"')
    .optional()
    .describe('the server\'s host key fingerprint, "SHA256:…" (ssh-keygen -lf KEY.pub)'),
  // ssh2's keepaliveInterval/keepaliveCountMax
  serverAlive: z
    .strictObject({
      interval: duration({ min: 100 }).describe('ServerAliveInterval: a keepalive request after this long without data from the server'),
      countMax: z.number().int().min(1).max(100).default(3).describe('ServerAliveCountMax: the session ends after this many unanswered keepalives'),
    })
    .optional()
    .describe("OpenSSH's ServerAliveInterval / ServerAliveCountMax (off unless given)"),
  readyTimeout: duration({ min: 100 }).default(10_000).describe('how long the SSH handshake and authentication may take'),
};

export interface SshConfigFields {
  name: string;
  host?: string;
  port?: number;
  user?: string;
  privateKeyFile?: string;
  passwordEnv?: string;
  passwordFile?: string;
  hostKey?: string;
  serverAlive?: { interval: number; countMax: number };
  readyTimeout: number;
}

export function sshPolicy(c: SshConfigFields): Record<string, unknown> {
  return {
    client: 'ssh2',
    // measured: ssh2 gives up after interval × countMax of silence (OpenSSH's ServerAlive needs one interval more)
    keepalive: c.serverAlive ? `every ${c.serverAlive.interval} ms, gives up after ${c.serverAlive.countMax} unanswered (ServerAliveInterval/CountMax)` : 'off (OpenSSH default)',
    ...(c.serverAlive ? { keepaliveIntervalMs: c.serverAlive.interval, keepaliveCountMax: c.serverAlive.countMax, diesAfterMs: c.serverAlive.interval * c.serverAlive.countMax } : {}),
    readyTimeoutMs: c.readyTimeout,
    hostKey: 'verified against the recorded fingerprint; unknown keys refused',
  };
}

export interface SshTarget {
  host: string;
  port: number;
  user: string;
  privateKey?: Buffer;
  password?: string;
  /** how its host key is verified (the one trust module: pinned key or known_hosts) */
  trust: HostTrust;
}

/** Resolves where and how to log in; throws a readable preflight error. */
export function sshTarget(c: SshConfigFields, ctx: ProbeContext): SshTarget {
  const t: Partial<SshAccess> = ctx.target.services.ssh ?? {};
  const host = c.host ?? t.host ?? ctx.target.address;
  const port = c.port ?? t.port ?? 22;
  const user = c.user ?? t.user;
  if (!user) throw new Error(`${c.name}: no ssh user (target.ssh.user or the probe's user)`);
  const keyFile = c.privateKeyFile ?? t.privateKeyFile;
  let privateKey: Buffer | undefined;
  if (keyFile) {
    try {
      privateKey = readFileSync(keyFile);
    } catch (e) {
      throw new Error(`${c.name}: cannot read the private key file ${keyFile} (${(e as NodeJS.ErrnoException).code})`);
    }
  }
  const ref = c.passwordEnv || c.passwordFile ? c : t;
  const password = ref.passwordEnv || ref.passwordFile ? readSecret(passwordRef(ref), `${c.name}: ssh password`) : undefined;
  if (!privateKey && password === undefined) throw new Error(`${c.name}: no ssh credentials (privateKeyFile, passwordEnv or passwordFile)`);
  const hostKey = c.hostKey ?? t.hostKey;
  if (!hostKey && !t.knownHostsFile) {
    throw new Error(`${c.name}: no recorded host key for ${host}:${port} (target.ssh.hostKey or knownHostsFile); an unknown host key is never accepted`);
  }
  const trust: HostTrust = { host, port, hostKey, knownHostsFile: hostKey ? undefined : t.knownHostsFile, pinLabel: c.hostKey ? "the probe's hostKey" : "the target's recorded host key" };
  return { host, port, user, privateKey, password, trust };
}

/**
 * Connects and authenticates; resolves with the ready client. `onLost` gets the
 * client's own error text when the connection dies later (e.g. ssh2's
 * "Keepalive timeout").
 */
export function connectSsh(t: SshTarget, c: SshConfigFields, signal: AbortSignal, onLost: (e: Error) => void): Promise<Client> {
  return new Promise((resolve, reject) => {
    const client = new Client();
    let ready = false;
    let refused: string | null = null;
    const cfg: ConnectConfig = {
      host: t.host,
      port: t.port,
      username: t.user,
      ...(t.privateKey ? { privateKey: t.privateKey } : {}),
      ...(t.password !== undefined ? { password: t.password } : {}),
      readyTimeout: c.readyTimeout,
      keepaliveInterval: c.serverAlive?.interval ?? 0,
      keepaliveCountMax: c.serverAlive?.countMax ?? 3,
      hostVerifier: (key: Buffer) => {
        const problem = checkHostKey(t.trust, key);
        if (problem === null) return true;
        refused = `${problem} (refused)`;
        return false;
      },
    };
    const abort = () => client.destroy();
    signal.addEventListener('abort', abort, { once: true });
    client.on('ready', () => {
      ready = true;
      resolve(client);
    });
    client.on('error', (e: Error & { level?: string }) => {
      if (!ready) {
        signal.removeEventListener('abort', abort);
        client.destroy();
        return reject(refused ? new Error(refused) : e);
      }
      onLost(e);
    });
    client.on('close', () => {
      if (!ready) return reject(new Error(refused ?? `ssh connection to ${t.host}:${t.port} closed during the handshake`));
      onLost(new Error('connection closed'));
    });
    client.connect(cfg);
  });
}
