/**
 * http: a keep-alive HTTP(S) client (Node's own http/https with a one-socket
 * keep-alive Agent, the way a service client or a load balancer's health
 * check holds one connection) requesting any URL every interval.
 *
 * Each request: method, headers (secret header values only from an
 * environment variable or a file), optional body; the answer must have an
 * expected status and, optionally, a body matching a pattern. TLS is verified
 * against the system's CAs, a CA file, or a pinned certificate (its SHA-256
 * fingerprint: then the pin is the trust, the chain and name are not checked).
 *
 * The session is the keep-alive connection. A request that fails on the
 * network (the request timeout, a reset, the kernel's TCP_USER_TIMEOUT)
 * loses it, and the `reconnect` policy decides, as for the other probes; an
 * unexpected status or body on a working connection is an error that reached
 * the application. When the server closes an idle keep-alive connection
 * (nginx after 75 s idle or 1000 requests) the agent opens a new one for the
 * next request, as any HTTP client does: a note, not a loss.
 *
 * Connections are made by the probe itself (Agent.createConnection with a
 * callback), so the request is only written once the connect timeout, the
 * socket options and the certificate pin have all been checked: no header
 * ever goes to a server that failed the pin.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { z } from 'zod';
import { duration, probeBase, regexString } from '../core/schema-util.ts';
import { setKeepalive, setUserTimeout } from '../transport/sockopt.ts';
import { readSecret, scrubbed } from '../core/secrets.ts';
import { reconnectSchema, SessionLoop, type LoopSession } from './shared/session-loop.ts';
import type { ProbeContext, ProbeDefinition } from '../core/probe.ts';
import { request, sessionFacts, userTimeout } from './shared/facts.ts';

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$/;
/** headers whose values are credentials: only under secretHeaders */
const CREDENTIAL_HEADERS = /^(authorization|proxy-authorization|cookie|x-api-key|api-key|x-auth-token)$/i;
export const PIN = /^sha256:((?:[0-9A-Fa-f]{2}:){31}[0-9A-Fa-f]{2}|[0-9A-Fa-f]{64})$/;

const secretHeader = z
  .strictObject({
    env: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected an environment variable name')
      .optional()
      .describe('the environment variable holding the value'),
    file: z.string().min(1).optional().describe('a file holding the value'),
  })
  .refine((v) => (v.env ? 1 : 0) + (v.file ? 1 : 0) === 1, { message: 'expected exactly one of env or file' });

const schema = z
  .strictObject({
    ...probeBase('http', { interval: 500, tolerance: 500 }),
    url: z
      .string()
      .url()
      .refine((u) => /^https?:\/\//i.test(u), { message: 'expected an http:// or https:// URL' })
      .optional()
      .describe("the URL; default on the lab: its nginx's stock page"),
    method: z.enum(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']).default('GET').describe('the request method'),
    headers: z
      .record(z.string().regex(HEADER_NAME, 'expected an HTTP header name'), z.string().regex(/^[^\r\n]*$/, 'expected a value without line breaks'))
      .default({})
      .describe('plain headers (no credentials: those go under secretHeaders)'),
    secretHeaders: z
      .record(z.string().regex(HEADER_NAME, 'expected an HTTP header name'), secretHeader)
      .default({})
      .describe('headers whose values are secrets: { Authorization: { env: API_TOKEN } } or { file: /run/secrets/token }'),
    body: z.string().optional().describe('the request body (not for GET or HEAD)'),
    expect: z
      .strictObject({
        status: z
          .union([z.number().int().min(100).max(599), z.array(z.number().int().min(100).max(599)).min(1)])
          .optional()
          .describe('expected status code(s); default: any 2xx'),
        body: regexString('expect.body').optional().describe('a regular expression the response body must match'),
      })
      .default({})
      .describe('what a good response is: { status, body }'),
    tls: z
      .strictObject({
        ca: z.string().min(1).optional().describe("a PEM file with the CA certificate(s) to trust instead of the system's"),
        pin: z
          .string()
          .regex(PIN, 'expected "sha256:" and 32 hex bytes (AB:CD:… or 64 hex digits)')
          .optional()
          .describe('the server certificate\'s SHA-256 fingerprint ("sha256:AB:CD:…" or 64 hex digits): the pin is the trust'),
        servername: z.string().min(1).optional().describe("the name the certificate is checked against (default: the URL's host)"),
      })
      .optional()
      .describe("how the server is trusted for an https:// URL: { ca, pin, servername } (default: the system's CAs)"),
    connectTimeout: duration({ min: 1 }).default(5000).describe('how long a connection (with its TLS handshake) may take'),
    requestTimeout: duration().default(0).describe("the client gives up on a response after this long, from sending the request (0: waits forever, Node's default)"),
    /** TCP_USER_TIMEOUT, ms (off unless given) */
    userTimeout: duration({ min: 1 }).optional().describe('TCP_USER_TIMEOUT: the kernel drops the connection when sent data stays unacknowledged this long (off unless given)'),
    keepalive: z
      .strictObject({
        idle: duration({ min: 1000 }).describe('TCP_KEEPIDLE: the first keepalive after this long idle'),
        interval: duration({ min: 1000 }).describe('TCP_KEEPINTVL: between unanswered keepalives'),
        count: z.number().int().min(1).max(127).describe('TCP_KEEPCNT: the connection ends after this many unanswered keepalives'),
      })
      .optional()
      .describe("OS TCP keepalive (idle/interval/count); Node's keep-alive agent turns keepalive on with 1 s idle by itself"),
    reconnect: reconnectSchema,
  })
  .superRefine((c, ctx) => {
    for (const h of Object.keys(c.headers)) {
      if (CREDENTIAL_HEADERS.test(h)) ctx.addIssue({ code: 'custom', path: ['headers', h], message: `"${h}" carries a credential: give it under secretHeaders as { env: VAR } or { file: PATH }` });
    }
    if (c.body !== undefined && (c.method === 'GET' || c.method === 'HEAD')) ctx.addIssue({ code: 'custom', path: ['body'], message: `a ${c.method} request has no body` });
    if (c.tls && c.url && !/^https:/i.test(c.url)) ctx.addIssue({ code: 'custom', path: ['tls'], message: 'tls is only for an https:// URL' });
  });
export type HttpConfig = z.infer<typeof schema>;

const normPin = (p: string) =>
  p
    .replace(/^sha256:/i, '')
    .replace(/:/g, '')
    .toUpperCase();

function statusOk(config: HttpConfig, status: number): boolean {
  const s = config.expect.status;
  if (s === undefined) return status >= 200 && status < 300;
  return Array.isArray(s) ? s.includes(status) : s === status;
}

function defaultUrl(ctx: ProbeContext): string {
  const n = ctx.target.services.nginx as { url?: string } | undefined;
  if (n?.url) return n.url;
  return `http://${ctx.target.address.includes(':') ? `[${ctx.target.address}]` : ctx.target.address}/`;
}

export const httpProbe: ProbeDefinition<HttpConfig> = {
  kind: 'http',
  summary: 'keep-alive HTTP(S) client: a request every interval, status and body checked; TLS verified (CA file or pinned certificate)',
  schema,
  policy: (c) => ({
    client: 'Node http/https, keep-alive Agent (one socket)',
    requestTimeoutMs: c.requestTimeout || 'none (Node default: waits forever)',
    connectTimeoutMs: c.connectTimeout,
    userTimeoutMs: c.userTimeout ?? 'OS default (none)',
    keepalive: c.keepalive ?? { idle: 1000, note: "Node's keep-alive Agent default; interval and count are the OS's" },
    tls: c.tls?.pin ? 'pinned certificate' : c.tls?.ca ? 'verified against the CA file' : 'verified against the system CAs',
    reconnect: c.reconnect.mode,
    onRequestError: 'connection discarded (session lost)',
  }),
  facts: (c) =>
    sessionFacts(
      [...request(c.requestTimeout, 'request timeout'), ...userTimeout(c.userTimeout)],
      ['TCP keepalive only probes an idle connection; with a request outstanding during the blackout it never fires', `connect timeout ${c.connectTimeout} ms: applies to opening a session only`],
      c.reconnect.mode !== 'none',
    ),
  create(config, ctx) {
    const url = new URL(config.url ?? defaultUrl(ctx));
    const isHttps = url.protocol === 'https:';
    const bodyRe = config.expect.body ? new RegExp(config.expect.body) : null;
    let secrets: string[] = [];
    let headers: Record<string, string> | null = null;
    let ca: Buffer | undefined;
    let connections = 0;
    /** the TCP socket under each TLS socket (socket options live there) */
    const rawOf = new WeakMap<Socket, Socket>();

    const prepare = () => {
      if (headers) return headers;
      const h: Record<string, string> = { 'user-agent': 'blackout-http-probe', ...config.headers };
      for (const [name, ref] of Object.entries(config.secretHeaders)) {
        const v = readSecret(ref, `${config.name}: header ${name}`);
        if (/[\r\n]/.test(v)) throw new Error(`${config.name}: the secret for header ${name} contains a line break`);
        h[name] = v;
        secrets.push(v);
      }
      if (config.tls?.ca) {
        try {
          ca = readFileSync(config.tls.ca);
        } catch (e) {
          throw new Error(`${config.name}: cannot read the CA file ${config.tls.ca} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
        }
      }
      headers = h;
      return h;
    };

    /** one TCP (+TLS) connection for the agent; calls back only once it is fully checked */
    const createConnection = (onDead: (e: Error) => void) => (_opts: unknown, cb: (err: Error | null, s?: Socket) => void) => {
      const host = url.hostname.replace(/^\[|\]$/g, '');
      const port = Number(url.port) || (isHttps ? 443 : 80);
      const raw = netConnect({ host, port, noDelay: true });
      let settled = false;
      const done = (err: Error | null, s?: Socket) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) {
          raw.destroy();
          cb(err);
        } else cb(null, s);
      };
      const timer = setTimeout(() => done(new Error(`connect ${host}:${port}: no answer within ${config.connectTimeout} ms`)), config.connectTimeout);
      raw.once('error', (e) => done(e));
      raw.once('connect', () => {
        try {
          if (config.keepalive) setKeepalive(raw, config.keepalive);
          if (config.userTimeout !== undefined) setUserTimeout(raw, config.userTimeout);
        } catch (e) {
          return done(e as Error);
        }
        if (!isHttps) return done(null, watch(raw));
        const pin = config.tls?.pin;
        const tls: TLSSocket = tlsConnect({
          socket: raw,
          // SNI carries names only, never an address
          ...(config.tls?.servername || !/^[\d.]+$|:/.test(host) ? { servername: config.tls?.servername ?? host } : {}),
          ...(ca ? { ca } : {}),
          // with a pin the fingerprint is the trust (a self-signed certificate has no chain to verify);
          // the check below runs before the agent gets the socket, so no request is written before it
          rejectUnauthorized: !pin,
          ALPNProtocols: ['http/1.1'],
          // the name (or IP address) the certificate must be issued for
          host: config.tls?.servername ?? host,
        });
        tls.once('error', (e) => done(e));
        tls.once('secureConnect', () => {
          if (pin) {
            const fp = tls.getPeerCertificate()?.fingerprint256 ?? '';
            if (normPin(fp) !== normPin(pin)) return done(new Error(`TLS: the server certificate's sha256 fingerprint ${fp || '(none)'} does not match the pinned one`));
          }
          done(null, watch(tls));
        });
      });
      function watch(s: Socket): Socket {
        rawOf.set(s, raw);
        connections++;
        if (connections > 1) ctx.emit({ type: 'probe-note', message: `new connection #${connections} (the previous keep-alive connection was closed)` });
        s.on('error', (e) => onDead(e));
        return s;
      }
    };

    const connect = async (signal: AbortSignal, onLost: (e: Error) => void): Promise<LoopSession> => {
      const h = prepare();
      let dead = false;
      const kill = (e: Error) => {
        if (dead) return;
        dead = true;
        agent.destroy();
        onLost(scrubbed(e, secrets));
      };
      const agentOpts = { keepAlive: true, keepAliveMsecs: config.keepalive?.idle ?? 1000, maxSockets: 1, maxFreeSockets: 1, scheduling: 'fifo' as const };
      const agent = isHttps ? new https.Agent(agentOpts) : new http.Agent(agentOpts);
      if (config.keepalive) {
        // the agent re-arms keepalive (idle only) each time the socket goes idle: keep the configured interval and count
        const keepSocketAlive = agent.keepSocketAlive.bind(agent);
        agent.keepSocketAlive = (s: Socket) => {
          const r = keepSocketAlive(s);
          try {
            setKeepalive(rawOf.get(s) ?? s, config.keepalive!);
          } catch {
            /* a closing socket */
          }
          return r;
        };
      }
      // an idle socket that errors (a reset while nobody waits) is discarded by the agent; the next request reconnects
      (agent as unknown as { createConnection: unknown }).createConnection = createConnection(() => {});
      const abort = () => {
        dead = true;
        agent.destroy();
      };
      signal.addEventListener('abort', abort, { once: true });

      const once = (): Promise<{ latencyMs: number; status: number }> =>
        new Promise((resolve, reject) => {
          const sent = ctx.clock.now();
          let finished = false;
          const req = (isHttps ? https : http).request(url, { method: config.method, headers: h, agent });
          const fail = (e: Error, network: boolean) => {
            if (finished) return;
            finished = true;
            clearTimeout(timer);
            req.destroy();
            reject(Object.assign(e, { network }));
          };
          const timer =
            config.requestTimeout > 0
              ? setTimeout(() => fail(Object.assign(new Error(`no response within the request timeout of ${config.requestTimeout} ms`), { code: 'ETIMEDOUT' }), true), config.requestTimeout)
              : undefined;
          req.on('error', (e) => fail(e, true));
          req.on('response', (res) => {
            const chunks: Buffer[] = [];
            let size = 0;
            res.on('data', (d: Buffer) => {
              // a body pattern looks at the first MiB only: enough for a page, bounded for a download
              if (size < 1 << 20) chunks.push(d);
              size += d.length;
            });
            res.on('error', (e) => fail(e, true));
            res.on('aborted', () => fail(new Error('the response was cut off'), true));
            res.on('end', () => {
              if (finished) return;
              finished = true;
              clearTimeout(timer);
              const status = res.statusCode ?? 0;
              if (!statusOk(config, status))
                return reject(Object.assign(new Error(`HTTP ${status} ${res.statusMessage ?? ''}`.trim() + `, expected ${config.expect.status ?? '2xx'}`), { network: false }));
              if (bodyRe && !bodyRe.test(Buffer.concat(chunks).toString('utf8')))
                return reject(Object.assign(new Error(`the response body (${size} bytes) does not match /${config.expect.body}/`), { network: false }));
              resolve({ latencyMs: ctx.clock.now() - sent, status });
            });
          });
          if (config.body !== undefined) req.end(config.body);
          else req.end();
        });

      const request = async () => {
        if (dead) throw new Error('connection is closed');
        try {
          const r = await once();
          return { latencyMs: r.latencyMs, value: r.status };
        } catch (e) {
          // a network failure: the connection is in an unknown state; discard it, as a client library would
          if ((e as { network?: boolean }).network) kill(e as Error);
          throw scrubbed(e, secrets);
        }
      };
      // the first request is the preflight: address, TLS trust, status and body expectations
      try {
        await once();
      } catch (e) {
        abort();
        signal.removeEventListener('abort', abort);
        throw scrubbed(e, secrets);
      }
      return {
        request,
        alive: () => !dead,
        async close() {
          dead = true;
          signal.removeEventListener('abort', abort);
          agent.destroy();
        },
      };
    };

    const loop = new SessionLoop({ ctx, interval: config.interval, reconnect: config.reconnect, connect });
    return {
      open: () => loop.open(),
      close: async () => {
        await loop.close();
        secrets = [];
      },
    };
  },
};
