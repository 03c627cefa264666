/**
 * A recording SSH server (ssh2's Server) for the adapters that cannot run here
 * (Hyper-V, vSphere, Proxmox, libvirt's live migration): it accepts one client
 * key, records every command it receives (PowerShell -EncodedCommand lines
 * decoded), the stdin fed to it and any signal sent, and answers with scripted
 * outputs — so quoting, ordering, restore-on-failure and timeouts go over a
 * real SSH connection. It listens on 127.0.0.1 on a free port.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import ssh2 from 'ssh2';
import { decodePosixBootstrap, decodePowershellCommandLine, fingerprint } from '../../src/transport/ssh-exec.ts';
import { tempDir } from './lab.ts';

const { Server, utils } = ssh2;

export interface Recorded {
  command: string;
  /** exactly what the client sent (for POSIX commands: the /bin/sh bootstrap) */
  sent: string;
  /** the PowerShell script when the command was `powershell.exe … -EncodedCommand` */
  powershell: string | null;
  stdin: string;
  /** signals received (ssh2's server drops channel requests after exec: stays empty; the lab's OpenSSH test covers KILL) */
  signals: string[];
  at: number;
}

export interface Rule {
  /** which command it answers: a substring or a regex of the command (or the decoded PowerShell script) */
  match: string | RegExp;
  stdout?: string;
  stderr?: string;
  code?: number;
  delayMs?: number;
  /** never answer (timeout paths) */
  hang?: boolean;
  /** answer only this many times, then fall through to later rules */
  times?: number;
}

export interface FakeSsh {
  host: string;
  port: number;
  user: string;
  hostKey: string;
  privateKeyFile: string;
  recorded: Recorded[];
  rules: Rule[];
  /** commands (or decoded scripts) in order */
  commands(): string[];
  close(): Promise<void>;
}

/**
 * An ed25519 key pair that ssh2 itself can read back. ssh2's generator strips leading
 * zero bytes from the public key (mscdex/ssh2 issue 1513), so about 1 key in 256 is one
 * its parseKey rejects (16 of 5 000 here; "key generation failed" in a fresh-clone run):
 * such a pair is drawn again.
 */
function ed25519Pair(): { private: string; public: string } {
  for (let i = 0; i < 20; i++) {
    const pair = utils.generateKeyPairSync('ed25519');
    if (!(utils.parseKey(pair.public) instanceof Error) && !(utils.parseKey(pair.private) instanceof Error)) return pair;
  }
  throw new Error('ssh2 generated 20 ed25519 key pairs in a row that it cannot read');
}

export async function startFakeSsh(opts: { user?: string; rules?: Rule[] } = {}): Promise<FakeSsh> {
  const user = opts.user ?? 'ops';
  const host = ed25519Pair();
  const client = ed25519Pair();
  const dir = tempDir('blackout-fakessh-');
  const privateKeyFile = join(dir, 'id_ed25519');
  writeFileSync(privateKeyFile, client.private, { mode: 0o600 });
  const clientPub = utils.parseKey(client.public);
  const hostPub = utils.parseKey(host.public);
  if (clientPub instanceof Error || hostPub instanceof Error) throw new Error('key generation failed');
  const hostFp = fingerprint(hostPub.getPublicSSH());
  const recorded: Recorded[] = [];
  const rules: Rule[] = [...(opts.rules ?? [])];

  const pick = (cmd: string, ps: string | null): Rule | undefined => {
    for (const r of rules) {
      const hay = ps ?? cmd;
      const hit = typeof r.match === 'string' ? hay.includes(r.match) || cmd.includes(r.match) : r.match.test(hay) || r.match.test(cmd);
      if (!hit) continue;
      if (r.times !== undefined) {
        if (r.times <= 0) continue;
        r.times--;
      }
      return r;
    }
    return undefined;
  };

  const conns = new Set<{ end(): void }>();
  const server = new Server({ hostKeys: [host.private] }, (conn) => {
    conns.add(conn);
    conn.on('close', () => conns.delete(conn));
    conn.on('authentication', (ctx) => {
      if (ctx.username !== user || ctx.method !== 'publickey') return ctx.reject(['publickey']);
      const same = ctx.key.algo === 'ssh-ed25519' && Buffer.compare(ctx.key.data, clientPub.getPublicSSH()) === 0;
      if (!same) return ctx.reject(['publickey']);
      if (!ctx.signature) return ctx.accept(); // the "would you accept this key" query
      if (clientPub.verify(ctx.blob!, ctx.signature, ctx.hashAlgo) === true) return ctx.accept();
      ctx.reject(['publickey']);
    });
    conn.on('ready', () => {
      conn.on('session', (accept) => {
        const session = accept();
        session.on('exec', (acceptExec, _reject, info) => {
          const stream = acceptExec();
          // a POSIX command arrives inside the fixed /bin/sh bootstrap: record the line /bin/sh runs (and the line as sent)
          const rec: Recorded = {
            command: decodePosixBootstrap(info.command) ?? info.command,
            sent: info.command,
            powershell: decodePowershellCommandLine(info.command),
            stdin: '',
            signals: [],
            at: Date.now(),
          };
          recorded.push(rec);
          session.on('signal', (_a: unknown, _r: unknown, s: { name: string }) => rec.signals.push(s.name));
          stream.on('data', (d: Buffer) => (rec.stdin += d.toString()));
          let answered = false;
          const answer = () => {
            if (answered) return;
            answered = true;
            const rule = pick(rec.command, rec.powershell);
            if (rule?.hang) return;
            setTimeout(() => {
              try {
                if (rule?.stdout) stream.write(rule.stdout);
                if (rule?.stderr) stream.stderr.write(rule.stderr);
                stream.exit(rule?.code ?? 0);
                stream.end();
              } catch {
                /* the client went away */
              }
            }, rule?.delayMs ?? 0);
          };
          stream.on('end', answer);
          // a client that never closes its stdin still gets an answer
          setTimeout(answer, 200);
        });
      });
    });
    conn.on('error', () => {});
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', () => res()));
  const port = (server.address() as AddressInfo).port;
  return {
    host: '127.0.0.1',
    port,
    user,
    hostKey: hostFp,
    privateKeyFile,
    recorded,
    rules,
    commands: () => recorded.map((r) => r.powershell ?? r.command),
    close: () =>
      new Promise<void>((res) => {
        for (const c of conns) c.end();
        server.close(() => res());
      }),
  };
}
