/**
 * odbc: the database loop of the postgres probe through real ODBC — the `odbc`
 * package over unixODBC with Debian's PostgreSQL ODBC driver (psqlODBC), via a
 * DSN. The DSN is written into a private odbc.ini (ODBCINI / ODBCSYSINI point
 * the driver manager at it; /etc is never touched); the password goes only
 * into the in-memory connection string.
 *
 * ODBC's own policy is explicit: SQL_ATTR_LOGIN_TIMEOUT, SQL_ATTR_CONNECTION_TIMEOUT,
 * SQL_ATTR_QUERY_TIMEOUT (psqlODBC enforces it on the server as statement_timeout,
 * so it does not fire while the network is gone), the driver's TCP keepalive
 * (KeepaliveTime/KeepaliveInterval), libpq's tcp_user_timeout (pqopt), and the
 * application's own watchdog on a call (`callTimeout`: the application gives up
 * and restarts its ODBC client).
 *
 * The ODBC client runs in its own process (odbc-client.mjs): a driver call
 * blocked on a dead network cannot be cancelled from JavaScript, but a process
 * can always be ended by its PID.
 */
import { childEnv } from '../transport/child-env.ts';
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { duration, probeBase, secretRef } from '../core/schema-util.ts';
import { passwordRef, readSecret, scrubbed } from '../core/secrets.ts';
import { reconnectSchema, SessionLoop, type LoopSession } from './shared/session-loop.ts';
import { note, sessionFacts, userTimeout } from './shared/facts.ts';
import type { ProbeDefinition } from '../core/probe.ts';
import { tableName, WriteLedger } from './shared/write-ledger.ts';

const CLIENT = fileURLToPath(new URL('./shared/odbc-client.mjs', import.meta.url));
const DRIVERS = ['/usr/lib/x86_64-linux-gnu/odbc/psqlodbcw.so', '/usr/lib/aarch64-linux-gnu/odbc/psqlodbcw.so', '/usr/lib/odbc/psqlodbcw.so'];

const ODBC_VALUE = /^[^;{}[\]=\x00-\x1f\x7f]{1,63}$/;
const ODBC_VALUE_MESSAGE = 'expected 1–63 characters without ;, =, braces, brackets or control characters (newlines)';

const seconds = (ms: number) => Math.max(1, Math.round(ms / 1000));

const schema = z.strictObject({
  ...probeBase('odbc', { interval: 200, tolerance: 500 }),
  // host, database, user and driver become lines of a private odbc.ini, the password a value of the
  // connection string: a newline would add a line (a setting of the caller's choosing), ";" or a brace a
  // connection attribute
  host: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9.:-]{0,252}$/, 'expected a host name or an IP address').optional(),
  port: z.number().int().min(1).max(65535).optional(),
  database: z.string().regex(ODBC_VALUE, ODBC_VALUE_MESSAGE).optional(),
  user: z.string().regex(ODBC_VALUE, ODBC_VALUE_MESSAGE).optional(),
  ...secretRef,
  /** the ODBC driver library (default: Debian's psqlodbcw.so) */
  driver: z.string().regex(/^\/[^;{}\x00-\x1f\x7f]{1,4095}$/, 'expected an absolute path without ;, braces or control characters').optional(),
  /** SQL_ATTR_LOGIN_TIMEOUT (whole seconds) */
  loginTimeout: duration({ min: 1000 }).default(5000),
  /** SQL_ATTR_CONNECTION_TIMEOUT (whole seconds; 0: none) */
  connectionTimeout: duration().default(0),
  /** SQL_ATTR_QUERY_TIMEOUT (whole seconds; 0: none) — psqlODBC sets it as the server's statement_timeout */
  queryTimeout: duration().default(0),
  /** the driver's TCP keepalive: KeepaliveTime / KeepaliveInterval (whole seconds) */
  keepalive: z.strictObject({ idle: duration({ min: 1000 }), interval: duration({ min: 1000 }) }).optional(),
  /** libpq tcp_user_timeout through the driver's pqopt (ms) */
  tcpUserTimeout: duration({ min: 1 }).optional(),
  /** the application's watchdog on each ODBC call: past it the app restarts its ODBC client (0: waits forever) */
  callTimeout: duration().default(0),
  reconnect: reconnectSchema,
  verifyTimeout: duration({ min: 1000 }).default(10_000),
  keepTable: z.boolean().default(false),
});
export type OdbcConfig = z.infer<typeof schema>;

interface Reply {
  id: number;
  ok: boolean;
  rows?: Array<Record<string, unknown>>;
  error?: { message: string; state?: string; code?: number };
}

class OdbcError extends Error {
  constructor(
    message: string,
    readonly state?: string,
  ) {
    super(message);
  }
}

/** one ODBC client process */
class OdbcProcess {
  private child: ChildProcess;
  private nextId = 1;
  private pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void; timer?: NodeJS.Timeout }>();
  exited = false;
  private stderr = '';

  constructor(env: NodeJS.ProcessEnv, onExit: (e: Error) => void) {
    this.child = fork(CLIENT, [], { env, stdio: ['ignore', 'ignore', 'pipe', 'ipc'], serialization: 'json' });
    this.child.on('error', () => {}); // send errors are handled per call
    this.child.stderr?.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-2000)));
    this.child.on('message', (m: Reply) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      clearTimeout(p.timer);
      p.resolve(m);
    });
    this.child.on('exit', (code, signal) => {
      this.exited = true;
      const e = new Error(`the ODBC client process ended (${signal ?? `exit ${code}`})${this.stderr.trim() ? `: ${this.stderr.trim().split('\n').pop()}` : ''}`);
      for (const p of this.pending.values()) {
        clearTimeout(p.timer);
        p.reject(e);
      }
      this.pending.clear();
      onExit(e);
    });
  }

  /** sends one call; `timeoutMs` > 0: the application stops waiting and ends the process */
  call(msg: Record<string, unknown>, timeoutMs: number, what: string): Promise<Array<Record<string, unknown>>> {
    return new Promise((resolve, reject) => {
      if (this.exited) return reject(new Error('the ODBC client process has ended'));
      const id = this.nextId++;
      const entry: { resolve: (r: Reply) => void; reject: (e: Error) => void; timer?: NodeJS.Timeout } = {
        resolve: (r) => (r.ok ? resolve(r.rows ?? []) : reject(new OdbcError(r.error?.message ?? 'ODBC error', r.error?.state))),
        reject,
      };
      if (timeoutMs > 0) {
        entry.timer = setTimeout(() => {
          this.pending.delete(id);
          reject(new Error(`${what}: the ODBC call did not return within ${timeoutMs} ms; the application gave up and restarts its ODBC client`));
          this.kill();
        }, timeoutMs);
      }
      this.pending.set(id, entry);
      // a process killed a moment ago: the send fails (EPIPE), the exit handler rejects the call
      this.child.send({ id, ...msg }, (err) => {
        if (err && this.pending.delete(id)) {
          clearTimeout(entry.timer);
          reject(new Error(`the ODBC client process is gone (${err.message})`));
        }
      });
    });
  }

  kill(): void {
    if (!this.exited && this.child.pid) this.child.kill('SIGKILL');
  }

  async close(): Promise<void> {
    if (this.exited) return;
    await this.call({ op: 'close' }, 1000, 'close').catch(() => {});
    this.kill();
  }
}

/** SQLSTATE class 08 (connection exception) or no state: the client does not know what happened */
const connectionProblem = (e: unknown) => !(e instanceof OdbcError) || !e.state || e.state.startsWith('08') || e.state.startsWith('HY');

export const odbc: ProbeDefinition<OdbcConfig> = {
  kind: 'odbc',
  summary: 'ODBC (odbc npm + unixODBC + psqlODBC) DSN loop: INSERT + read back every interval; lost-write check at close',
  schema,
  policy: (c) => ({
    client: 'odbc (npm) → unixODBC → psqlODBC',
    loginTimeoutS: seconds(c.loginTimeout),
    connectionTimeoutS: c.connectionTimeout ? seconds(c.connectionTimeout) : 'none',
    queryTimeoutS: c.queryTimeout ? `${seconds(c.queryTimeout)} (psqlODBC: server-side statement_timeout)` : 'none',
    keepalive: c.keepalive ? { idleS: seconds(c.keepalive.idle), intervalS: seconds(c.keepalive.interval) } : 'driver default',
    tcpUserTimeoutMs: c.tcpUserTimeout ?? 'none',
    callTimeoutMs: c.callTimeout || 'none (a call waits as long as the driver does)',
    reconnect: c.reconnect.mode,
    verify: 'every acknowledged INSERT present at close',
  }),
  facts: (c) =>
    sessionFacts(
      userTimeout(c.tcpUserTimeout),
      [
        ...note(c.queryTimeout, `query timeout ${c.queryTimeout} ms: psqlODBC enforces it on the server (statement_timeout), so a blackout does not trigger it`),
        ...note(c.keepalive, 'TCP keepalive only probes an idle connection; with a request outstanding during the blackout it never fires'),
        ...note(c.callTimeout, `call timeout ${c.callTimeout} ms: the harness's own watchdog on a driver call`),
        `login timeout ${c.loginTimeout} ms: applies to opening a session only`,
      ],
      c.reconnect.mode !== 'none',
    ),
  create(config, ctx) {
    const ledger = new WriteLedger();
    const table = tableName(config.name, ctx.trial);
    let password = '';
    let dir: string | null = null;
    let env: NodeJS.ProcessEnv = {};
    let connectionString = '';
    let tableReady = false;
    const sc = (e: unknown) => scrubbed(e, password ? [password] : []);

    function prepare(): void {
      const t = ctx.target.services.postgres;
      const database = config.database ?? t?.database;
      const user = config.user ?? t?.user;
      if (!database || !user) throw new Error(`${config.name}: no database/user (target.postgres or the probe's database and user)`);
      password = readSecret(passwordRef(config.passwordEnv || config.passwordFile ? config : (t ?? {})), `${config.name}: database password`);
      if (/[\x00-\x1f\x7f]/.test(password)) throw new Error(`${config.name}: the database password holds a control character (a newline?): refused`);
      for (const [field, v] of [['database', database], ['user', user]] as const) {
        if (!ODBC_VALUE.test(v)) throw new Error(`${config.name}: ${field} from the target: ${ODBC_VALUE_MESSAGE}`);
      }
      const driver = config.driver ?? DRIVERS.find((d) => existsSync(d));
      if (!driver || !existsSync(driver)) throw new Error(`${config.name}: the PostgreSQL ODBC driver (psqlodbcw.so, Debian package odbc-postgresql) was not found`);
      dir = mkdtempSync(join(tmpdir(), 'blackout-odbc-'));
      const dsn = `blackout_${config.name.replace(/[^A-Za-z0-9_]/g, '_')}`;
      const lines = [
        `[${dsn}]`,
        `Description = blackout probe ${config.name}`,
        `Driver = ${driver}`,
        `Servername = ${config.host ?? t?.host ?? ctx.target.address}`,
        `Port = ${config.port ?? t?.port ?? 5432}`,
        `Database = ${database}`,
        `Username = ${user}`,
        `ConnSettings = SET application_name = 'blackout ${config.name.replace(/'/g, '')}'`,
        ...(config.keepalive ? [`KeepaliveTime = ${seconds(config.keepalive.idle)}`, `KeepaliveInterval = ${seconds(config.keepalive.interval)}`] : []),
        '',
      ];
      writeFileSync(join(dir, 'odbc.ini'), lines.join('\n'), { mode: 0o600 });
      writeFileSync(join(dir, 'odbcinst.ini'), '', { mode: 0o600 });
      env = childEnv({ ODBCINI: join(dir, 'odbc.ini'), ODBCSYSINI: dir });
      const pqopt = config.tcpUserTimeout !== undefined ? `;pqopt={tcp_user_timeout=${Math.round(config.tcpUserTimeout)}}` : '';
      connectionString = `DSN=${dsn};PWD={${password.replace(/}/g, '}}')}}${pqopt}`;
      ctx.emit({ type: 'probe-note', message: `DSN ${dsn} in a private odbc.ini (driver ${driver}); writing to table ${table}`, data: { dsn, driver, table } });
    }

    async function openProcess(onLost: (e: Error) => void, loginTimeout: number): Promise<OdbcProcess> {
      const proc = new OdbcProcess(env, onLost);
      try {
        await proc.call({ op: 'connect', connectionString, loginTimeout: seconds(loginTimeout), connectionTimeout: config.connectionTimeout ? seconds(config.connectionTimeout) : 0 }, loginTimeout + 5000, 'connect');
      } catch (e) {
        proc.kill();
        throw sc(e);
      }
      return proc;
    }

    const q = (proc: OdbcProcess, sql: string, params: unknown[] = []) =>
      proc.call({ op: 'query', sql, params, timeout: config.queryTimeout ? seconds(config.queryTimeout) : 0 }, config.callTimeout, sql.split(' ').slice(0, 2).join(' '));

    const loop = new SessionLoop({
      ctx,
      interval: config.interval,
      reconnect: config.reconnect,
      async connect(signal, onLost) {
        if (!dir) prepare();
        let dead = false;
        const lost = (e: Error) => {
          if (dead) return;
          dead = true;
          onLost(sc(e));
        };
        const proc = await openProcess(lost, config.loginTimeout);
        signal.addEventListener('abort', () => proc.kill(), { once: true });
        if (!tableReady) {
          try {
            await q(proc, `DROP TABLE IF EXISTS ${table}`);
            await q(proc, `CREATE TABLE ${table} (seq bigint PRIMARY KEY, written_at timestamptz NOT NULL DEFAULT clock_timestamp())`);
          } catch (e) {
            dead = true;
            proc.kill();
            throw sc(e);
          }
          tableReady = true;
        }
        const session: LoopSession = {
          async request(seq) {
            const sent = ctx.clock.now();
            try {
              const ins = await q(proc, `INSERT INTO ${table} (seq) VALUES (?) RETURNING seq`, [seq]);
              if (Number(ins[0]?.seq) !== seq) throw new Error(`INSERT returned ${JSON.stringify(ins[0])}, expected seq ${seq}`);
              ledger.ack(seq);
              const sel = await q(proc, `SELECT seq FROM ${table} WHERE seq = ?`, [seq]);
              if (sel.length !== 1) throw new Error(`read back of seq ${seq}: ${sel.length} rows`);
              return { latencyMs: ctx.clock.now() - sent, value: seq };
            } catch (e) {
              const unknown = connectionProblem(e);
              ledger.fail(seq, (e as Error).message, !unknown);
              if (unknown) {
                lost(e as Error);
                proc.kill();
              }
              throw sc(e);
            }
          },
          alive: () => !dead && !proc.exited,
          async close() {
            dead = true;
            await proc.close();
          },
        };
        return session;
      },
    });

    return {
      open: () => loop.open(),
      async close() {
        await loop.close();
        try {
          if (!tableReady) return;
          let proc: OdbcProcess | null = null;
          try {
            proc = await openProcess(() => {}, config.verifyTimeout);
            const rows = await proc.call({ op: 'query', sql: `SELECT seq FROM ${table}`, params: [], timeout: seconds(config.verifyTimeout) }, config.verifyTimeout + 2000, 'verify');
            const { lost } = ledger.verify(ctx, rows.map((r) => Number(r.seq)), table);
            if (!lost.length && !config.keepTable) await proc.call({ op: 'query', sql: `DROP TABLE IF EXISTS ${table}`, params: [] }, config.verifyTimeout, 'drop');
          } catch (e) {
            ctx.emit({ type: 'verify', ok: false, message: `could not check the acknowledged writes in ${table}: ${sc(e).message}`, data: { table, acknowledged: ledger.acked.size } });
          } finally {
            await proc?.close();
          }
        } finally {
          if (dir) rmSync(dir, { recursive: true, force: true });
        }
      },
    };
  },
};
