/**
 * `blackout init`: against the lab target it finds every service the lab runs
 * (also on the lab's non-standard ports) and writes a suite that `validate`
 * accepts, with a probe for each; against a plain host (127.0.0.1, with a
 * listener this test opens) it makes only connection attempts, names closed
 * ports, and writes secrets as environment references only. The suite it
 * writes for the lab runs: a short cable pull through its probes.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { labName, runCli, tempDir, useLab } from '../helpers/lab.ts';
import { useOwnTmp } from '../helpers/tmp.ts';
import { readSummary } from '../helpers/run-dir.ts';

/** the CLI colours its output (picocolors, also under CI=true): the text without the escapes */
const plain = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '');

useOwnTmp('blackout-init-test-');
const LAB = labName('pinit');
const lab = useLab(LAB);

describe('blackout init', () => {
  it('finds every service the lab runs and writes a suite validate accepts', async () => {
    const out = join(tempDir(), 'lab.yaml');
    const r = await runCli(['init', '--lab', LAB, '-o', out]);
    expect(r.code, r.stderr).toBe(0);
    const s = lab.state();
    // every port a lab service listens on answered and got a probe
    const ports = Object.values(s.services)
      .flatMap((v) => [v.port, (v as { httpsPort?: number }).httpsPort])
      .filter((p): p is number => typeof p === 'number' && p > 0);
    expect(ports.length).toBeGreaterThanOrEqual(9);
    for (const p of ports) expect(plain(r.stdout), `port ${p}`).toMatch(new RegExp(`open\\s+${p}\\s+\\S+ \\(lab\\) → probe `));
    const suite = parse(readFileSync(out, 'utf8')) as { target: unknown; probes: Array<{ name: string; kind: string; port?: number }>; injector: { kind: string } };
    expect(suite.target).toEqual({ lab: s.name });
    expect(suite.injector.kind).toBe('cable-pull');
    const kinds = suite.probes.map((p) => p.kind).sort();
    expect(kinds).toEqual(['console', 'http', 'http', 'http', 'icmp', 'odbc', 'postgres', 'rdp', 'smb', 'tcp', 'tcp']);
    expect(suite.probes.find((p) => p.name === 'redis')).toMatchObject({ kind: 'tcp', mode: 'exchange', port: 6379 });
    const v = await runCli(['validate', out]);
    expect(v.code, v.stderr).toBe(0);
    expect(v.stdout).toContain('valid — 11 probes, injector cable-pull');
    // it refuses to overwrite without --force
    const again = await runCli(['init', '--lab', LAB, '-o', out]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('exists: choose another file with --out, or --force');
  });

  it("the lab's suite runs: a 1 s cable pull through the probes init chose (not rdp/smb: heavy, covered by their own tests)", async () => {
    const dir = tempDir();
    const file = join(dir, 'lab.yaml');
    expect((await runCli(['init', '--lab', LAB, '-o', file])).code).toBe(0);
    // shorten the starter for the test: one short blackout, the light probes
    const text = readFileSync(file, 'utf8');
    const suite = parse(text) as Record<string, unknown> & { probes: Array<{ name: string; kind: string }> };
    suite.probes = suite.probes.filter((p) => !['rdp', 'smb'].includes(p.kind));
    suite.blackouts = ['1s'];
    suite.warmup = '1500ms';
    suite.recovery = '8s';
    const { writeSuite } = await import('../helpers/lab.ts');
    const out = join(dir, 'run');
    const r = await runCli(['run', writeSuite(suite), '--out', out, '--no-live']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const t = readSummary(out).trials[0]!;
    for (const name of ['echo', 'ssh', 'http', 'https', 'postgres', 'redis', 'mariadb', 'http-8080']) {
      expect(['transparent', 'stalled'], `${name}: ${t.probes[name]?.reason}`).toContain(t.probes[name]!.outcome);
    }
  });
});

describe('blackout init on a plain host', () => {
  let server: Server;
  let port = 0;
  beforeAll(async () => {
    server = createServer((s) => s.end());
    await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
    port = (server.address() as { port: number }).port;
  });
  afterAll(() => new Promise<void>((res) => server.close(() => res())));

  it('tries only the given ports, names closed ones, and writes a valid starter with a hold probe for an unknown service', async () => {
    const out = join(tempDir(), 'local.yaml');
    const r = await runCli(['init', '127.0.0.1', '--ports', `${port},1`, '--only-ports', '--timeout', '500', '-o', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(plain(r.stdout)).toMatch(new RegExp(`open\\s+${port}\\s+unknown → probe port-${port}`));
    expect(plain(r.stdout)).toMatch(/closed\s+1\s+ECONNREFUSED/);
    const suite = parse(readFileSync(out, 'utf8')) as { target: unknown; probes: Array<Record<string, unknown>>; injector: { kind: string } };
    expect(suite.target).toEqual({ host: '127.0.0.1' });
    expect(suite.injector.kind).toBe('manual');
    expect(suite.probes[1]).toMatchObject({ kind: 'tcp', mode: 'hold', port });
    expect((await runCli(['validate', out])).code).toBe(0);
  });

  it('writes secrets as environment references only, and the suite validates', async () => {
    // the well-known templates with credentials, as a real host would get them
    const { WELL_KNOWN } = await import('../../src/cli/init.ts');
    const { validateSuite } = await import('../../src/run/suite.ts');
    const probes = [22, 80, 443, 445, 3389, 5432, 3306, 1433, 6379, 25, 21, 143, 11211].map((p) => WELL_KNOWN[p]!.real('db.example.internal', p).probe);
    const s = validateSuite({ name: 'x', target: { host: 'db.example.internal' }, probes, injector: { kind: 'manual' }, blackouts: ['2s'] });
    expect(s.probes).toHaveLength(13);
    for (const p of probes) {
      for (const k of Object.keys(p)) if (/password|secret|token/i.test(k)) expect(k, JSON.stringify(p)).toMatch(/Env$/);
      expect(JSON.stringify(p)).not.toMatch(/"password"\s*:/);
    }
  });

  it('bad input: exit 2 naming the option', async () => {
    const r = await runCli(['init', '127.0.0.1', '--ports', '70000']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--ports: "70000" is not a port');
    const r2 = await runCli(['init', '--lab', 'no-such-lab-h3', '-o', join(tempDir(), 'x.yaml')]);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toContain('lab "no-such-lab-h3" is not up');
    expect(existsSync(join(tempDir(), 'x.yaml'))).toBe(false);
  });
});
