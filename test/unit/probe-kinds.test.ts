/**
 * The session probes' registration and their stated policies (no lab needed):
 * every kind is registered, validates its defaults, and reports its effective
 * policy; the bundled quick-migration suite is valid and uses every probe kind.
 */
import { describe, expect, it } from 'vitest';
import { probes, probeDefinition } from '../../src/probes/index.ts';
import { loadSuite } from '../../src/run/suite.ts';
import { ROOT } from '../helpers/lab.ts';

describe('session probes', () => {
  it('every kind is registered and states its policy', () => {
    for (const kind of ['postgres', 'odbc', 'console', 'sftp', 'smb', 'web']) {
      const def = probeDefinition(kind);
      expect(def, kind).toBeDefined();
      // the web probe needs a journey: here two declarative steps
      const cfg = def!.schema.parse({ name: `p-${kind}`, kind, ...(kind === 'web' ? { journey: { check: [{ reload: true }, { expectText: 'ok' }] } } : {}) });
      const policy = def!.policy(cfg);
      expect(policy.reconnect, kind).toBeDefined();
      expect(Object.keys(policy).length, kind).toBeGreaterThan(3);
    }
    const pg = probeDefinition('postgres')!;
    expect(pg.policy(pg.schema.parse({ name: 'x', kind: 'postgres', statementTimeout: '5s', queryTimeout: '8s', reconnect: 'backoff' }))).toMatchObject({
      statementTimeoutMs: 5000,
      queryTimeoutMs: 8000,
      reconnect: 'backoff',
    });
    const con = probeDefinition('console')!;
    expect(con.policy(con.schema.parse({ name: 'x', kind: 'console', serverAlive: { interval: '1s', countMax: 3 } }))).toMatchObject({ keepaliveIntervalMs: 1000, keepaliveCountMax: 3 });
    const sftp = probeDefinition('sftp')!;
    expect(sftp.schema.parse({ name: 'x', kind: 'sftp' })).toMatchObject({ size: 64 * 1024 * 1024, direction: 'download' });
    expect(probeDefinition('smb')!.schema.parse({ name: 'x', kind: 'smb' })).toMatchObject({ timeout: 20_000 });
  });

  it('no secret can be given inline', () => {
    for (const kind of ['postgres', 'odbc', 'smb', 'web', 'console', 'sftp']) {
      const r = probeDefinition(kind)!.schema.safeParse({ name: 'x', kind, password: 'inline' });
      expect(r.success, kind).toBe(false);
    }
  });

  it('the quick-migration suite is valid and uses every session probe kind', async () => {
    const s = await loadSuite(`${ROOT}/suites/lab-quick-migration.yaml`);
    expect(s.injector.kind).toBe('quick-migration');
    expect(s.blackouts).toEqual([2000, 5000, 10000, 20000]);
    const kinds = new Set(s.probes.map((p) => p.kind));
    for (const k of ['icmp', 'tcp', 'postgres', 'odbc', 'console', 'sftp', 'smb', 'web']) expect(kinds.has(k), k).toBe(true);
    expect(probes.length).toBeGreaterThanOrEqual(8);
  });
});
