/**
 * The metrics sink, fed the committed fixture log event by event with the
 * clock held at chosen instants: the cut and a stall appear and clear, the
 * observed outage after each trial is the report's, the endpoint speaks
 * OpenMetrics, and the example Grafana dashboard asks only for served metrics.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { analyze } from '../../src/analysis/analysis.ts';
import { readEvents } from '../../src/core/event-log.ts';
import type { BlackoutEvent } from '../../src/core/events.ts';
import { MetricsSink } from '../../src/reporters/metrics.ts';
import { FIXTURES } from '../helpers/fixtures.ts';
import { ROOT } from '../helpers/lab.ts';
import { parseOpenMetrics, value } from '../helpers/openmetrics.ts';

const events = readEvents(join(FIXTURES, 'list-run.jsonl')).events;

/** feeds events up to run-clock time `until`, holds the clock there and scrapes */
function player(): { sink: MetricsSink; at: (until: number) => Promise<ReturnType<typeof parseOpenMetrics>> } {
  let now = 0;
  let i = 0;
  const sink = new MetricsSink(() => now);
  return {
    sink,
    at: async (until: number) => {
      for (; i < events.length && events[i]!.t <= until; i++) sink.onEvent(events[i]!);
      now = until;
      return parseOpenMetrics(await sink.scrape());
    },
  };
}

describe('metrics sink', () => {
  it('the cut and a stall appear during the blackout and clear after it; the outage after the trial is the report', async () => {
    const cut = events.find((e): e is Extract<BlackoutEvent, { type: 'cut' }> => e.type === 'cut' && e.trial === 0)!;
    const restore = events.find((e): e is Extract<BlackoutEvent, { type: 'restore' }> => e.type === 'restore' && e.trial === 0)!;
    const end = events.find((e) => e.type === 'trial-end' && e.trial === 0)!;
    const p = player();
    const before = await p.at(cut.t - 100);
    expect(value(before, 'blackout_cut_active')).toBe(0);
    expect(value(before, 'blackout_probe_state', { probe: 'echo', state: 'ok' })).toBe(1);
    expect(value(before, 'blackout_trial')).toBe(0);
    expect(value(before, 'blackout_blackout_requested_seconds')).toBe(2);
    expect(value(before, 'blackout_probe_samples_total', { probe: 'echo' })).toBeGreaterThan(10);

    const mid = await p.at(cut.t + 1500);
    expect(value(mid, 'blackout_cut_active')).toBe(1);
    expect(value(mid, 'blackout_phase', { phase: 'cut' })).toBe(1);
    expect(value(mid, 'blackout_blackout_elapsed_seconds')).toBeCloseTo(1.5, 3);
    expect(value(mid, 'blackout_probe_state', { probe: 'echo', state: 'stalled' })).toBe(1);
    expect(value(mid, 'blackout_probe_state', { probe: 'echo', state: 'ok' })).toBe(0);
    expect(value(mid, 'blackout_probe_gap_seconds', { probe: 'echo' })).toBeGreaterThan(1.4);

    const after = await p.at(end.t - 50);
    expect(value(after, 'blackout_cut_active')).toBe(0);
    expect(value(after, 'blackout_blackout_elapsed_seconds')).toBeCloseTo((restore.t - cut.t) / 1000, 3);
    expect(value(after, 'blackout_probe_state', { probe: 'echo', state: 'ok' })).toBe(1);
    expect(value(after, 'blackout_probe_state', { probe: 'echo', state: 'stalled' })).toBe(0);

    const done = await p.at(end.t);
    const a = analyze(events);
    const echo = a.trials[0]!.probes.echo!;
    expect(value(done, 'blackout_last_finished_trial')).toBe(0);
    expect(value(done, 'blackout_probe_observed_outage_seconds', { probe: 'echo' })).toBeCloseTo(echo.observedOutageMs! / 1000, 6);
    expect(value(done, `blackout_probe_outcome`, { probe: 'echo', outcome: echo.outcome })).toBe(1);
    // between trials no session is open: no state, no gap
    expect(['ok', 'stalled', 'lost'].map((s) => value(done, 'blackout_probe_state', { probe: 'echo', state: s }))).toEqual([0, 0, 0]);
    expect(value(done, 'blackout_probe_gap_seconds', { probe: 'echo' })).toBe(0);
  });

  it('a lost session shows as lost until it answers again; errors and losses are counted', async () => {
    const trial = 2; // console loses its session (keepalive) and reconnects
    const lost = events.find((e) => e.type === 'session-lost' && e.trial === trial && e.probe === 'console')!;
    const p = player();
    const m = await p.at(lost.t + 1);
    expect(value(m, 'blackout_probe_state', { probe: 'console', state: 'lost' })).toBe(1);
    expect(value(m, 'blackout_probe_sessions_lost_total', { probe: 'console' })).toBeGreaterThanOrEqual(1);
    const back = events.find((e) => e.type === 'sample' && e.trial === trial && e.probe === 'console' && e.t > lost.t)!;
    const m2 = await p.at(back.t);
    expect(value(m2, 'blackout_probe_state', { probe: 'console', state: 'lost' })).toBe(0);
    expect(value(m2, 'blackout_probe_state', { probe: 'console', state: 'ok' })).toBe(1);
    const all = await p.at(Infinity);
    const errors = events.filter((e) => e.type === 'probe-error' && e.probe === 'flappy').length;
    expect(value(all, 'blackout_probe_errors_total', { probe: 'flappy' })).toBe(errors);
    expect(value(all, 'blackout_probe_samples_total', { probe: 'ping' })).toBe(events.filter((e) => e.type === 'sample' && e.probe === 'ping').length);
  });

  it('serves OpenMetrics over HTTP on 127.0.0.1 and closes', async () => {
    const p = player();
    await p.at(1000);
    const at = await p.sink.listen('127.0.0.1', 0);
    try {
      expect(at.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
      const r = await fetch(at.url);
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toMatch(/^application\/openmetrics-text; version=1\.0\.0/);
      const text = await r.text();
      expect(text.trimEnd().endsWith('# EOF')).toBe(true);
      expect(value(parseOpenMetrics(text), 'blackout_run_info', { suite: 'fixture list', injector: 'cable-pull' })).toBe(1);
      expect((await fetch(at.url.replace('/metrics', '/nope'))).status).toBe(404);
      // a second sink cannot take the same port
      await expect(new MetricsSink(() => 0).listen('127.0.0.1', at.port)).rejects.toThrow(/EADDRINUSE/);
    } finally {
      await p.sink.close();
    }
    await expect(fetch(at.url)).rejects.toThrow();
  });

  it('the example Grafana dashboard asks only for metrics the endpoint serves', async () => {
    const dash = JSON.parse(readFileSync(join(ROOT, 'examples/grafana-dashboard.json'), 'utf8'));
    const exprs: string[] = JSON.stringify(dash).match(/"expr":"(?:[^"\\]|\\.)*"/g)!;
    const asked = new Set(exprs.flatMap((e) => e.match(/blackout_[a-z_]+/g) ?? []));
    const p = player();
    const served = new Set((await p.at(Infinity)).map((s) => s.name));
    expect(asked.size).toBeGreaterThan(8);
    for (const m of asked) expect(served, m).toContain(m);
  });
});
