/**
 * postgres: one node-postgres (`pg`) connection, the way an application holds
 * one. Every interval it INSERTs the next sequence number into its own table
 * (one per probe and trial, autocommit) and reads it back. The client's policy
 * is explicit: statement_timeout (server side), query_timeout (pg's client-side
 * timer), connectionTimeoutMillis, TCP keepalive (idle/interval/count),
 * TCP_USER_TIMEOUT, and a reconnect policy.
 *
 * When the client gives up on a query (its query timeout) it discards the
 * connection, as an application or pool would: the session is lost and the
 * reconnect policy decides. A server-side error (e.g. statement timeout) is an
 * error that reached the application on a still usable connection.
 *
 * At close, on a fresh connection: every acknowledged write must be in the
 * table (else a failing `verify`: data loss); writes whose outcome the client
 * never learned are reported and checked.
 */
import { note, request, sessionFacts, userTimeout } from './shared/facts.ts';
import pg from 'pg';
import type { Socket } from 'node:net';
import { z } from 'zod';
import { duration, probeBase, secretRef } from '../core/schema-util.ts';
import { setKeepalive, setUserTimeout } from '../transport/sockopt.ts';
import { passwordRef, readSecret, scrubbed } from '../core/secrets.ts';
import { reconnectSchema, SessionLoop, type LoopSession } from './shared/session-loop.ts';
import type { ProbeContext, ProbeDefinition } from '../core/probe.ts';
import { tableName, WriteLedger } from './shared/write-ledger.ts';

const keepaliveSchema = z.strictObject({
  idle: duration({ min: 1000 }).describe('TCP_KEEPIDLE: the first keepalive after this long idle'),
  interval: duration({ min: 1000 }).describe('TCP_KEEPINTVL: between unanswered keepalives'),
  count: z.number().int().min(1).max(127).describe('TCP_KEEPCNT: the connection ends after this many unanswered keepalives'),
});

const schema = z.strictObject({
  ...probeBase('postgres', { interval: 200, tolerance: 500 }),
  host: z.string().min(1).optional().describe("the PostgreSQL server (default: the target's address)"),
  port: z.number().int().min(1).max(65535).optional().describe("the port (default: the target's PostgreSQL port, else 5432)"),
  database: z.string().min(1).optional().describe("the database (default: the target's)"),
  user: z.string().min(1).optional().describe("the user (default: the target's)"),
  ...secretRef,
  statementTimeout: duration().default(0).describe("server-side statement_timeout (0: none, PostgreSQL's default)"),
  queryTimeout: duration().default(0).describe("pg's client-side query_timeout: the client gives up waiting for an answer (0: waits forever, pg's default)"),
  /** connectionTimeoutMillis (0 would be forever; 5 s here) */
  connectionTimeout: duration({ min: 1 }).default(5000).describe('how long connecting may take (pg connectionTimeoutMillis)'),
  keepalive: keepaliveSchema.optional().describe('OS TCP keepalive on the connection (off unless given)'),
  /** TCP_USER_TIMEOUT, ms (off unless given) */
  userTimeout: duration({ min: 1 }).optional().describe('TCP_USER_TIMEOUT: the kernel drops the connection when sent data stays unacknowledged this long (off unless given)'),
  reconnect: reconnectSchema,
  verifyTimeout: duration({ min: 100 }).default(10_000).describe("the after-the-fact check's own connect + query timeout"),
  keepTable: z.boolean().default(false).describe("keep the probe's table after the check (default: dropped when no data was lost)"),
});
export type PostgresConfig = z.infer<typeof schema>;

interface Conn {
  host: string;
  port: number;
  database: string;
  user: string;
  password: string;
}

function connInfo(config: PostgresConfig, ctx: ProbeContext): Conn {
  const t = ctx.target.services.postgres;
  const database = config.database ?? t?.database;
  const user = config.user ?? t?.user;
  if (!database || !user) throw new Error(`${config.name}: no PostgreSQL database/user (target.postgres or the probe's database and user)`);
  const ref = config.passwordEnv || config.passwordFile ? config : (t ?? {});
  return {
    host: config.host ?? t?.host ?? ctx.target.address,
    port: config.port ?? t?.port ?? 5432,
    database,
    user,
    password: readSecret(passwordRef(ref), `${config.name}: PostgreSQL password`),
  };
}

function newClient(c: Conn, config: PostgresConfig, name: string, timeouts: { connect: number; query: number; statement: number }): pg.Client {
  return new pg.Client({
    host: c.host,
    port: c.port,
    database: c.database,
    user: c.user,
    password: c.password,
    application_name: `blackout ${name}`.slice(0, 63),
    connectionTimeoutMillis: timeouts.connect,
    ...(timeouts.query > 0 ? { query_timeout: timeouts.query } : {}),
    ...(timeouts.statement > 0 ? { statement_timeout: timeouts.statement } : {}),
    ...(config.keepalive ? { keepAlive: true, keepAliveInitialDelayMillis: config.keepalive.idle } : {}),
  });
}

const streamOf = (client: pg.Client): Socket | undefined => (client as unknown as { connection?: { stream?: Socket } }).connection?.stream;

/** a server-side error: the statement was rolled back, the write is known not to have happened */
const serverSaidNo = (e: unknown): boolean => e instanceof pg.DatabaseError;

export const postgres: ProbeDefinition<PostgresConfig> = {
  kind: 'postgres',
  summary: 'node-postgres connection: INSERT + read back every interval; lost-write check at close',
  schema,
  policy: (c) => ({
    client: 'node-postgres (pg)',
    statementTimeoutMs: c.statementTimeout || 'none (server default)',
    queryTimeoutMs: c.queryTimeout || 'none (pg default: waits forever)',
    connectionTimeoutMs: c.connectionTimeout,
    keepalive: c.keepalive ?? 'off',
    userTimeoutMs: c.userTimeout ?? 'OS default (none)',
    reconnect: c.reconnect.mode,
    onQueryTimeout: 'connection discarded (session lost)',
    verify: 'every acknowledged INSERT present at close',
  }),
  facts: (c) =>
    sessionFacts(
      [...request(c.queryTimeout, 'query timeout'), ...userTimeout(c.userTimeout)],
      [
        ...note(
          c.statementTimeout,
          `statement timeout ${c.statementTimeout} ms: the server's clock, while it executes; a blackout delays the query's arrival instead, so it does not bound the breaking point`,
        ),
        ...note(c.keepalive, 'TCP keepalive only probes an idle connection; with a request outstanding during the blackout it never fires'),
        `connection timeout ${c.connectionTimeout} ms: applies to opening a session only`,
      ],
      c.reconnect.mode !== 'none',
    ),
  create(config, ctx) {
    const ledger = new WriteLedger();
    const table = tableName(config.name, ctx.trial);
    let conn: Conn | null = null;
    let tableReady = false;
    const secrets = () => (conn ? [conn.password] : []);

    const connect = async (signal: AbortSignal, onLost: (e: Error) => void): Promise<LoopSession> => {
      conn ??= connInfo(config, ctx);
      const client = newClient(conn, config, config.name, { connect: config.connectionTimeout, query: config.queryTimeout, statement: config.statementTimeout });
      let dead = false;
      const kill = (e: Error) => {
        if (dead) return;
        dead = true;
        onLost(scrubbed(e, secrets()));
        streamOf(client)?.destroy();
        client.end().catch(() => {});
      };
      client.on('error', (e) => kill(e));
      client.on('end', () => kill(new Error('Connection terminated')));
      const abort = () => {
        dead = true;
        streamOf(client)?.destroy();
      };
      signal.addEventListener('abort', abort, { once: true });
      try {
        await client.connect();
        const s = streamOf(client);
        if (s && config.keepalive) setKeepalive(s, config.keepalive);
        if (s && config.userTimeout !== undefined) setUserTimeout(s, config.userTimeout);
        if (!tableReady) {
          await client.query(`DROP TABLE IF EXISTS ${table}`);
          await client.query(`CREATE TABLE ${table} (seq bigint PRIMARY KEY, written_at timestamptz NOT NULL DEFAULT clock_timestamp())`);
          tableReady = true;
          ctx.emit({ type: 'probe-note', message: `writing to table ${table}`, data: { table } });
        }
      } catch (e) {
        dead = true;
        streamOf(client)?.destroy();
        client.end().catch(() => {});
        throw scrubbed(e, secrets());
      }
      return {
        async request(seq) {
          const sent = ctx.clock.now();
          try {
            const ins = await client.query({ text: `INSERT INTO ${table} (seq) VALUES ($1) RETURNING seq`, values: [seq] });
            if (Number(ins.rows[0]?.seq) !== seq) throw new Error(`INSERT returned ${JSON.stringify(ins.rows[0])}, expected seq ${seq}`);
            ledger.ack(seq);
            const sel = await client.query({ text: `SELECT seq FROM ${table} WHERE seq = $1`, values: [seq] });
            if (sel.rowCount !== 1) throw new Error(`read back of seq ${seq}: ${sel.rowCount} rows`);
            return { latencyMs: ctx.clock.now() - sent, value: seq };
          } catch (e) {
            ledger.fail(seq, (e as Error).message, serverSaidNo(e));
            // the client gave up waiting (query_timeout): the connection is in an unknown state; discard it
            if (!serverSaidNo(e) && !dead) kill(e as Error);
            throw scrubbed(e, secrets());
          }
        },
        alive: () => !dead,
        async close() {
          dead = true;
          signal.removeEventListener('abort', abort);
          await Promise.race([client.end(), new Promise((r) => setTimeout(r, 1000))]).catch(() => {});
          streamOf(client)?.destroy();
        },
      };
    };

    const loop = new SessionLoop({ ctx, interval: config.interval, reconnect: config.reconnect, connect });
    return {
      open: () => loop.open(),
      async close() {
        await loop.close();
        if (!tableReady || !conn) return;
        // the after-the-fact check, on a fresh connection with its own bounded timeouts
        const client = newClient(conn, { ...config, keepalive: undefined }, `${config.name} verify`, { connect: config.verifyTimeout, query: config.verifyTimeout, statement: config.verifyTimeout });
        client.on('error', () => {});
        try {
          await client.connect();
          const r = await client.query(`SELECT seq FROM ${table}`);
          const { lost } = ledger.verify(
            ctx,
            r.rows.map((x: { seq: string }) => Number(x.seq)),
            table,
          );
          if (!lost.length && !config.keepTable) await client.query(`DROP TABLE IF EXISTS ${table}`);
        } catch (e) {
          ctx.emit({ type: 'verify', ok: false, message: `could not check the acknowledged writes in ${table}: ${scrubbed(e, secrets()).message}`, data: { table, acknowledged: ledger.acked.size } });
        } finally {
          await Promise.race([client.end(), new Promise((r) => setTimeout(r, 1000))]).catch(() => {});
          streamOf(client)?.destroy();
        }
      },
    };
  },
};
