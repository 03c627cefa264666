/**
 * Test child: takes the labs' allocation lock (at a test's own path, so the
 * machine's real `lab up`s are not held up), reports when it got in and when
 * it leaves, one JSON line each, holding it `holdMs` in between.
 * argv: lockPath holdMs
 */
import { withAllocLock } from '../../src/lab/lab.ts';
import { sleep } from '../../src/core/clock.ts';

const [lockPath, holdMs] = process.argv.slice(2) as [string, string];
await withAllocLock(async () => {
  process.stdout.write(`${JSON.stringify({ ev: 'in', t: Date.now() })}\n`);
  await sleep(Number(holdMs));
  process.stdout.write(`${JSON.stringify({ ev: 'out', t: Date.now() })}\n`);
}, lockPath);
