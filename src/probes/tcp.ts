/**
 * tcp: one long-lived TCP connection, in one of three modes:
 *  - `echo` (the default, for the lab's echo service): every interval the
 *    application writes a line and waits for it to come back, and checks it;
 *  - `exchange`: for any line protocol: every interval it sends `send` (a
 *    command such as Redis `PING\r\n` or SMTP `NOOP\r\n`) and waits for an
 *    answer matching `expect` (`^\+PONG`, `^250`); `greeting` checks what the
 *    server says first (SMTP's 220);
 *  - `hold`: an idle connection to any open port, sending nothing: kernel
 *    keepalives hold it, and the probe watches the kernel's own view through
 *    TCP_INFO (last ACK received, retransmissions, unanswered keepalive
 *    probes, unacknowledged data). A sample is each ACK the peer sent, dated
 *    when the kernel received it, so the outage is the silence the kernel
 *    saw; the failure is the kernel's verdict on the connection (ETIMEDOUT
 *    once its keepalive count runs out).
 * Its policy is explicit: OS keepalive (idle/interval/count), TCP_USER_TIMEOUT,
 * an application read timeout, and a reconnect policy.
 */
import { connect, type Socket } from 'node:net';
import { z } from 'zod';
import { duration, probeBase, regexString } from '../core/schema-util.ts';
import { setKeepalive, setUserTimeout, tcpInfo, type TcpInfo } from '../transport/sockopt.ts';
import { reconnectSchema, SessionLoop, type LoopSession } from './shared/session-loop.ts';
import type { ProbeContext, ProbeDefinition } from '../core/probe.ts';
import { idleKeepalive, note, request, sessionFacts, userTimeout } from './shared/facts.ts';

const keepaliveSchema = z.strictObject({
  idle: duration({ min: 1000 }).describe('TCP_KEEPIDLE: the first keepalive after this long idle'),
  interval: duration({ min: 1000 }).describe('TCP_KEEPINTVL: between unanswered keepalives'),
  count: z.number().int().min(1).max(127).describe('TCP_KEEPCNT: the kernel ends the connection after this many unanswered keepalives'),
});

const schema = z
  .strictObject({
    ...probeBase('tcp', { interval: 100, tolerance: 500 }),
    mode: z
      .enum(['echo', 'exchange', 'hold'])
      .default('echo')
      .describe("echo: a line echoed back (the lab's echo service); exchange: send `send`, expect `expect` back (PING → +PONG); hold: an idle connection held by kernel keepalives"),
    host: z
      .string()
      .regex(/^[A-Za-z0-9._:[\]-]{1,253}$/, 'expected a host name or an IP address')
      .optional()
      .describe("the host to connect to (default: the target's address)"),
    port: z.number().int().min(1).max(65535).optional().describe("the port (needed by exchange and hold; echo: the target's echo port)"),
    send: z.string().min(1).max(4096).optional().describe('exchange: what to send every interval (YAML escapes: "PING\\r\\n")'),
    expect: regexString('expect').optional().describe('exchange: a regular expression the answer must match'),
    greeting: regexString('greeting').optional().describe("exchange: a regular expression the server's first words must match (an SMTP 220, an FTP 220)"),
    connectTimeout: duration({ min: 1 }).default(5000).describe('how long a connection attempt may take'),
    readTimeout: duration().default(0).describe('the application gives up on an answer after this long (0: waits forever, like most apps)'),
    userTimeout: duration().optional().describe('TCP_USER_TIMEOUT: the kernel drops the connection when sent data stays unacknowledged this long'),
    keepalive: keepaliveSchema.optional().describe('OS TCP keepalive { idle, interval, count } (needed by hold; off unless given)'),
    reconnect: reconnectSchema,
  })
  .superRefine((c, ctx) => {
    if (c.mode === 'exchange') {
      if (!c.send) ctx.addIssue({ code: 'custom', path: ['send'], message: 'mode exchange needs send (what to send every interval, e.g. "PING\\r\\n")' });
      if (!c.expect) ctx.addIssue({ code: 'custom', path: ['expect'], message: 'mode exchange needs expect (a regular expression for the answer, e.g. "^\\+PONG")' });
    } else {
      for (const f of ['send', 'expect', 'greeting'] as const) if (c[f] !== undefined) ctx.addIssue({ code: 'custom', path: [f], message: `only for mode exchange (this probe's mode is ${c.mode})` });
    }
    if (c.mode === 'hold') {
      if (!c.keepalive) ctx.addIssue({ code: 'custom', path: ['keepalive'], message: 'mode hold needs keepalive { idle, interval, count }: the kernel keepalives are what hold the idle connection' });
      if (c.readTimeout > 0) ctx.addIssue({ code: 'custom', path: ['readTimeout'], message: 'mode hold sends nothing, so it waits for no answer: no readTimeout' });
    }
    if (c.mode !== 'echo' && c.port === undefined) ctx.addIssue({ code: 'custom', path: ['port'], message: `mode ${c.mode} needs a port` });
  });
export type TcpConfig = z.infer<typeof schema>;

/** the longest a hold session can stay silent before the kernel's keepalive verdict: idle + count × interval */
export function holdDeadlineMs(k: { idle: number; interval: number; count: number }): number {
  return k.idle + k.count * k.interval;
}

export const tcp: ProbeDefinition<TcpConfig> = {
  kind: 'tcp',
  summary: 'one long-lived TCP connection: echo (lab), exchange (send a command, expect a pattern: PING → +PONG) or hold (idle, kernel keepalives, TCP_INFO)',
  schema,
  policy: (c) => ({
    mode: c.mode,
    ...(c.mode === 'hold' ? {} : { readTimeoutMs: c.readTimeout || 'none' }),
    userTimeoutMs: c.userTimeout ?? 'OS default (none: ~15 min of retransmissions)',
    keepalive: c.keepalive ?? 'off',
    ...(c.mode === 'hold' && c.keepalive ? { keepaliveVerdictAfterMs: holdDeadlineMs(c.keepalive) } : {}),
    connectTimeoutMs: c.connectTimeout,
    reconnect: c.reconnect.mode,
  }),
  facts: (c) =>
    c.mode === 'hold'
      ? sessionFacts([...idleKeepalive(c.keepalive), ...userTimeout(c.userTimeout)], [`connect timeout ${c.connectTimeout} ms: applies to opening a session only`], c.reconnect.mode !== 'none')
      : sessionFacts(
          [...request(c.readTimeout, c.mode === 'exchange' ? 'answer timeout' : 'read timeout'), ...userTimeout(c.userTimeout)],
          [
            ...note(c.keepalive, 'TCP keepalive only probes an idle connection; with a request outstanding during the blackout it never fires'),
            `connect timeout ${c.connectTimeout} ms: applies to opening a session only`,
          ],
          c.reconnect.mode !== 'none',
        ),
  create(config, ctx) {
    const host = config.host ?? ctx.target.address;
    const port = config.port ?? (ctx.target.services.echo?.port as number | undefined) ?? 7;
    const loop = new SessionLoop({
      ctx,
      interval: config.interval,
      reconnect: config.reconnect,
      connect: (signal, onLost) =>
        config.mode === 'hold'
          ? openHold(ctx, host, port, config, signal, onLost)
          : config.mode === 'exchange'
            ? openExchange(host, port, config, signal, onLost)
            : openEcho(host, port, config, signal, onLost),
    });
    return { open: () => loop.open(), close: () => loop.close() };
  },
};

/** Connects with the connect timeout and the socket options; resolves once connected. */
function connectSocket(host: string, port: number, config: TcpConfig, signal: AbortSignal): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, noDelay: true });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`connect ${host}:${port}: no answer within ${config.connectTimeout} ms`));
    }, config.connectTimeout);
    const onAbort = () => {
      clearTimeout(timer);
      socket.destroy();
      reject(new Error('aborted'));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once('error', (e) => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      reject(e);
    });
    socket.once('connect', () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      socket.removeAllListeners('error');
      try {
        if (config.keepalive) setKeepalive(socket, config.keepalive);
        if (config.userTimeout !== undefined) setUserTimeout(socket, config.userTimeout);
      } catch (e) {
        socket.destroy();
        return reject(e as Error);
      }
      resolve(socket);
    });
  });
}

/** an echo has no figures of its own: the loop times it */
const NO_FIGURES = Object.freeze({});

const fmtS = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

function infoText(i: TcpInfo): string {
  return `last ACK ${fmtS(i.lastAckRecvMs)} before, ${i.probes} keepalive probe(s) unanswered, ${i.retransmits} retransmission(s), ${i.unacked} segment(s) unacknowledged`;
}

/**
 * hold: nothing is sent; every interval the probe reads TCP_INFO, and each new
 * ACK from the peer (a keepalive answer) is a sample dated when the kernel got it.
 */
async function openHold(ctx: ProbeContext, host: string, port: number, config: TcpConfig, signal: AbortSignal, onLost: (e: Error) => void): Promise<LoopSession> {
  const socket = await connectSocket(host, port, config, signal);
  const k = config.keepalive!;
  let dead = false;
  let last: TcpInfo | null = null;
  let lastAckAt = ctx.clock.now();
  let notedProbes = 0;
  let received = 0;
  let wake: (() => void) | null = null;
  const read = (): TcpInfo | null => {
    try {
      return tcpInfo(socket);
    } catch {
      return null;
    }
  };
  last = read();
  const fail = (e: Error) => {
    if (dead) return;
    dead = true;
    const i = read() ?? last;
    // the kernel's verdict (ETIMEDOUT when the keepalive count ran out), with what it saw before it
    const err = new Error(`${e.message}${i ? ` (kernel: ${infoText(i)})` : ''}`) as NodeJS.ErrnoException;
    const code = (e as NodeJS.ErrnoException).code;
    if (code) err.code = code;
    onLost(err);
    wake?.();
  };
  socket.on('data', (d: Buffer) => (received += d.length)); // a banner (SSH, SMTP) is read and ignored
  socket.on('error', (e) => fail(e));
  socket.on('close', () => fail(new Error('connection closed by peer')));
  signal.addEventListener('abort', () => socket.destroy(), { once: true });
  ctx.emit({
    type: 'probe-note',
    message: `holding an idle connection to ${host}:${port}; the kernel keepalive gives its verdict after ${fmtS(holdDeadlineMs(k))} of silence`,
    data: { keepalive: k },
  });
  return {
    request() {
      // waits for the next ACK the kernel receives; rejects when the connection dies
      return new Promise((resolve, reject) => {
        const poll = () => {
          if (dead) {
            clearInterval(timer);
            wake = null;
            return reject(new Error('connection is closed'));
          }
          // the read is dated by the clock on both sides: a thread descheduled around it
          // (a loaded machine) widens the bracket instead of moving the ACK's date
          const before = ctx.clock.now();
          const i = read();
          if (!i) return;
          const after = ctx.clock.now();
          const prev = last;
          last = i;
          const ackAt = (before + after) / 2 - i.lastAckRecvMs;
          if (i.probes > notedProbes) {
            ctx.emit({ type: 'probe-note', message: `kernel: ${infoText(i)}`, data: { ...i } });
          }
          notedProbes = i.probes;
          // a new ACK is a new segment received (the kernel's own count) dated after the last one;
          // before Linux 4.2, which has no count, one dated later by more than a jiffy and the read's bracket
          const fresh = i.segsIn !== null && prev?.segsIn != null ? i.segsIn > prev.segsIn && ackAt > lastAckAt : ackAt > lastAckAt + 5 + (after - before);
          if (fresh) {
            lastAckAt = ackAt;
            clearInterval(timer);
            wake = null;
            resolve({ t: ackAt, latencyMs: i.rttMs, value: i.lastAckRecvMs });
          }
        };
        const timer = setInterval(poll, Math.min(config.interval, 100));
        wake = poll;
        poll();
      });
    },
    alive: () => !dead,
    async close() {
      dead = true;
      wake?.();
      socket.destroy();
    },
  };
}

/**
 * exchange: a command, an answer matching a pattern. The first exchange (and
 * the greeting) happen at connect, so a wrong port or expectation is a
 * preflight failure.
 */
async function openExchange(host: string, port: number, config: TcpConfig, signal: AbortSignal, onLost: (e: Error) => void): Promise<LoopSession> {
  const socket = await connectSocket(host, port, config, signal);
  const expect = new RegExp(config.expect!);
  let buffered = '';
  let dead = false;
  let waiting: { re: RegExp; what: string; resolve: () => void; reject: (e: Error) => void; timer?: NodeJS.Timeout } | null = null;
  const fail = (e: Error) => {
    if (dead) return;
    dead = true;
    waiting?.reject(e);
    waiting = null;
    onLost(e);
  };
  const check = () => {
    const w = waiting;
    if (!w) return;
    if (w.re.test(buffered)) {
      waiting = null;
      clearTimeout(w.timer);
      buffered = '';
      w.resolve();
    } else if (buffered.includes('\n')) {
      // a complete line that is not the answer: the server said something else (an error, a refusal)
      waiting = null;
      clearTimeout(w.timer);
      const got = buffered.trim().slice(0, 80);
      buffered = '';
      w.reject(new Error(`${w.what}: expected /${w.re.source}/, got ${JSON.stringify(got)}`));
    }
  };
  socket.on('data', (d: Buffer) => {
    buffered = (buffered + d.toString('latin1')).slice(-65536);
    check();
  });
  socket.on('error', (e) => fail(e));
  socket.on('close', () => fail(new Error('connection closed by peer')));
  signal.addEventListener('abort', () => socket.destroy(), { once: true });
  /** waits for `re`; `timeoutMs` 0: forever. A timeout closes the connection, as a client library would. */
  const await_ = (re: RegExp, what: string, timeoutMs: number, write?: string) =>
    new Promise<void>((resolve, reject) => {
      if (dead) return reject(new Error('connection is closed'));
      waiting = { re, what, resolve, reject };
      if (timeoutMs > 0) {
        waiting.timer = setTimeout(() => {
          const e = new Error(`${what}: no answer matching /${re.source}/ within ${timeoutMs} ms`);
          socket.destroy();
          fail(e);
        }, timeoutMs);
      }
      if (write !== undefined) socket.write(write);
      check();
    });
  try {
    if (config.greeting) await await_(new RegExp(config.greeting), 'greeting', config.readTimeout || config.connectTimeout);
    await await_(expect, `answer to ${JSON.stringify(config.send)}`, config.readTimeout || config.connectTimeout, config.send);
  } catch (e) {
    dead = true;
    socket.destroy();
    throw e;
  }
  return {
    request: () => await_(expect, `answer to ${JSON.stringify(config.send)}`, config.readTimeout, config.send).then(() => ({})),
    alive: () => !dead,
    async close() {
      dead = true;
      socket.destroy();
    },
  };
}

function openEcho(host: string, port: number, config: TcpConfig, signal: AbortSignal, onLost: (e: Error) => void): Promise<LoopSession> {
  return new Promise((resolve, reject) => {
    let buffered = '';
    // the echo is read into the session's own buffer (`onread`): no new Buffer and no 'data' event per answer
    const socket: Socket = connect({ host, port, noDelay: true, onread: { buffer: Buffer.allocUnsafe(4096), callback: (n: number, buf: Buffer) => onBytes(buf.toString('latin1', 0, n)) } });
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
    function onBytes(text: string): boolean {
      buffered += text;
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
      return true;
    }
    const session: LoopSession = {
      send(seq, done) {
        if (dead) return done(new Error('connection is closed'));
        waiting = { seq, resolve: () => done(null, NO_FIGURES), reject: done };
        if (config.readTimeout > 0) {
          waiting.timer = setTimeout(() => {
            // the application gives up: it closes the connection, like a client library would
            const e = new Error(`no echo within the read timeout of ${config.readTimeout} ms`);
            socket.destroy();
            fail(e);
          }, config.readTimeout);
        }
        socket.write(`blackout ${seq}\n`);
      },
      request(seq) {
        return new Promise((res, rej) => session.send!(seq, (e, r) => (e ? rej(e) : res(r!))));
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
