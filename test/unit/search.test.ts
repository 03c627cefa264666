/** The adaptive breaking-point search on synthetic probes with known thresholds (pure). */
import { describe, expect, it } from 'vitest';
import { bracketsOf, createPlanner, expectedGain, gridStep, linearSweepTrials, simulateSearch, type Sweep } from '../../src/analysis/search.ts';
import { validateSuite } from '../../src/run/suite.ts';

const search = (from: number, to: number, resolution: number, maxTrials = 60): Sweep => ({ mode: 'search', from, to, resolution, maxTrials });

describe('search planner', () => {
  it('brackets one probe to the resolution in log2 trials, far fewer than a linear sweep', () => {
    const r = simulateSearch(search(500, 60_000, 250), { a: 7777 });
    const b = r.brackets[0]!;
    expect(b.status).toBe('resolved');
    expect(b.lo! <= 7777 && 7777 < b.hi!).toBe(true);
    expect(b.hi! - b.lo!).toBeLessThanOrEqual(250);
    expect(r.trials.length).toBeLessThanOrEqual(Math.ceil(Math.log2((60_000 - 500 + 500) / 250)) + 1);
    expect(linearSweepTrials(500, 60_000, 250)).toBe(239);
  });

  it('shares trials across probes: the quick-migration mix needs ≥ 5× fewer trials than a linear sweep', () => {
    const thresholds = { ping: Infinity, echo: Infinity, ut3: 3000, console: 3500, pg: 12_600, smb: 19_000, sftp: Infinity, web: 25_400, rdp: 9000 };
    const r = simulateSearch(search(500, 60_000, 250), thresholds);
    for (const b of r.brackets) {
      const th = thresholds[b.probe as keyof typeof thresholds];
      if (th === Infinity) expect(b.status).toBe('survives-range');
      else {
        expect(b.status).toBe('resolved');
        expect(b.lo! <= th && th < b.hi!, `${b.probe} ${b.lo}–${b.hi} vs ${th}`).toBe(true);
        expect(b.hi! - b.lo!).toBeLessThanOrEqual(250);
      }
    }
    // 9 probes searched one by one would take ~9 × 8; shared, the trials serve several brackets at once
    expect(r.trials.length * 5).toBeLessThanOrEqual(linearSweepTrials(500, 60_000, 250));
    expect(r.stopReason).toMatch(/every probe is resolved/);
  });

  it('exhausts the range both ways: survives `to`, fails at `from`', () => {
    const r = simulateSearch(search(500, 8000, 1000), { tough: Infinity, weak: 100 });
    const [tough, weak] = r.brackets;
    expect(tough).toMatchObject({ status: 'survives-range', lo: 8000, hi: null });
    expect(weak).toMatchObject({ status: 'fails-below-range', lo: null, hi: 500 });
    expect(r.trials.map((t) => t.ms)).toEqual(expect.arrayContaining([500, 8000]));
  });

  it('the lab end-to-end case: 500 ms – 8 s at 1 s, a 3 s user timeout and a plain session', () => {
    const r = simulateSearch(search(500, 8000, 1000), { ut3s: 3000, plain: Infinity });
    expect(r.brackets[0]).toMatchObject({ status: 'resolved' });
    expect(r.brackets[1]).toMatchObject({ status: 'survives-range' });
    expect(r.trials.length).toBeLessThan(linearSweepTrials(500, 8000, 1000));
  });

  it('flags a non-monotonic probe as flaky, shows the trials, and stops spending trials on it', () => {
    // breaks at 12 s, but its first trial failed (at 8.3 s): a later trial for the other probe survives longer
    const r = simulateSearch(search(500, 16_000, 500), { weird: (ms, trial) => trial !== 0 && ms <= 12_000, steady: 9000 });
    const weird = r.brackets.find((b) => b.probe === 'weird')!;
    expect(weird.status).toBe('flaky');
    expect(weird.conflicts.length).toBeGreaterThan(0);
    const c = weird.conflicts[0]!;
    expect(c.survived.ms).toBeGreaterThan(c.failed.ms);
    expect(r.brackets.find((b) => b.probe === 'steady')!.status).toBe('resolved');
  });

  it('records why each length was chosen', () => {
    const r = simulateSearch(search(500, 8000, 1000), { a: 3000, b: Infinity });
    expect(r.trials[0]!.reason).toMatch(/search step 1: .* halves the range \[500 ms, 8 s\]/);
    expect(r.trials[1]!.reason).toMatch(/search step 2: .* cuts the most remaining uncertainty .* bits expected\) over /);
  });

  it('stops at maxTrials and after trials that tell nothing', () => {
    const capped = simulateSearch(search(500, 60_000, 10, 5), { a: 12_345 });
    expect(capped.trials).toHaveLength(5);
    expect(capped.stopReason).toMatch(/maxTrials \(5\)/);
    const p = createPlanner(search(500, 8000, 1000), ['a']);
    for (let i = 0; i < 3; i++) {
      const s = p.next()!;
      p.observe({ index: i, requestedMs: s.lengthMs, outcomes: { a: 'unknown' } });
    }
    expect(p.next()).toBeNull();
    expect(p.stopReason()).toMatch(/no outcome/);
  });

  it('a list sweep repeats each length in order', () => {
    const p = createPlanner({ mode: 'list', lengths: [2000, 5000], repeat: 2 }, ['a']);
    const got: string[] = [];
    for (let s = p.next(); s; s = p.next()) got.push(`${s.lengthMs} ${s.reason}`);
    expect(got).toEqual(['2000 list: length 1 of 2, repeat 1 of 2', '2000 list: length 1 of 2, repeat 2 of 2', '5000 list: length 2 of 2, repeat 1 of 2', '5000 list: length 2 of 2, repeat 2 of 2']);
  });

  it('gain and grid are sane', () => {
    expect(expectedGain(5, 0, 10, 1)).toBeGreaterThan(expectedGain(2, 0, 10, 1));
    expect(expectedGain(0, 0, 10, 1)).toBe(0);
    expect(gridStep(1000)).toBe(250);
    expect(gridStep(250)).toBe(100);
    expect(bracketsOf(['x'], [{ index: 0, requestedMs: 1000, outcomes: { x: 'recovered' } }])[0]).toMatchObject({ lo: null, hi: 1000 });
  });
});

describe('suite: blackouts.search', () => {
  const base = { name: 's', target: 'lab', probes: [{ name: 'e', kind: 'tcp' }], injector: { kind: 'cable-pull' } };
  it('parses a search and keeps lists as before', () => {
    expect(validateSuite({ ...base, blackouts: { search: { from: '500ms', to: '8s', resolution: '1s' } } }).sweep).toEqual({ mode: 'search', from: 500, to: 8000, resolution: 1000, maxTrials: 40 });
    const l = validateSuite({ ...base, blackouts: { lengths: ['2s', '5s'], repeat: 2 } });
    expect(l.blackouts).toEqual([2000, 2000, 5000, 5000]);
    expect(l.sweep).toEqual({ mode: 'list', lengths: [2000, 5000], repeat: 2 });
  });
  it('rejects an empty range and names the field', () => {
    expect(() => validateSuite({ ...base, blackouts: { search: { from: '8s', to: '1s', resolution: '1s' } } })).toThrow(/blackouts.*to > from/);
    expect(() => validateSuite({ ...base, blackouts: { search: { from: '1s', to: '8s' } } })).toThrow(/resolution/);
  });
  it('accepts a migration block', () => {
    const s = validateSuite({ ...base, blackouts: ['1s'], migration: { links: { '1 GbE iSCSI': '125MB/s', '16Gb FC': '16Gbit/s' }, memory: ['512MB', '16GB'], livePause: '300ms' } });
    expect(s.migration).toMatchObject({ links: { '1 GbE iSCSI': 125 }, memory: [512 * 2 ** 20, 16 * 2 ** 30], livePause: 300 });
    expect(s.migration!.links!['16Gb FC']).toBeCloseTo(1907.3, 0);
  });
});
