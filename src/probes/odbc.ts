/**
 * odbc: a database loop through real ODBC — the `odbc` package over unixODBC
 * with any installed driver: Debian's psqlODBC (the default), MariaDB's
 * Connector/ODBC (odbc-mariadb), or another one named by its odbcinst.ini
 * entry or library path, or a DSN configured on this machine. Every interval
 * it writes a row and reads it back (the write ledger: every acknowledged
 * INSERT must be there at close), or runs the suite's read-only `query`.
 *
 * The connection is described by a private odbc.ini (ODBCINI / ODBCSYSINI
 * point the driver manager at it; /etc is never touched) or by the machine's
 * own DSN; the password goes only into the in-memory connection string. Every
 * value that reaches the connection string or odbc.ini is checked: no `;`,
 * braces, quotes or control characters, which would change what the driver
 * is told (another driver library, another server).
 *
 * Timeouts are applied the way each driver enforces them, and the policy says so:
 *  - login timeout: SQL_ATTR_LOGIN_TIMEOUT (both drivers bound the connect with it);
 *  - query timeout: SQL_ATTR_QUERY_TIMEOUT. psqlODBC turns it into the server's
 *    statement_timeout; MariaDB Connector/ODBC 3.1 (Debian 12) ignores it, later
 *    versions send it as the server's max_statement_time. Either way it runs on
 *    the server's clock and does not fire while the network is gone;
 *  - the driver's own network timeout (`networkTimeout`), which does: libpq's
 *    tcp_user_timeout through psqlODBC's pqopt; MariaDB's READ_TIMEOUT and
 *    WRITE_TIMEOUT (client-side socket timeouts, whole seconds);
 *  - psqlODBC's TCP keepalive (KeepaliveTime / KeepaliveInterval);
 *  - the application's own watchdog on a call (`callTimeout`: it gives up and
 *    restarts its ODBC client).
 *
 * The ODBC client runs in its own process (odbc-client.mjs): a driver call
 * blocked on a dead network cannot be cancelled from JavaScript, but a process
 * can always be ended by its PID.
 */
import { childEnv } from '../transport/child-env.ts';
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { duration, probeBase, secretRef } from '../core/schema-util.ts';
import { passwordRef, readSecret, scrubbed } from '../core/secrets.ts';
import { reconnectSchema, SessionLoop, type LoopSession } from './shared/session-loop.ts';
import { note, request, sessionFacts, userTimeout } from './shared/facts.ts';
import type { ProbeDefinition } from '../core/probe.ts';
import { tableName, WriteLedger } from './shared/write-ledger.ts';

const CLIENT = fileURLToPath(new URL('./shared/odbc-client.mjs', import.meta.url));
const DRIVERS = ['/usr/lib/x86_64-linux-gnu/odbc/psqlodbcw.so', '/usr/lib/aarch64-linux-gnu/odbc/psqlodbcw.so', '/usr/lib/odbc/psqlodbcw.so'];

const seconds = (ms: number) => Math.max(1, Math.round(ms / 1000));
/** a client-side socket timeout in whole seconds: rounded up, never shorter than asked */
const secondsUp = (ms: number) => Math.max(1, Math.ceil(ms / 1000));

/**
 * A value that reaches the ODBC connection string or odbc.ini: `;` ends an
 * attribute, braces and quotes change how the driver manager splits it, and a
 * control character (a newline) starts a new odbc.ini line.
 */
const CONN_UNSAFE = /[;{}"'\x00-\x1f\x7f]/;
const connValue = (what: string) =>
  z
    .string()
    .min(1)
    .max(1024)
    .refine((v) => !CONN_UNSAFE.test(v), { message: `${what}: must not contain ";", braces, quotes or control characters (they would change the ODBC connection string)` });

/** how a driver is spoken to: its keywords, the ledger table's SQL, and where its network timeout lives */
export type Dialect = 'postgres' | 'mariadb' | 'generic';

const schema = z
  .strictObject({
    ...probeBase('odbc', { interval: 200, tolerance: 500 }),
    host: connValue('host').optional().describe("the database server (default: the target's address)"),
    port: z.number().int().min(1).max(65535).optional().describe("the port (default: the driver's)"),
    database: connValue('database').optional().describe("the database (default: the target's)"),
    user: connValue('user').optional().describe("the user (default: the target's)"),
    ...secretRef,
    driver: connValue('driver').optional().describe('the ODBC driver: its odbcinst.ini name ("MariaDB Unicode") or its library path (default: Debian\'s psqlODBC)'),
    dsn: connValue('dsn')
      .regex(/^[A-Za-z0-9_. -]{1,128}$/, 'expected a DSN name (letters, digits, "_", ".", "-", spaces)')
      .optional()
      .describe('a DSN configured on this machine (odbc.ini) instead of a driver: its own settings apply, the probe adds the user and password'),
    dialect: z.enum(['postgres', 'mariadb', 'generic']).optional().describe("how to speak to the driver; default: from the driver's name (psqlODBC → postgres, MariaDB/MySQL → mariadb, else generic)"),
    attributes: z
      .record(z.string().regex(/^[A-Za-z][A-Za-z0-9_]{0,63}$/, 'expected an attribute name (letters, digits, "_")'), z.union([connValue('attribute value'), z.number()]))
      .default({})
      .describe('more connection attributes for the driver, e.g. { SSLMODE: require }'),
    query: z.string().min(1).max(10_000).optional().describe('a read-only query run every interval instead of the write ledger (e.g. "SELECT 1")'),
    loginTimeout: duration({ min: 1000 }).default(5000).describe('SQL_ATTR_LOGIN_TIMEOUT (whole seconds)'),
    connectionTimeout: duration().default(0).describe('SQL_ATTR_CONNECTION_TIMEOUT (whole seconds; 0: none)'),
    queryTimeout: duration().default(0).describe('SQL_ATTR_QUERY_TIMEOUT (whole seconds; 0: none) — enforced on the server where the driver applies it'),
    networkTimeout: duration({ min: 1 }).optional().describe("the driver's own network timeout: psqlODBC → libpq tcp_user_timeout; MariaDB → READ_TIMEOUT / WRITE_TIMEOUT (whole seconds)"),
    keepalive: z
      .strictObject({
        idle: duration({ min: 1000 }).describe('KeepaliveTime: the first keepalive after this long idle'),
        interval: duration({ min: 1000 }).describe('KeepaliveInterval: between unanswered keepalives'),
      })
      .optional()
      .describe("psqlODBC's TCP keepalive: KeepaliveTime / KeepaliveInterval (whole seconds)"),
    tcpUserTimeout: duration({ min: 1 }).optional().describe("libpq tcp_user_timeout through psqlODBC's pqopt (ms); the same as networkTimeout for psqlODBC"),
    callTimeout: duration().default(0).describe("the application's watchdog on each ODBC call: past it the app restarts its ODBC client (0: waits forever)"),
    reconnect: reconnectSchema,
    verifyTimeout: duration({ min: 1000 }).default(10_000).describe("the after-the-fact check's own connect + query timeout"),
    keepTable: z.boolean().default(false).describe("keep the probe's table after the check (default: dropped when no data was lost)"),
  })
  .refine((c) => !(c.dsn && c.driver), { message: 'give a driver or a dsn, not both', path: ['dsn'] })
  .refine((c) => !(c.tcpUserTimeout !== undefined && c.networkTimeout !== undefined), { message: 'give networkTimeout or tcpUserTimeout, not both', path: ['tcpUserTimeout'] })
  .superRefine((c, ctx) => {
    const d = dialectOf(c);
    if (d !== 'postgres' && c.keepalive) ctx.addIssue({ code: 'custom', path: ['keepalive'], message: `the ${d} dialect has no keepalive setting (psqlODBC only); use the driver's attributes` });
    if (d !== 'postgres' && c.tcpUserTimeout !== undefined)
      ctx.addIssue({ code: 'custom', path: ['tcpUserTimeout'], message: `tcpUserTimeout is libpq's (psqlODBC); for the ${d} dialect use networkTimeout` });
    if (d === 'generic' && c.networkTimeout !== undefined)
      ctx.addIssue({ code: 'custom', path: ['networkTimeout'], message: "the generic dialect does not know this driver's network timeout: set it in attributes" });
  });
export type OdbcConfig = z.infer<typeof schema>;

/** The dialect a config speaks: stated, or recognised from the driver's name or library. */
export function dialectOf(c: { dialect?: Dialect; driver?: string; dsn?: string }): Dialect {
  if (c.dialect) return c.dialect;
  if (c.dsn) return 'generic';
  const d = (c.driver ?? 'psqlodbcw.so').toLowerCase();
  if (/psqlodbc|postgres/.test(d)) return 'postgres';
  if (/maodbc|mariadb|mysql/.test(d)) return 'mariadb';
  return 'generic';
}

/** the network timeout a config asks of the driver, ms */
const networkTimeoutOf = (c: OdbcConfig): number | undefined => c.networkTimeout ?? c.tcpUserTimeout;

/** The ledger table, in the dialect's SQL. */
export function ledgerTableSql(dialect: Dialect, table: string): string {
  if (dialect === 'postgres') return `CREATE TABLE ${table} (seq bigint PRIMARY KEY, written_at timestamptz NOT NULL DEFAULT clock_timestamp())`;
  if (dialect === 'mariadb') return `CREATE TABLE ${table} (seq BIGINT PRIMARY KEY, written_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)) ENGINE=InnoDB`;
  return `CREATE TABLE ${table} (seq BIGINT PRIMARY KEY)`;
}

/** a value for the ODBC connection string: braced, with "}" doubled (ODBC's own escaping) */
export function braced(v: string): string {
  return `{${v.replace(/}/g, '}}')}}`;
}

/**
 * The private odbc.ini section (without the password) and the connection string
 * (with it) for a config. Pure; the schema has already refused unsafe values, and
 * this checks again, so a value from the target's own records is held to the same rule.
 */
export function connectionOf(
  c: OdbcConfig,
  a: { host: string; port: number; database?: string; user: string; password: string; driver: string; dsnName: string },
): { ini: string[] | null; connectionString: string } {
  const d = dialectOf(c);
  for (const [k, v] of Object.entries({ host: a.host, database: a.database ?? '', user: a.user, driver: a.driver, ...c.attributes })) {
    if (CONN_UNSAFE.test(String(v))) throw new Error(`${k}: must not contain ";", braces, quotes or control characters (they would change the ODBC connection string)`);
  }
  if (/[\x00-\x1f\x7f]/.test(a.password)) throw new Error('the password contains a control character, which an ODBC connection string cannot carry');
  const nt = networkTimeoutOf(c);
  const attrs = Object.entries(c.attributes).map(([k, v]) => `${k}=${v}`);
  if (c.dsn) {
    // the machine's own DSN: its settings, plus the user, the password and the suite's attributes
    return { ini: null, connectionString: [`DSN=${c.dsn}`, `UID=${a.user}`, `PWD=${braced(a.password)}`, ...attrs].join(';') };
  }
  const lines = [`[${a.dsnName}]`, `Description = blackout probe ${c.name}`, `Driver = ${a.driver}`];
  if (d === 'postgres') {
    lines.push(`Servername = ${a.host}`, `Port = ${a.port}`, ...(a.database ? [`Database = ${a.database}`] : []), `ConnSettings = SET application_name = 'blackout ${c.name}'`);
    if (c.keepalive) lines.push(`KeepaliveTime = ${seconds(c.keepalive.idle)}`, `KeepaliveInterval = ${seconds(c.keepalive.interval)}`);
  } else {
    lines.push(`SERVER = ${a.host}`, `PORT = ${a.port}`, ...(a.database ? [`DATABASE = ${a.database}`] : []));
    if (d === 'mariadb' && nt !== undefined) lines.push(`READ_TIMEOUT = ${secondsUp(nt)}`, `WRITE_TIMEOUT = ${secondsUp(nt)}`);
  }
  for (const [k, v] of Object.entries(c.attributes)) lines.push(`${k} = ${v}`);
  lines.push('');
  const pqopt = d === 'postgres' && nt !== undefined ? [`pqopt=${braced(`tcp_user_timeout=${Math.round(nt)}`)}`] : [];
  return { ini: lines, connectionString: [`DSN=${a.dsnName}`, `UID=${a.user}`, `PWD=${braced(a.password)}`, ...pqopt].join(';') };
}

/** a driver given by name: its library from the driver manager's odbcinst.ini, so a missing one is named at preflight */
function driverLibrary(driver: string): string {
  if (driver.includes('/')) {
    if (!existsSync(driver)) throw new Error(`the ODBC driver library ${driver} was not found`);
    return driver;
  }
  let ini = '';
  try {
    ini = readFileSync('/etc/odbcinst.ini', 'utf8');
  } catch {
    /* no system driver list */
  }
  const sections = ini.split(/^\[/m).map((sec) => {
    const [name, ...body] = sec.split('\n');
    return { name: (name ?? '').replace(/\].*$/, '').trim(), body: body.join('\n') };
  });
  const hit = sections.find((x) => x.name.toLowerCase() === driver.toLowerCase());
  if (!hit)
    throw new Error(
      `no ODBC driver named "${driver}" in /etc/odbcinst.ini (installed: ${
        sections
          .map((x) => x.name)
          .filter(Boolean)
          .join(', ') || 'none'
      })`,
    );
  const lib = /^\s*Driver\s*=\s*(.+?)\s*$/im.exec(hit.body)?.[1];
  if (!lib) throw new Error(`the ODBC driver "${driver}" in /etc/odbcinst.ini names no Driver library`);
  const path = lib.includes('/') ? lib : (['/usr/lib/x86_64-linux-gnu/odbc', '/usr/lib/aarch64-linux-gnu/odbc', '/usr/lib/odbc'].map((d) => `${d}/${lib}`).find((p) => existsSync(p)) ?? lib);
  if (path.includes('/') && !existsSync(path)) throw new Error(`the ODBC driver "${driver}": its library ${path} was not found`);
  return path;
}

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
    this.child.on('exit', () => (this.exited = true));
    // 'close': after the exit and the end of its stderr, whose last line is the reason
    this.child.on('close', (code, signal) => {
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
  summary: 'ODBC (odbc npm + unixODBC + any driver: psqlODBC, MariaDB, a DSN) loop: INSERT + read back every interval, or a query; lost-write check at close',
  packages: ['unixodbc', 'odbc-postgresql', 'odbc-mariadb'],
  schema,
  policy: (c) => {
    const d = dialectOf(c);
    const nt = networkTimeoutOf(c);
    const driverName = c.dsn ? `DSN ${c.dsn}` : d === 'postgres' ? 'psqlODBC' : d === 'mariadb' ? 'MariaDB Connector/ODBC' : (c.driver ?? 'driver');
    return {
      client: `odbc (npm) → unixODBC → ${driverName}`,
      dialect: d,
      loginTimeoutS: seconds(c.loginTimeout),
      connectionTimeoutS: c.connectionTimeout ? seconds(c.connectionTimeout) : 'none',
      queryTimeoutS: c.queryTimeout
        ? `${seconds(c.queryTimeout)} (${d === 'postgres' ? "psqlODBC: the server's statement_timeout" : d === 'mariadb' ? "MariaDB: ignored by Connector/ODBC 3.1, the server's max_statement_time from 3.2" : 'as the driver applies it'}; does not fire while the network is gone)`
        : 'none',
      ...(d === 'postgres' ? { keepalive: c.keepalive ? { idleS: seconds(c.keepalive.idle), intervalS: seconds(c.keepalive.interval) } : 'driver default' } : {}),
      // the driver's own network timeout, under the name the prediction rules know
      ...(d === 'postgres' ? { tcpUserTimeoutMs: nt ?? 'none' } : {}),
      ...(d === 'mariadb' ? { readTimeoutMs: nt !== undefined ? secondsUp(nt) * 1000 : 'none', writeTimeoutMs: nt !== undefined ? secondsUp(nt) * 1000 : 'none' } : {}),
      ...(Object.keys(c.attributes).length ? { attributes: Object.keys(c.attributes) } : {}),
      callTimeoutMs: c.callTimeout || 'none (a call waits as long as the driver does)',
      reconnect: c.reconnect.mode,
      verify: c.query ? 'none (read-only query)' : 'every acknowledged INSERT present at close',
    };
  },
  facts: (c) => {
    const d = dialectOf(c);
    const nt = networkTimeoutOf(c);
    return sessionFacts(
      // the driver's own network timeout: libpq's tcp_user_timeout for psqlODBC, MariaDB's READ_TIMEOUT (whole seconds, a request deadline)
      d === 'postgres' ? userTimeout(nt) : d === 'mariadb' && nt !== undefined ? request(secondsUp(nt) * 1000, 'MariaDB read timeout') : [],
      [
        ...note(
          c.queryTimeout,
          `query timeout ${c.queryTimeout} ms: ${d === 'postgres' ? 'psqlODBC enforces it on the server (statement_timeout)' : d === 'mariadb' ? 'ignored by MariaDB Connector/ODBC 3.1' : 'as the driver applies it'}, so a blackout does not trigger it`,
        ),
        ...note(c.keepalive, 'TCP keepalive only probes an idle connection; with a request outstanding during the blackout it never fires'),
        ...note(c.callTimeout, `call timeout ${c.callTimeout} ms: the harness's own watchdog on a driver call`),
        `login timeout ${c.loginTimeout} ms: applies to opening a session only`,
      ],
      c.reconnect.mode !== 'none',
    );
  },
  create(config, ctx) {
    const ledger = new WriteLedger();
    const table = tableName(config.name, ctx.trial);
    const dialect = dialectOf(config);
    const writes = config.query === undefined;
    let password = '';
    let dir: string | null = null;
    let env: NodeJS.ProcessEnv = {};
    let connectionString = '';
    let tableReady = !writes;
    const sc = (e: unknown) => scrubbed(e, password ? [password] : []);

    function prepare(): void {
      // the target's own records for the dialect's server (the lab's PostgreSQL or MariaDB)
      const t = (dialect === 'mariadb' ? ctx.target.services.mariadb : dialect === 'postgres' ? ctx.target.services.postgres : undefined) as
        { host?: string; port?: number; database?: string; user?: string; passwordEnv?: string; passwordFile?: string } | undefined;
      const database = config.database ?? t?.database;
      const user = config.user ?? t?.user;
      if (!user) throw new Error(`${config.name}: no user (the probe's user, or the target's ${dialect} service)`);
      if (!config.dsn && !database && dialect !== 'generic') throw new Error(`${config.name}: no database (the probe's database, or the target's ${dialect} service)`);
      password = readSecret(passwordRef(config.passwordEnv || config.passwordFile ? config : (t ?? {})), `${config.name}: database password`);
      let driver = '';
      if (!config.dsn) {
        driver = config.driver ? driverLibrary(config.driver) : (DRIVERS.find((d) => existsSync(d)) ?? '');
        if (!driver) throw new Error(`${config.name}: the PostgreSQL ODBC driver (psqlodbcw.so, Debian package odbc-postgresql) was not found`);
      }
      const dsnName = `blackout_${config.name.replace(/[^A-Za-z0-9_]/g, '_')}`;
      const port = config.port ?? t?.port ?? (dialect === 'mariadb' ? 3306 : 5432);
      const host = config.host ?? t?.host ?? ctx.target.address;
      const conn = connectionOf(config, { host, port, ...(database ? { database } : {}), user, password, driver, dsnName });
      dir = mkdtempSync(join(tmpdir(), 'blackout-odbc-'));
      if (conn.ini) {
        writeFileSync(join(dir, 'odbc.ini'), conn.ini.join('\n'), { mode: 0o600 });
        writeFileSync(join(dir, 'odbcinst.ini'), '', { mode: 0o600 });
        env = childEnv({ ODBCINI: join(dir, 'odbc.ini'), ODBCSYSINI: dir });
      } else env = childEnv({});
      connectionString = conn.connectionString;
      const what = conn.ini ? `DSN ${dsnName} in a private odbc.ini (driver ${driver}, ${dialect} dialect)` : `the machine's DSN ${config.dsn}`;
      ctx.emit({
        type: 'probe-note',
        message: `${what}; ${writes ? `writing to table ${table}` : 'read-only query'}`,
        data: { dsn: config.dsn ?? dsnName, driver, dialect, ...(writes ? { table } : {}) },
      });
    }

    async function openProcess(onLost: (e: Error) => void, loginTimeout: number): Promise<OdbcProcess> {
      const proc = new OdbcProcess(env, onLost);
      try {
        await proc.call(
          { op: 'connect', connectionString, loginTimeout: seconds(loginTimeout), connectionTimeout: config.connectionTimeout ? seconds(config.connectionTimeout) : 0 },
          loginTimeout + 5000,
          'connect',
        );
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
        try {
          if (!tableReady) {
            await q(proc, `DROP TABLE IF EXISTS ${table}`);
            await q(proc, ledgerTableSql(dialect, table));
            tableReady = true;
          } else if (!writes) {
            // the query must work once before the session counts as open (a wrong query is a preflight error)
            await q(proc, config.query!);
          }
        } catch (e) {
          dead = true;
          proc.kill();
          throw sc(e);
        }
        const session: LoopSession = {
          async request(seq) {
            const sent = ctx.clock.now();
            try {
              if (!writes) {
                const rows = await q(proc, config.query!);
                return { latencyMs: ctx.clock.now() - sent, value: rows.length };
              }
              await q(proc, `INSERT INTO ${table} (seq) VALUES (?)`, [seq]);
              ledger.ack(seq);
              const sel = await q(proc, `SELECT seq FROM ${table} WHERE seq = ?`, [seq]);
              if (sel.length !== 1 || Number(sel[0]?.seq) !== seq) throw new Error(`read back of seq ${seq}: ${JSON.stringify(sel)}`);
              return { latencyMs: ctx.clock.now() - sent, value: seq };
            } catch (e) {
              const unknown = connectionProblem(e);
              if (writes) ledger.fail(seq, (e as Error).message, !unknown);
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
          if (!writes || !tableReady) return;
          let proc: OdbcProcess | null = null;
          try {
            proc = await openProcess(() => {}, config.verifyTimeout);
            const rows = await proc.call({ op: 'query', sql: `SELECT seq FROM ${table}`, params: [], timeout: seconds(config.verifyTimeout) }, config.verifyTimeout + 2000, 'verify');
            const { lost } = ledger.verify(
              ctx,
              rows.map((r) => Number(r.seq)),
              table,
            );
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
