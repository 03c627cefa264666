/**
 * web probe (playwright-core + Debian Chromium) against the lab's web app. One 2 s
 * cable-pull trial, three browser sessions at once —
 *   web         the page waits 5 s for data before it reconnects: data stops, resumes, same session;
 *   web-strict  the page gives up 500 ms after its data went stale (1 s): fails with the page's own text;
 *   web-kicked  the server forces a logout after the restore (admin socket): detected;
 *   web-reconnect  the page drops its stale websocket after 1 s and reconnects by itself: recovered;
 * screenshots at the first trouble and after recovery; and a wrong password: exit 2.
 */
import { existsSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { useLab, labName } from '../helpers/lab.ts';
import { eventsOf, expectPreflightFailure, message, runLabSuite } from '../helpers/probes.ts';
import { readSummary, waitForEvent } from '../helpers/run-dir.ts';

const lab = useLab(labName('pweb'));

function forceLogout(client: string): Promise<{ kicked: number }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: `${lab.state().dir}/web/admin.sock`, path: '/logout', method: 'POST' }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve(JSON.parse(body) as { kicked: number }));
    });
    req.on('error', reject);
    req.end(JSON.stringify({ client }));
  });
}

describe('web probe', () => {
  it('a browser session survives a 2 s cable pull; a page that gives up fails; a forced logout is detected', async () => {
    const r = await runLabSuite(
      'pweb',
      {
        name: 'web probe test',
        probes: [
          { name: 'web', kind: 'web', staleAfter: '5s' },
          { name: 'web-strict', kind: 'web', staleAfter: '1s', giveUp: '500ms' },
          { name: 'web-kicked', kind: 'web', staleAfter: '5s' },
          { name: 'web-reconnect', kind: 'web', staleAfter: '1s' },
        ],
        injector: { kind: 'cable-pull' },
        blackouts: ['2s'],
        warmup: '2s',
        recovery: '8s',
      },
      {
        during: async (out) => {
          // after the restore and the first fresh data again: the server logs this user out
          const restore = await waitForEvent(out, (e) => e.type === 'restore');
          await waitForEvent(out, (e) => e.type === 'sample' && e.probe === 'web-kicked' && e.t > restore.t, 20_000);
          expect(await forceLogout('web-kicked')).toEqual({ kicked: 1 });
        },
      },
    );
    expect(r.code, r.stderr).toBe(0);
    const t = readSummary(r.out).trials[0]!;
    expect(message(eventsOf(r.events, 'web', 'session-open')[0])).toBe('logged in as bolab');
    expect(t.probes.web!.samples).toBeGreaterThan(2);
    expect(t.probes.web!.outcome, t.probes.web!.reason).toBe('stalled');

    expect(t.probes['web-strict']!.outcome).toBe('failed');
    const strictErrors = [...eventsOf(r.events, 'web-strict', 'session-lost'), ...eventsOf(r.events, 'web-strict', 'probe-error')].map(message);
    expect(strictErrors.join(' | ')).toMatch(/Connection to the server lost for 500 ms\. Please reload the page\./);

    expect(t.probes['web-kicked']!.outcome).toBe('failed');
    expect(message(eventsOf(r.events, 'web-kicked', 'session-lost')[0])).toMatch(/You were logged out by the server\.|sent to \/login: You were logged out by the server\./);

    expect(t.probes['web-reconnect']!.outcome, t.probes['web-reconnect']!.reason).toBe('recovered');
    expect(message(eventsOf(r.events, 'web-reconnect', 'session-open').at(-1))).toMatch(/^the page reconnected its websocket/);

    // screenshots: when the page showed trouble, and after it recovered; none for the silent stall
    const shots = r.events.filter((e) => e.type === 'attachment');
    expect(shots.filter((e) => e.type === 'attachment' && e.probe === 'web')).toEqual([]);
    for (const [probe, name] of [['web-reconnect', 'first-failure.png'], ['web-reconnect', 'after-recovery.png'], ['web-strict', 'first-failure.png'], ['web-kicked', 'first-failure.png']]) {
      const a = shots.find((e) => e.type === 'attachment' && e.probe === probe && e.name === name);
      expect(a, `${probe} ${name}`).toBeTruthy();
      expect(existsSync(join(r.out, a!.type === 'attachment' ? a!.path : ''))).toBe(true);
    }
  });

  it('a wrong password is a preflight failure: exit 2, nothing injected', async () => {
    await expectPreflightFailure(
      'pweb',
      'web preflight',
      { name: 'badpw', kind: 'web', passwordEnv: 'BO_TEST_WRONG_PW', navigationTimeout: '3s' },
      /login at http:\/\/[\d.]+:8080\/login failed: .*Invalid user name or password\./,
      { BO_TEST_WRONG_PW: 'not-the-password' },
    );
  });
});
