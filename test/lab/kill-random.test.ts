/**
 * Restore under every death: 20 kill -9s of the harness at random moments of
 * a run (warm-up, mid-cut, around the restore, recovery), half cable-pull,
 * half quick-migration. Every time: the target answers again by the cut's
 * deadline + 1 s (immediately when no cut was on), the log parses with events
 * up to ~100 ms before the kill, and the next run heals what was left.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { EventOf } from '../../src/core/events.ts';
import { readEvents } from '../../src/core/event-log.ts';
import { sleep } from '../../src/core/clock.ts';
import { runCli, tempDir, useLab, writeSuite, labName } from '../helpers/lab.ts';
import { echoBackAt } from '../helpers/echo.ts';
import { waitForEvent } from '../helpers/run-dir.ts';
import { Freezer } from '../../src/injectors/shared/freezer.ts';

const lab = useLab(labName('tkillr'));

describe('kill -9 at random moments', () => {
  it('20 kills: always restored in time, evidence kept, next run starts clean', async () => {
    const host = lab.state().targetAddress;
    let seed = 7;
    const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const worst: number[] = [];
    for (let k = 0; k < 20; k++) {
      const kind = k % 2 ? 'quick-migration' : 'cable-pull';
      const out = tempDir();
      const suite = writeSuite({
        name: `kill ${k}`,
        target: { lab: labName('tkillr') },
        probes: [{ name: 'echo', kind: 'tcp', interval: '20ms' }],
        injector: { kind },
        blackouts: ['1500ms', '1500ms'],
        warmup: '600ms',
        recovery: '4s',
      });
      let pid = 0;
      const done = runCli(['run', suite, '--out', out], { onSpawn: (p) => (pid = p) });
      const start = await waitForEvent(out, (e): e is EventOf<'run-start'> => e.type === 'run-start');
      // somewhere from the middle of the warm-up to the recovery watch
      const killAfter = 300 + rnd() * 3000;
      await sleep(killAfter);
      const killWall = Date.now();
      process.kill(pid, 'SIGKILL'); // two trials: the run is still going at the latest kill moment
      await done;
      const log = readEvents(join(out, 'events.jsonl'));
      const cut = log.events.find((e): e is EventOf<'cut'> => e.type === 'cut');
      const restored = log.events.some((e) => e.type === 'restore');
      const deadlineWall = cut && !restored ? start.wallMs + cut.deadline : killWall;
      // generous: on a loaded machine an answer can take a few hundred ms; the attempt's start time is what counts
      const back = await echoBackAt(host, deadlineWall + 3000, { timeoutMs: 400, pollMs: 20 });
      const backAt = back?.attemptAt ?? null; // it answered the attempt started then
      expect(backAt, `kill ${k} (${kind}) after ${killAfter.toFixed(0)} ms`).not.toBeNull();
      worst.push(backAt! - deadlineWall);
      expect(backAt! - deadlineWall, `kill ${k} (${kind})`).toBeLessThanOrEqual(1000);
      // evidence: the log parses and its last event is from the last ~100 ms before the kill
      const lastT = log.events.at(-1)!.t;
      const lastWall = start.wallMs + lastT;
      // (checked while samples flow: in the warm-up, 50 samples a second; a cut silences the probe itself)
      const lastPhase = log.events.filter((e): e is EventOf<'phase'> => e.type === 'phase').at(-1);
      if (!cut && lastPhase?.phase === 'warmup') expect(killWall - lastWall, `kill ${k}: last event too old`).toBeLessThan(150);
      expect(new Freezer(lab.state()).state()).not.toBe('FROZEN');
    }
    // the next run starts clean: heals nothing that is still wrong, and runs
    const out = tempDir();
    const r = await runCli([
      'run',
      writeSuite({
        name: 'after',
        target: { lab: labName('tkillr') },
        probes: [{ name: 'echo', kind: 'tcp' }],
        injector: { kind: 'quick-migration' },
        blackouts: ['300ms'],
        warmup: '300ms',
        recovery: '5s',
      }),
      '--out',
      out,
    ]);
    expect(r.code, r.stderr).toBe(0);
    console.log(`kill -9 ×20: worst restore relative to the deadline ${Math.max(...worst)} ms`);
  }, 300_000);
});
