/**
 * Hostile input: suite files fuzzed with fast-check (10 000 cases) never crash
 * the validator — every rejection is a SuiteError naming a field — and the
 * CLI turns random garbage into exit 2 with no stack trace. Shell syntax in
 * any string field cannot run: every external command gets an argument vector.
 */
import { existsSync, rmSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { validateSuite, SuiteError } from '../../src/run/suite.ts';
import { runCli, tempDir, useLab, writeSuite, labName } from '../helpers/lab.ts';

const lab = useLab(labName('thostile'));

const duration = fc.oneof(fc.integer({ min: -10, max: 100_000 }), fc.constantFrom('250ms', '10s', '-1s', '2m', 'x', ''), fc.string());
const anything = fc.anything({ maxDepth: 3 });
const probe = fc.record(
  {
    name: fc.oneof(fc.string(), fc.constantFrom('echo', 'ping')),
    kind: fc.oneof(fc.constantFrom('tcp', 'icmp', 'nope'), fc.string(), anything),
    interval: duration,
    port: fc.oneof(fc.integer(), fc.string()),
    userTimeout: duration,
    keepalive: fc.oneof(anything, fc.record({ idle: duration, interval: duration, count: fc.integer() })),
    reconnect: fc.oneof(fc.constantFrom('none', 'immediate', 'backoff', 'sometimes'), anything),
    extra: anything,
  },
  { requiredKeys: [] },
);
const suite = fc.record(
  {
    name: fc.oneof(fc.string(), anything),
    target: fc.oneof(fc.constantFrom('lab', 'lab-vm', 'elsewhere'), fc.record({ lab: fc.string() }), fc.record({ host: fc.string(), ssh: anything }), anything),
    probes: fc.oneof(fc.array(probe, { maxLength: 4 }), anything),
    injector: fc.oneof(fc.record({ kind: fc.constantFrom('cable-pull', 'quick-migration', 'live-migration', 'x'), arp: anything, pause: duration }, { requiredKeys: ['kind'] }), anything),
    blackouts: fc.oneof(fc.array(duration, { maxLength: 4 }), fc.record({ lengths: fc.array(duration), repeat: fc.integer() }), anything),
    warmup: duration,
    recovery: duration,
    expect: fc.oneof(fc.dictionary(fc.string(), fc.record({ survives: duration })), anything),
    surprise: anything,
  },
  { requiredKeys: [] },
);

describe('fuzzed suites', () => {
  it('10 000 random suites: valid, or a SuiteError whose every line names a field', () => {
    let rejected = 0;
    fc.assert(
      fc.property(fc.oneof(suite, anything), (raw) => {
        try {
          validateSuite(raw, 'fuzz.yaml');
        } catch (e) {
          if (!(e instanceof SuiteError)) throw e;
          rejected++;
          expect(e.problems.length).toBeGreaterThan(0);
          for (const p of e.problems) expect(p).toMatch(/^(\(suite\)|[A-Za-z_][\w-]*|\["(?:[^"\\]|\\.)*"\])(\.[A-Za-z_][\w-]*|\[\d+\]|\["(?:[^"\\]|\\.)*"\])*: ./s);
        }
      }),
      { numRuns: 10_000, seed: 20261122 },
    );
    expect(rejected).toBeGreaterThan(9000);
  });

  it('the CLI answers garbage files with exit 2 and no stack trace', async () => {
    const samples = fc.sample(
      fc.oneof(
        suite.map((s) => JSON.stringify(s)),
        fc.string(),
        fc.constantFrom('{', ': :', '- [', '\u0000\u0001', 'a: &x [*x]'),
      ),
      { numRuns: 12, seed: 7 },
    );
    for (const text of samples) {
      const r = await runCli(['validate', writeSuite(text)]);
      expect(r.code, text).toBe(2);
      expect(r.stderr, text).not.toMatch(/\n\s+at .*\(/);
    }
    // 12 CLI starts: a budget, not a timing claim
  }, 240_000);
});

describe('shell injection', () => {
  it('`; touch /tmp/pwned` in every string field runs nothing', async () => {
    const marker = `/tmp/blackout-pwned-${process.pid}`;
    rmSync(marker, { force: true });
    const payloads = [`; touch ${marker}`, `$(touch ${marker})`, `\`touch ${marker}\``, `| touch ${marker}`, `' ; touch ${marker} '`];
    for (const p of payloads) {
      const suites = [
        {
          name: p,
          target: { lab: labName('thostile') },
          probes: [{ name: 'echo', kind: 'tcp', interval: '100ms' }],
          injector: { kind: 'cable-pull' },
          blackouts: ['300ms'],
          warmup: '300ms',
          recovery: '3s',
        },
        { name: 'x', target: { lab: p }, probes: [{ name: 'echo', kind: 'tcp' }], injector: { kind: 'cable-pull' }, blackouts: ['1s'] },
        {
          name: 'x',
          target: { host: p, ssh: { user: p, privateKeyFile: p, knownHostsFile: p }, postgres: { database: p, user: p, passwordFile: p } },
          probes: [{ name: 'echo', kind: 'tcp', connectTimeout: '300ms' }],
          injector: { kind: 'cable-pull' },
          blackouts: ['1s'],
        },
        { name: 'x', target: { host: '127.0.0.1', echo: { port: 9 } }, probes: [{ name: p, kind: 'icmp' }], injector: { kind: p }, blackouts: [p] },
      ];
      for (const s of suites) await runCli(['run', writeSuite(s), '--out', tempDir()]);
    }
    await runCli(['lab', 'status', '--name', `x; touch ${marker}`]);
    await runCli(['report', `/tmp/x; touch ${marker}`]);
    expect(existsSync(marker)).toBe(false);
    expect(lab.state().name).toBe(labName('thostile'));
    // 25 CLI runs, five of them real runs on the lab: a budget, not a timing claim
  }, 300_000);
});
