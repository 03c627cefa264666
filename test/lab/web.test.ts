/**
 * web probe (playwright-core + Debian Chromium) against the lab's web app, which
 * the probe knows only through a journey. One 2 s cable-pull trial, four browser
 * sessions at once —
 *   journey module (suites/journeys/lab-app.ts, Playwright's API on the app's live page):
 *   web            the page waits 5 s for data before it reconnects: data stops, resumes, same session;
 *   web-strict     the page gives up 500 ms after its data went stale (1 s): fails with the page's own text;
 *   web-kicked     the server forces a logout after the restore (admin socket): detected;
 *   web-reconnect  the page drops its stale websocket after 1.5 s and reconnects by itself: recovered;
 * then declarative steps (log in through the form; each check reloads the page and expects its
 * heading) through an 8 s pull: a reload in flight waits for TCP and completes (stalled); with a
 * 4 s page-load timeout it times out (failed); with a reconnect policy the user logs in again (recovered);
 * screenshots at the first trouble and after recovery; and preflight errors (exit 2,
 * nothing injected) for a wrong password, a wrong port and a wrong expectation.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { labName, ROOT, useLab } from '../helpers/lab.ts';
import { eventsOf, expectPreflightFailure, message, runLabSuite } from '../helpers/probes.ts';
import { readSummary, waitForEvent } from '../helpers/run-dir.ts';

const LAB = labName('pweb');
const lab = useLab(LAB, { upTimeoutMs: 300_000 });
const JOURNEY = join(ROOT, 'suites/journeys/lab-app.ts');
const made: string[] = [];
afterAll(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

/** the lab app through declarative steps: the form, then a reload + its heading each check */
const declarative = {
  login: [{ goto: '/login' }, { fill: '#user', value: 'bolab' }, { fill: '#password', secret: 'password' }, { click: '#login' }, { waitForUrl: '/\\/app(\\?|$)/' }, { expectText: 'Logged in as' }],
  check: [{ reload: true }, { expectText: 'Live data', in: 'h1' }],
};

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
      LAB,
      {
        name: 'web probe test',
        probes: [
          // a check every 1 s (the probe's interval; the app's data comes every 250 ms); a 2 s pull leaves a gap of
          // at least 2 s between fresh values: beyond 1 s + 500 ms, a stall
          { name: 'web', kind: 'web', journey: JOURNEY, params: { staleAfter: '5s' }, tolerance: '500ms' },
          // stale 1 s after its last data (within 250 ms before the cut), it reconnects 500 ms later into the
          // pull and gives up 500 ms after going stale: before the restore (≥ 2 s after that data) lets a SYN through
          { name: 'web-strict', kind: 'web', journey: JOURNEY, params: { staleAfter: '1s', giveUp: '500ms' } },
          { name: 'web-kicked', kind: 'web', journey: JOURNEY, params: { staleAfter: '5s' } },
          // the app's data comes every 250 ms: 1.5 s leaves room for late ticks on a loaded machine
          { name: 'web-reconnect', kind: 'web', journey: JOURNEY, params: { staleAfter: '1500ms' } },
        ],
        injector: { kind: 'cable-pull' },
        blackouts: ['2s'],
        warmup: '2s',
        // the page's own reconnect (backoff from 500 ms, a lost SYN retried after 1 s) on a loaded machine
        recovery: '12s',
      },
      {
        during: async (out) => {
          made.push(out);
          // after the restore and the first fresh data again: the server logs this user out
          // four browser logins first: slow on a loaded machine
          const restore = await waitForEvent(out, (e) => e.type === 'restore', 180_000);
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

    const rc = t.probes['web-reconnect']!;
    expect(rc.outcome, rc.reason).toBe('recovered');
    // the page reconnected because of the pull, not because of a late tick during the warm-up
    const cut = r.events.find((e) => e.type === 'cut')!;
    expect(
      eventsOf(r.events, 'web-reconnect', 'session-lost').every((e) => e.t >= cut.t),
      'no reconnect before the cut',
    ).toBe(true);
    expect(message(eventsOf(r.events, 'web-reconnect', 'session-lost')[0])).toMatch(/^the page's websocket is down: Reconnecting… \(no data for 1500 ms\)/);
    expect(message(eventsOf(r.events, 'web-reconnect', 'session-open').at(-1))).toBe('the site works again in the same browser session');

    const policy = (r.events[0] as { probes: Array<{ name: string; policy: Record<string, unknown> }> }).probes;
    expect(policy.find((p) => p.name === 'web')!.policy).toMatchObject({ journey: JOURNEY, journeyParams: { staleAfter: '5s' } });

    // screenshots: when the page showed trouble, and after it recovered; none for the silent stall
    const shots = r.events.filter((e) => e.type === 'attachment');
    expect(shots.filter((e) => e.type === 'attachment' && e.probe === 'web')).toEqual([]);
    for (const [probe, name] of [
      ['web-reconnect', 'first-failure.png'],
      ['web-reconnect', 'after-recovery.png'],
      ['web-strict', 'first-failure.png'],
      ['web-kicked', 'first-failure.png'],
    ]) {
      const a = shots.find((e) => e.type === 'attachment' && e.probe === probe && e.name === name);
      expect(a, `${probe} ${name}`).toBeTruthy();
      expect(existsSync(join(r.out, a!.type === 'attachment' ? a!.path : ''))).toBe(true);
    }
  }, 240_000);

  it('declarative steps (log in, then reload and expect the heading): a reload through an 8 s pull stalls, a 4 s page-load timeout fails, logging in again recovers', async () => {
    const r = await runLabSuite(
      LAB,
      {
        name: 'web declarative test',
        probes: [
          { name: 'decl', kind: 'web', journey: declarative, tolerance: '1s' },
          { name: 'decl-4s', kind: 'web', journey: declarative, checkTimeout: '4s' },
          { name: 'decl-relogin', kind: 'web', journey: declarative, checkTimeout: '4s', reconnect: 'backoff' },
        ],
        injector: { kind: 'cable-pull' },
        blackouts: ['8s'],
        warmup: '3s',
        recovery: '20s',
      },
      { during: async (out) => void made.push(out) },
    );
    expect(r.code, r.stderr).toBe(0);
    const t = readSummary(r.out).trials[0]!;
    expect(t.probes.decl!.outcome, t.probes.decl!.reason).toBe('stalled');
    expect(t.probes.decl!.observedOutageMs).toBeGreaterThan(6000);
    expect(t.probes['decl-4s']!.outcome).toBe('failed');
    expect(message(eventsOf(r.events, 'decl-4s', 'session-lost')[0])).toMatch(/^check\[[01]\] \((reload|expectText Live data in h1)\): .*(Timeout 4000ms exceeded|within 4000 ms)/);
    expect(t.probes['decl-relogin']!.outcome, t.probes['decl-relogin']!.reason).toBe('recovered');
    expect(message(eventsOf(r.events, 'decl-relogin', 'session-open').at(-1))).toBe('logged in again as bolab');
    const policy = (r.events[0] as { probes: Array<{ name: string; policy: Record<string, unknown> }> }).probes;
    expect(policy.find((p) => p.name === 'decl-4s')!.policy).toMatchObject({ journey: 'declarative: 6 login step(s), 2 check step(s)', pageLoadTimeoutMs: 4000 });
    // the password secret never reaches the log
    const password = readFileSync(`${lab.state().dir}/secrets/web-password`, 'utf8').trim();
    expect(readFileSync(join(r.out, 'events.jsonl'), 'utf8')).not.toContain(password);
  });

  it('a wrong password is a preflight failure: exit 2, nothing injected', async () => {
    await expectPreflightFailure(
      LAB,
      'web preflight',
      { name: 'badpw', kind: 'web', journey: JOURNEY, passwordEnv: 'BO_TEST_WRONG_PW', navigationTimeout: '3s' },
      /login at http:\/\/[\d.]+:8080\/login failed: .*Invalid user name or password\./,
      { BO_TEST_WRONG_PW: 'not-the-password' },
    );
  });

  it('a wrong port is a preflight failure: exit 2, nothing injected', async () => {
    const url = `http://${lab.state().targetAddress}:8081/`;
    await expectPreflightFailure(
      LAB,
      'web preflight',
      { name: 'badport', kind: 'web', url, journey: declarative, navigationTimeout: '5s' },
      /login\[0\] \(goto \/login\): page\.goto: net::ERR_CONNECTION_REFUSED/,
    );
  });

  it('a wrong expectation is a preflight failure naming the step and what the page shows', async () => {
    const wrong = { ...declarative, check: [{ reload: true }, { expectText: 'Checkout', in: 'h1' }] };
    await expectPreflightFailure(
      LAB,
      'web preflight',
      { name: 'badtext', kind: 'web', journey: wrong, checkTimeout: '2s' },
      /check\[1\] \(expectText Checkout in h1\): expected "Checkout" in h1 within 2000 ms; the page \(\/app\) shows: "Live data"/,
    );
  });
});
