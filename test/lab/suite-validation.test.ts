/**
 * Bad input gets a clear error naming the field, exit 2, and changes nothing:
 * no run folder content beyond nothing, no cut injected (the lab's cut sets
 * stay empty, checked on a real lab).
 */
import { existsSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { run } from '../../src/transport/exec.ts';
import { validateSuite, SuiteError } from '../../src/run/suite.ts';
import { runCli, tempDir, useLab, writeSuite, labName } from '../helpers/lab.ts';

const lab = useLab(labName('tsuite'));

const good = {
  name: 'ok',
  target: { lab: labName('tsuite') },
  probes: [{ name: 'echo', kind: 'tcp', interval: '100ms' }],
  injector: { kind: 'cable-pull' },
  blackouts: ['1s'],
};

const bad: Array<[string, unknown, RegExp]> = [
  ['unknown top-level field', { ...good, blackoutz: ['1s'] }, /\(suite\): unknown field "blackoutz"/],
  ['missing target', { ...good, target: undefined }, /target: /],
  ['wrong target type', { ...good, target: 42 }, /target: expected "lab"/],
  ['negative duration', { ...good, blackouts: ['-2s'] }, /blackouts\[0\]: expected a duration ≥ 0 ms/],
  ['unparseable duration', { ...good, warmup: 'ten seconds' }, /warmup: expected a duration like 250ms/],
  ['unknown probe kind', { ...good, probes: [{ name: 'x', kind: 'telnet' }] }, /probes\[0\]\.kind: expected one of .*tcp/],
  ['unknown probe field', { ...good, probes: [{ name: 'x', kind: 'tcp', intervall: '1s' }] }, /probes\[0\]: unknown field "intervall"/],
  ['wrong probe field type', { ...good, probes: [{ name: 'x', kind: 'tcp', port: 'seven' }] }, /probes\[0\]\.port: /],
  ['port out of range', { ...good, probes: [{ name: 'x', kind: 'tcp', port: 70000 }] }, /probes\[0\]\.port: .*65535/],
  [
    'duplicate probe names',
    {
      ...good,
      probes: [
        { name: 'x', kind: 'tcp' },
        { name: 'x', kind: 'icmp' },
      ],
    },
    /probes\[1\]\.name: "x" is used twice/,
  ],
  ['no probes', { ...good, probes: [] }, /probes: expected at least one probe/],
  ['unknown injector', { ...good, injector: { kind: 'unplug' } }, /injector\.kind: expected one of cable-pull/],
  ['wrong injector option', { ...good, injector: { kind: 'cable-pull', arp: 'yes' } }, /injector\.arp: /],
  ['missing injector', { ...good, injector: undefined }, /injector: required/],
  ['expectation for a missing probe', { ...good, expect: { nope: { survives: '1s' } } }, /expect\.nope: no probe is named "nope"/],
  ['empty blackouts', { ...good, blackouts: [] }, /blackouts: expected at least one blackout length/],
  ['inline password', { ...good, target: { host: 'db1', postgres: { database: 'a', user: 'b', password: 'hunter2' } } }, /unknown field "password"/],
];

describe('suite validation', () => {
  it.each(bad)('%s', (_label, suite, message) => {
    let err: unknown;
    try {
      validateSuite(JSON.parse(JSON.stringify(suite)), 'suite.yaml');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SuiteError);
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message).not.toContain('hunter2');
  });

  it('the CLI exits 2 on every bad suite, names the field, and injects nothing', async () => {
    const s = lab.state();
    for (const [label, suite, message] of [...bad, ['YAML syntax error', 'name: [unclosed', /YAML: /] as const]) {
      const out = tempDir();
      const file = writeSuite(typeof suite === 'string' ? suite : JSON.parse(JSON.stringify(suite)));
      const r = await runCli(['run', file, '--out', out]);
      expect(r.code, label).toBe(2);
      expect(r.stderr, label).toMatch(message);
      expect(r.stderr, label).not.toMatch(/\n\s+at /); // no stack trace
      expect(existsSync(out) ? readdirSync(out) : [], label).toEqual([]);
    }
    const sets = await run('ip', ['netns', 'exec', s.switchNs, 'nft', 'list', 'table', 'netdev', s.cutTable]);
    expect(sets.stdout).not.toMatch(/elements/);
  }, 120_000);

  it('an unreachable target fails preflight: exit 2, nothing injected', async () => {
    const out = tempDir();
    const file = writeSuite({ ...good, probes: [{ name: 'echo', kind: 'tcp', port: 9, connectTimeout: '1s' }] });
    const r = await runCli(['run', file, '--out', out]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/preflight failed, nothing was injected: .*echo/);
    const events = (await import('../../src/core/event-log.ts')).readEvents(`${out}/events.jsonl`).events;
    expect(events.some((e) => e.type === 'cut')).toBe(false);
    expect(events.find((e) => e.type === 'preflight')).toMatchObject({ ok: false });
  });

  it('a lab that is not up fails preflight with the command to bring it up', async () => {
    const out = tempDir();
    const file = writeSuite({ ...good, target: { lab: 'nosuchlab' } });
    const r = await runCli(['run', file, '--out', out]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/lab "nosuchlab" is not up: run `blackout lab up --name nosuchlab`/);
  });

  it('validate accepts the bundled suites', async () => {
    for (const f of readdirSync('suites').filter((f) => f.endsWith('.yaml'))) {
      const r = await runCli(['validate', `suites/${f}`]);
      expect(r.code, `${f}: ${r.stderr}`).toBe(0);
    }
  });
});
