/**
 * Every duration, count and size in a suite is bounded, with a message naming
 * the field: a timer of 2^31 ms or more fires at once in Node (a 600 h
 * blackout would restore immediately), and an unbounded search grid or list
 * runs the harness out of memory before the first trial. Pure validation: no lab.
 */
import { describe, expect, it } from 'vitest';
import { sleep } from '../../src/core/clock.ts';
import { SuiteError, validateSuite } from '../../src/run/suite.ts';
import { MAX_DURATION_MS } from '../../src/core/schema-util.ts';

const good = {
  name: 'bounds',
  target: { host: '127.0.0.1', echo: { port: 7 } },
  probes: [{ name: 'echo', kind: 'tcp', interval: '100ms' }],
  injector: { kind: 'command', cut: ['true'], restore: ['true'] },
  blackouts: ['1s'],
};

function problems(suite: unknown): string {
  try {
    validateSuite(suite, 's.yaml');
  } catch (e) {
    if (e instanceof SuiteError) return e.problems.join('\n');
    throw e;
  }
  return '';
}

const tooBig: Array<[string, unknown, RegExp]> = [
  ['a 600 h blackout', { ...good, blackouts: ['600h'] }, /blackouts\[0\]: expected a duration ≤ 86400000 ms \(24 h\)/],
  ['2^31 ms as a number', { ...good, blackouts: [2 ** 31] }, /blackouts\[0\]: expected a duration ≤/],
  ['a repeated list of 600 h', { ...good, blackouts: { lengths: ['600h'], repeat: 2 } }, /blackouts\.lengths\[0\]: expected a duration ≤/],
  ['1001 blackout lengths', { ...good, blackouts: Array.from({ length: 1001 }, () => '1s') }, /blackouts: expected at most 1000 blackout lengths/],
  ['a search to 24 h at 10 ms', { ...good, blackouts: { search: { from: '1s', to: '24h', resolution: '10ms' } } }, /blackouts\.search: expected \(to − from\) \/ resolution ≤ 10000/],
  ['a search beyond 24 h', { ...good, blackouts: { search: { from: '1s', to: '100h', resolution: '1h' } } }, /blackouts\.search\.to: expected a duration ≤/],
  ['a probe read timeout of 600 h', { ...good, probes: [{ name: 'echo', kind: 'tcp', readTimeout: '600h' }] }, /probes\[0\]\.readTimeout: expected a duration ≤/],
  ['a reconnect backoff of 600 h', { ...good, probes: [{ name: 'echo', kind: 'tcp', reconnect: { mode: 'backoff', max: '600h' } }] }, /probes\[0\]\.reconnect\.max: expected a duration ≤/],
  ['an expectation of 600 h', { ...good, expect: { echo: { survives: '600h' } } }, /expect\.echo\.survives: expected a duration ≤/],
  ['a 10 TB copy', { ...good, probes: [{ name: 'cp', kind: 'sftp', size: '10240GB' }] }, /probes\[0\]\.size: expected a size ≤ 1099511627776 bytes/],
  ['a 2 TiB migration memory size', { ...good, migration: { memory: ['2TiB'] } }, /migration\.memory\[0\]: expected a size ≤/],
  ['257 command arguments', { ...good, injector: { kind: 'command', cut: Array.from({ length: 257 }, () => 'x'), restore: ['true'] } }, /injector\.cut: expected at most 256 arguments/],
  ['a grace of 600 h', { ...good, injector: { kind: 'command', cut: ['true'], restore: ['true'], grace: '600h' } }, /injector\.grace: expected a duration ≤/],
];

describe('suite bounds', () => {
  it.each(tooBig)('%s is refused with the field named', (_label, suite, message) => {
    expect(problems(suite)).toMatch(message);
  });

  it('the largest values inside the bounds are accepted', () => {
    expect(problems({ ...good, blackouts: ['24h'] })).toBe('');
    expect(problems({ ...good, blackouts: { search: { from: '1s', to: '10001s', resolution: '1s' } } })).toBe('');
    expect(problems({ ...good, probes: [{ name: 'cp', kind: 'sftp', size: '1024GB' }] })).toBe('');
    expect(MAX_DURATION_MS).toBeLessThan(2 ** 31);
  });

  it('sleep longer than 2^31 ms does not fire at once', async () => {
    const abort = new AbortController();
    let fired = false;
    const p = sleep(2 ** 31 + 1000, abort.signal).then(
      () => (fired = true),
      () => 'aborted',
    );
    await sleep(100);
    expect(fired).toBe(false);
    abort.abort(new Error('done'));
    expect(await p).toBe('aborted');
  });
});
