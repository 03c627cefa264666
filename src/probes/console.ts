/**
 * console: an interactive shell over SSH (ssh2, with a pty), as an operator's
 * console session. Every interval it types `echo "bo=$((n))"` and waits for the
 * line `bo=n` (the typed command's own echo reads `bo=$((n))`, so only the
 * shell's answer matches). The policy is explicit: keepalive interval/count
 * (OpenSSH ServerAliveInterval/ServerAliveCountMax), an optional read timeout
 * (the operator gives up), and a reconnect policy (a new login).
 * The host key must match the recorded fingerprint.
 */
import type { ClientChannel } from 'ssh2';
import { z } from 'zod';
import { duration, probeBase } from '../core/schema-util.ts';
import { scrubbed } from '../core/secrets.ts';
import { reconnectSchema, SessionLoop, type LoopSession } from './shared/session-loop.ts';
import { connectSsh, sshFields, sshPolicy, sshTarget, type SshTarget } from './shared/ssh-util.ts';
import { keepalive, request, sessionFacts } from './shared/facts.ts';
import type { ProbeDefinition } from '../core/probe.ts';

const schema = z.strictObject({
  ...probeBase('console', { interval: 500, tolerance: 500 }),
  ...sshFields,
  readTimeout: duration().default(0).describe('the operator gives up on an answer after this long and closes the session (0: waits forever)'),
  reconnect: reconnectSchema,
});
export type ConsoleConfig = z.infer<typeof schema>;

export const console_: ProbeDefinition<ConsoleConfig> = {
  kind: 'console',
  summary: 'interactive SSH shell (ssh2, pty): types echo <n> every interval and waits for the answer',
  schema,
  policy: (c) => ({
    ...sshPolicy(c),
    readTimeoutMs: c.readTimeout || 'none',
    reconnect: c.reconnect.mode,
  }),
  facts: (c) =>
    sessionFacts(
      [...request(c.readTimeout, 'read timeout'), ...keepalive(c.serverAlive && { intervalMs: c.serverAlive.interval, count: c.serverAlive.countMax }, 'SSH keepalive')],
      [`ready timeout ${c.readyTimeout} ms: applies to opening a session only`],
      c.reconnect.mode !== 'none',
    ),
  create(config, ctx) {
    let target: SshTarget | null = null;
    const secrets = () => (target?.password ? [target.password] : []);
    const loop = new SessionLoop({
      ctx,
      interval: config.interval,
      reconnect: config.reconnect,
      async connect(signal, onLost) {
        target ??= sshTarget(config, ctx);
        let dead = false;
        const lost = (e: Error) => {
          if (dead) return;
          dead = true;
          waiting?.reject(scrubbed(e, secrets()));
          waiting = null;
          onLost(scrubbed(e, secrets()));
        };
        let waiting: { expect: string; resolve: () => void; reject: (e: Error) => void; timer?: NodeJS.Timeout } | null = null;
        const client = await connectSsh(target, config, signal, lost).catch((e: Error) => {
          throw scrubbed(e, secrets());
        });
        let shell: ClientChannel;
        try {
          shell = await new Promise<ClientChannel>((res, rej) => client.shell({ term: 'dumb', rows: 24, cols: 200 }, (err, ch) => (err ? rej(err) : res(ch))));
        } catch (e) {
          client.destroy();
          throw e;
        }
        let buffered = '';
        shell.on('data', (d: Buffer) => {
          buffered = (buffered + d.toString('utf8')).slice(-8192);
          const w = waiting;
          if (!w) return;
          const lines = buffered.split(/\r?\n/);
          if (lines.slice(0, -1).some((l) => l.trim() === w.expect)) {
            buffered = '';
            waiting = null;
            clearTimeout(w.timer);
            w.resolve();
          }
        });
        shell.stderr.on('data', () => {});
        shell.on('close', () => lost(new Error('shell channel closed')));
        const type = (seq: number) =>
          new Promise<void>((res, rej) => {
            if (dead) return rej(new Error('session is closed'));
            waiting = { expect: `bo=${seq}`, resolve: res, reject: rej };
            if (config.readTimeout > 0) {
              waiting.timer = setTimeout(() => {
                const e = new Error(`no answer to "echo bo=${seq}" within the read timeout of ${config.readTimeout} ms`);
                lost(e);
                client.destroy();
              }, config.readTimeout);
            }
            shell.write(`echo "bo=$((${seq}))"\n`);
          });
        // the shell is usable once it answered a first command; typeahead sent while the login
        // is still being set up can be flushed by the pty, so the first command is repeated
        let retype: NodeJS.Timeout | undefined;
        let giveUp: NodeJS.Timeout | undefined;
        try {
          await Promise.race([
            type(0),
            new Promise<void>(() => (retype = setInterval(() => shell.write(`echo "bo=$((0))"\n`), 300))),
            new Promise((_, rej) => (giveUp = setTimeout(() => rej(new Error(`the shell did not answer within ${config.readyTimeout} ms`)), config.readyTimeout))),
          ]);
        } catch (e) {
          dead = true;
          client.destroy();
          throw e;
        } finally {
          clearInterval(retype);
          clearTimeout(giveUp);
        }
        // let any repeated first command drain before the loop starts matching
        await new Promise((r) => setTimeout(r, 100));
        buffered = '';
        const session: LoopSession = {
          async request(seq) {
            await type(seq);
            return { value: seq };
          },
          alive: () => !dead,
          async close() {
            dead = true;
            try {
              shell.end('exit\n');
            } catch {
              /* already gone */
            }
            client.end();
            setTimeout(() => client.destroy(), 500).unref();
          },
        };
        return session;
      },
    });
    return { open: () => loop.open(), close: () => loop.close() };
  },
};
