/**
 * Contained probes: a probe that throws from a callback, leaves a rejected
 * promise, never finishes closing, or talks to a server that accepts and never
 * answers cannot stall or crash the run; each failure becomes an event and an
 * outcome, and the target is restored as always.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createClock } from '../../src/core/clock.ts';
import { readEvents } from '../../src/core/event-log.ts';
import { analyze } from '../../src/analysis/analysis.ts';
import { runSuite } from '../../src/run/runner.ts';
import { validateSuite } from '../../src/run/suite.ts';
import { probeBase } from '../../src/core/schema-util.ts';
import { probes } from '../../src/probes/index.ts';
import type { ProbeDefinition } from '../../src/core/probe.ts';
import { runCli, tempDir, useLab, writeSuite, labName } from '../helpers/lab.ts';

const lab = useLab(labName('tcontain'));

/** misbehaving probes, registered for this file only: each samples fine, then misbehaves during the cut */
function misbehaving(kind: string, misbehave: 'throw' | 'reject' | 'hang-close'): ProbeDefinition<any> {
  return {
    kind,
    summary: 'test only',
    schema: z.strictObject({ ...probeBase(kind, { interval: 50 }) }),
    policy: () => ({ reconnect: 'none' }),
    facts: () => ({ session: true, deadlines: [], notes: [], reconnect: false }),
    create(config, ctx) {
      let timer: NodeJS.Timeout;
      let n = 0;
      return {
        async open() {
          timer = setInterval(() => {
            ctx.emit({ type: 'sample', seq: ++n });
            if (n === 30 && misbehave === 'throw') throw new Error('boom from a timer');
            if (n === 30 && misbehave === 'reject') void Promise.reject(new Error('a promise nobody awaited'));
          }, config.interval);
        },
        close() {
          clearInterval(timer);
          return misbehave === 'hang-close' ? new Promise<void>(() => {}) : Promise.resolve();
        },
      };
    },
  };
}

const extra = [misbehaving('test-throw', 'throw'), misbehaving('test-reject', 'reject'), misbehaving('test-hang-close', 'hang-close')];
probes.push(...extra);
afterAll(() => {
  for (const d of extra) probes.splice(probes.indexOf(d), 1);
});

describe('contained probes', () => {
  it('a probe that throws, one that leaves a rejection and one that never closes: the run completes and says so', async () => {
    const out = tempDir();
    const suite = validateSuite({
      name: 'misbehaving',
      target: { lab: labName('tcontain') },
      probes: [
        { name: 'thrower', kind: 'test-throw' },
        { name: 'rejecter', kind: 'test-reject' },
        { name: 'hanger', kind: 'test-hang-close' },
        { name: 'echo', kind: 'tcp', interval: '50ms' },
      ],
      injector: { kind: 'cable-pull' },
      blackouts: ['1s'],
      warmup: '1s',
      recovery: '5s',
    });
    const started = Date.now();
    const r = await runSuite(suite, { outDir: out, clock: createClock() });
    expect(r.exitCode).toBe(0);
    expect(Date.now() - started).toBeLessThan(40_000); // the hanging close is cut off at 15 s
    const a = analyze(readEvents(join(out, 'events.jsonl')).events);
    const t = a.trials[0]!;
    expect(t.injected).not.toBeNull();
    expect(t.probes.thrower!.outcome).toBe('failed');
    expect(t.probes.thrower!.reason).toMatch(/the probe crashed: boom from a timer/);
    expect(t.probes.rejecter!.outcome).toBe('failed');
    expect(t.probes.rejecter!.reason).toMatch(/a promise nobody awaited/);
    expect(t.probes.hanger!.errors.map((e) => e.message).join()).toMatch(/close took longer than 15 s/);
    expect(t.probes.echo!.outcome).toBe('stalled');
  }, 60_000);

  it('a server that accepts and never answers: the tcp probe fails on its read timeout, bounded', async () => {
    const s = lab.state();
    // a real listener in the target namespace that accepts and then says nothing, ever
    const script = "require('net').createServer(() => {}).listen(7007, process.argv[1])";
    const server = spawn('ip', ['netns', 'exec', s.targetNs, process.execPath, '-e', script, s.targetAddress], { stdio: 'ignore' });
    try {
      await new Promise((r) => setTimeout(r, 500));
      const out = tempDir();
      const r = await runCli([
        'run',
        writeSuite({
          name: 'silent server',
          target: { lab: labName('tcontain') },
          probes: [{ name: 'mute', kind: 'tcp', port: 7007, readTimeout: '1s' }],
          injector: { kind: 'cable-pull' },
          blackouts: ['1s'],
          warmup: '1500ms',
        }),
        '--out',
        out,
      ]);
      // no good sample ever: preflight fails (exit 2) with the probe's own error, nothing injected, in bounded time
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/mute: no steady good samples during warm-up \(no echo within the read timeout of 1000 ms\)/);
    } finally {
      server.kill('SIGKILL');
    }
  });
});
