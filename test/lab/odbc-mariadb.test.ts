/**
 * The odbc probe for any driver: MariaDB's Connector/ODBC (Debian odbc-mariadb,
 * named by its odbcinst.ini entry) against the lab's stock MariaDB server.
 *
 *  - pure: connection values that would change the connection string (";",
 *    braces, quotes, control characters) are refused, naming the field; the
 *    password is braced with "}" doubled; the dialect follows the driver;
 *  - one 2 s cable-pull trial, four sessions at once —
 *      ma      no timeouts: stalls, survives; every acknowledged write is there;
 *      ma-qt   a 1 s query timeout: the driver leaves it to the server (or ignores it),
 *              so it does not fire while the network is gone: stalls, survives;
 *      ma-nt   the driver's own network timeout, 1 s (READ_TIMEOUT/WRITE_TIMEOUT):
 *              fails with the driver's "Lost connection to server during query";
 *      ma-ro   a read-only query with the same network timeout and a reconnect
 *              policy: recovered;
 *  - preflight errors (exit 2, nothing injected): a wrong password, a wrong port,
 *    a query that cannot run.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { odbc, braced, connectionOf, dialectOf, ledgerTableSql } from '../../src/probes/odbc.ts';
import { useLab, labName } from '../helpers/lab.ts';
import { eventsOf, expectPreflightFailure, message, runLabSuite } from '../helpers/probes.ts';
import { readSummary } from '../helpers/run-dir.ts';

const base = { name: 'ma', kind: 'odbc', driver: 'MariaDB Unicode' };
const problems = (c: Record<string, unknown>) => {
  const r = odbc.schema.safeParse(c);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

describe('odbc connection values (pure)', () => {
  it('refuses ";", braces, quotes and control characters wherever they reach the connection string or odbc.ini', () => {
    const cases: Array<[string, Record<string, unknown>]> = [
      ['host', { host: 'db;DRIVER=/tmp/evil.so' }],
      ['database', { database: 'app\nDriver = /tmp/evil.so' }],
      ['user', { user: "o'brien" }],
      ['driver', { driver: 'MariaDB {Unicode}' }],
      ['dsn', { driver: undefined, dsn: 'shop;SERVER=elsewhere' }],
      ['attributes.SSLMODE', { attributes: { SSLMODE: 'require}x' } }],
      ['attributes.OPTION', { attributes: { OPTION: 'a"b' } }],
      ['database', { database: 'app\u0000' }],
    ];
    for (const [field, bad] of cases) {
      const p = problems({ ...base, ...bad });
      expect(p.join(' | '), field).toMatch(new RegExp(`^${field.replace('.', '\\.')}: .*must not contain ";", braces, quotes or control characters`));
    }
    expect(problems({ ...base, host: 'db01.example.internal', database: 'shop', user: 'app', attributes: { SSLVERIFY: 1 } })).toEqual([]);
    // a value from the target's own records meets the same rule at open
    const c = odbc.schema.parse(base);
    expect(() => connectionOf(c, { host: '10.0.0.5;DRIVER=/tmp/x.so', port: 3306, user: 'u', password: 'p', driver: '/x.so', dsnName: 'd' })).toThrow(/^host: must not contain/);
    expect(() => connectionOf(c, { host: 'h', port: 3306, user: 'u', password: 'line1\nline2', driver: '/x.so', dsnName: 'd' })).toThrow(/password contains a control character/);
  });

  it('braces the password with "}" doubled, and writes each dialect\'s keywords and network timeout', () => {
    expect(braced('a}b;c')).toBe('{a}}b;c}');
    const ma = odbc.schema.parse({ ...base, networkTimeout: '1500ms', attributes: { SSLVERIFY: 0 } });
    const m = connectionOf(ma, {
      host: '10.213.0.2',
      port: 3306,
      database: 'blackout',
      user: 'blackout',
      password: 'pw};DRIVER=x',
      driver: '/usr/lib/x86_64-linux-gnu/odbc/libmaodbc.so',
      dsnName: 'blackout_ma',
    });
    expect(m.connectionString).toBe('DSN=blackout_ma;UID=blackout;PWD={pw}};DRIVER=x}');
    expect(m.ini).toEqual(expect.arrayContaining(['SERVER = 10.213.0.2', 'PORT = 3306', 'DATABASE = blackout', 'READ_TIMEOUT = 2', 'WRITE_TIMEOUT = 2', 'SSLVERIFY = 0']));
    expect(m.ini!.join('\n')).not.toContain('pw');
    const pg = odbc.schema.parse({ name: 'pg', kind: 'odbc', networkTimeout: '1s' });
    const p = connectionOf(pg, { host: 'h', port: 5432, database: 'd', user: 'u', password: 'x', driver: '/psqlodbcw.so', dsnName: 'blackout_pg' });
    expect(p.connectionString).toBe('DSN=blackout_pg;UID=u;PWD={x};pqopt={tcp_user_timeout=1000}');
    expect(p.ini).toEqual(expect.arrayContaining(['Servername = h', 'Port = 5432']));
    const dsn = odbc.schema.parse({ name: 'd', kind: 'odbc', dsn: 'Shop DB' });
    expect(connectionOf(dsn, { host: 'h', port: 1, user: 'u', password: 'x', driver: '', dsnName: 'n' })).toEqual({ ini: null, connectionString: 'DSN=Shop DB;UID=u;PWD={x}' });
    expect([dialectOf({}), dialectOf({ driver: 'MariaDB Unicode' }), dialectOf({ driver: '/opt/x/libmsodbcsql.so' }), dialectOf({ dsn: 'x' })]).toEqual(['postgres', 'mariadb', 'generic', 'generic']);
    expect(ledgerTableSql('mariadb', 't')).toMatch(/TIMESTAMP\(6\)/);
    expect(problems({ ...base, keepalive: { idle: '5s', interval: '2s' } }).join()).toMatch(/keepalive: the mariadb dialect has no keepalive setting/);
    expect(problems({ ...base, dsn: 'x' }).join()).toMatch(/give a driver or a dsn, not both/);
    expect(odbc.policy(ma)).toMatchObject({ dialect: 'mariadb', readTimeoutMs: 2000, queryTimeoutS: 'none' });
  });
});

describe("odbc probe with MariaDB Connector/ODBC against the lab's MariaDB", () => {
  const LAB = labName('pmaria');
  const lab = useLab(LAB, { upTimeoutMs: 300_000 });
  const made: string[] = [];
  afterAll(() => {
    for (const d of made) rmSync(d, { recursive: true, force: true });
  });

  it('survives a 2 s cable pull; its query timeout does not fire; its network timeout fails it; a reconnecting reader recovers', async () => {
    const r = await runLabSuite(
      LAB,
      {
        name: 'odbc mariadb test',
        probes: [
          { ...base, name: 'ma', interval: '100ms' },
          { ...base, name: 'ma-qt', interval: '100ms', queryTimeout: '1s' },
          { ...base, name: 'ma-nt', interval: '100ms', networkTimeout: '1s' },
          { ...base, name: 'ma-ro', interval: '100ms', networkTimeout: '1s', query: 'SELECT 1 AS one', reconnect: 'backoff' },
        ],
        injector: { kind: 'cable-pull' },
        blackouts: ['2s'],
        warmup: '1s',
        recovery: '10s',
      },
      { during: async (out) => void made.push(out) },
    );
    expect(r.code, r.stderr).toBe(0);
    const t = readSummary(r.out).trials[0]!;
    expect(message(eventsOf(r.events, 'ma', 'probe-note')[0])).toMatch(/^DSN blackout_ma in a private odbc\.ini \(driver \/usr\/lib\/.*libmaodbc\.so, mariadb dialect\); writing to table bo_ma_t0/);
    for (const p of ['ma', 'ma-qt']) {
      expect(t.probes[p]!.outcome, `${p}: ${t.probes[p]!.reason}`).toBe('stalled');
      expect(t.probes[p]!.samples, p).toBeGreaterThan(10);
      expect(t.probes[p]!.verifications[0], p).toMatchObject({ ok: true });
    }
    expect(t.probes['ma-nt']!.outcome).toBe('failed');
    expect(message(eventsOf(r.events, 'ma-nt', 'session-lost')[0])).toMatch(/\[08S01\] \[ma-3\.[\d.]+\].*Lost connection to server during query/);
    expect(t.probes['ma-ro']!.outcome, t.probes['ma-ro']!.reason).toBe('recovered');
    const policy = (r.events[0] as { probes: Array<{ name: string; policy: Record<string, unknown> }> }).probes;
    expect(policy.find((p) => p.name === 'ma-nt')!.policy).toMatchObject({ client: 'odbc (npm) → unixODBC → MariaDB Connector/ODBC', readTimeoutMs: 1000, writeTimeoutMs: 1000 });
    const password = readFileSync(`${lab.state().dir}/secrets/mariadb-password`, 'utf8').trim();
    expect(readFileSync(join(r.out, 'events.jsonl'), 'utf8')).not.toContain(password);
  });

  it('a wrong password is a preflight failure: exit 2, nothing injected', async () => {
    await expectPreflightFailure(LAB, 'odbc preflight', { ...base, name: 'badpw', passwordEnv: 'BO_TEST_WRONG_PW' }, /Access denied for user 'blackout'/, { BO_TEST_WRONG_PW: 'not-the-password' });
  });

  it('a wrong port is a preflight failure: exit 2, nothing injected', async () => {
    await expectPreflightFailure(LAB, 'odbc preflight', { ...base, name: 'badport', port: 3307 }, /Can't connect to server on '10\.213\.\d+\.2'/);
  });

  it('a query that cannot run is a preflight failure: exit 2, nothing injected', async () => {
    await expectPreflightFailure(LAB, 'odbc preflight', { ...base, name: 'badquery', query: 'SELECT one FROM no_such_table' }, /Table 'blackout\.no_such_table' doesn't exist/);
  });
});
