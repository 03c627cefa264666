/**
 * tcp: one long-lived TCP connection to the target's echo service. Every
 * interval the application writes a line and waits for it to come back, and
 * checks it. Its policy is explicit: OS keepalive (idle/interval/count),
 * TCP_USER_TIMEOUT, an application read timeout, and a reconnect policy.
 */
import { connect, type Socket } from 'node:net';
import { z } from 'zod';
import { duration, probeBase } from '../core/schema-util.ts';
import { setKeepalive, setUserTimeout } from '../transport/sockopt.ts';
import { reconnectSchema, SessionLoop, type LoopSession } from './shared/session-loop.ts';
import { note, request, sessionFacts, userTimeout } from './shared/facts.ts';
import type { ProbeDefinition } from '../core/probe.ts';

const schema = z.strictObject({
  ...probeBase('tcp', { interval: 100, tolerance: 500 }),
  port: z.number().int().min(1).max(65535).optional(),
  connectTimeout: duration({ min: 1 }).default(5000),
  /** the application gives up on an answer after this long (0: waits forever, like most apps) */
  readTimeout: duration().default(0),
  /** TCP_USER_TIMEOUT: the kernel drops the connection when sent data stays unacknowledged this long */
  userTimeout: duration().optional(),
  keepalive: z
    .strictObject({ idle: duration({ min: 1000 }), interval: duration({ min: 1000 }), count: z.number().int().min(1).max(127) })
    .optional(),
  reconnect: reconnectSchema,
});
export type TcpConfig = z.infer<typeof schema>;

export const tcp: ProbeDefinition<TcpConfig> = {
  kind: 'tcp',
  summary: 'one long-lived TCP connection to the echo port, a line every interval, echo checked',
  schema,
  policy: (c) => ({
    readTimeoutMs: c.readTimeout || 'none',
    userTimeoutMs: c.userTimeout ?? 'OS default (none: ~15 min of retransmissions)',
    keepalive: c.keepalive ?? 'off',
    connectTimeoutMs: c.connectTimeout,
    reconnect: c.reconnect.mode,
  }),
  facts: (c) =>
    sessionFacts(
      [...request(c.readTimeout, 'read timeout'), ...userTimeout(c.userTimeout)],
      [...note(c.keepalive, 'TCP keepalive only probes an idle connection; with a request outstanding during the blackout it never fires'), `connect timeout ${c.connectTimeout} ms: applies to opening a session only`],
      c.reconnect.mode !== 'none',
    ),
  create(config, ctx) {
    const port = config.port ?? (ctx.target.services.echo?.port as number | undefined) ?? 7;
    const loop = new SessionLoop({
      ctx,
      interval: config.interval,
      reconnect: config.reconnect,
      connect: (signal, onLost) => openEcho(ctx.target.address, port, config, signal, onLost),
    });
    return { open: () => loop.open(), close: () => loop.close() };
  },
};

function openEcho(host: string, port: number, config: TcpConfig, signal: AbortSignal, onLost: (e: Error) => void): Promise<LoopSession> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect({ host, port, noDelay: true });
    let buffered = '';
    let waiting: { seq: number; resolve: () => void; reject: (e: Error) => void; timer?: NodeJS.Timeout } | null = null;
    let dead = false;
    const connectTimer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`connect ${host}:${port}: no answer within ${config.connectTimeout} ms`));
    }, config.connectTimeout);
    const fail = (e: Error) => {
      if (dead) return;
      dead = true;
      waiting?.reject(e);
      waiting = null;
      onLost(e);
    };
    let connected = false;
    socket.once('connect', () => {
      connected = true;
      clearTimeout(connectTimer);
      try {
        if (config.keepalive) setKeepalive(socket, config.keepalive);
        if (config.userTimeout !== undefined) setUserTimeout(socket, config.userTimeout);
      } catch (e) {
        socket.destroy();
        return reject(e as Error);
      }
      socket.on('error', (e) => fail(e));
      socket.on('close', () => fail(new Error('connection closed by peer')));
      resolve(session);
    });
    socket.once('error', (e) => {
      clearTimeout(connectTimer);
      // before 'connect' this is a failed connect (ECONNREFUSED, …): the promise has not settled yet
      if (!connected) reject(e);
    });
    socket.on('data', (d: Buffer) => {
      buffered += d.toString();
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        const w = waiting;
        if (!w) continue;
        waiting = null;
        clearTimeout(w.timer);
        if (line === `blackout ${w.seq}`) w.resolve();
        else w.reject(new Error(`echo mismatch: sent "blackout ${w.seq}", got "${line.slice(0, 60)}"`));
      }
    });
    const session: LoopSession = {
      request(seq) {
        return new Promise<{ latencyMs?: number }>((res, rej) => {
          if (dead) return rej(new Error('connection is closed'));
          waiting = { seq, resolve: () => res({}), reject: rej };
          if (config.readTimeout > 0) {
            waiting.timer = setTimeout(() => {
              // the application gives up: it closes the connection, like a client library would
              const e = new Error(`no echo within the read timeout of ${config.readTimeout} ms`);
              socket.destroy();
              fail(e);
            }, config.readTimeout);
          }
          socket.write(`blackout ${seq}\n`);
        });
      },
      alive: () => !dead,
      async close() {
        dead = true;
        socket.destroy();
      },
    };
    signal.addEventListener('abort', () => socket.destroy(), { once: true });
  });
}
