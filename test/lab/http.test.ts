/**
 * http probe against the lab's stock nginx (Debian's nginx-light, its stock
 * page; HTTPS with the lab's self-signed certificate), through a real 2 s
 * cable pull:
 *   page     plain HTTP, body pattern, a secret header from the environment: survives (stalls);
 *   tls-ca   HTTPS verified against the lab's CA file: survives;
 *   tls-rt   HTTPS with a pinned certificate and a 1 s request timeout: fails with its own timeout;
 *   tls-rc   the same with reconnect immediate: recovered on a new connection;
 * and what must stop at preflight (exit 2, nothing injected): a closed port, a
 * wrong status or body expectation, a wrong pin, an unverifiable certificate, a
 * missing secret; an inline credential header is refused by validation.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { labName, runCli, useLab, writeSuite } from '../helpers/lab.ts';
import { eventsOf, expectPreflightFailure, runLabSuite } from '../helpers/probes.ts';
import { readSummary } from '../helpers/run-dir.ts';
import { useOwnTmp } from '../helpers/tmp.ts';

useOwnTmp('blackout-http-test-');
const LAB = labName('phttp');
const lab = useLab(LAB);
const nginx = () => lab.state().services.nginx as unknown as { url: string; httpsUrl: string; certFile: string; certFingerprint: string };
const SECRET = 'Bearer s3cr3t-token-for-the-http-test';

describe('http probe', () => {
  it('survives a 2 s cable pull, fails past its request timeout, recovers with reconnect', async () => {
    const n = nginx();
    const r = await runLabSuite(
      LAB,
      {
        name: 'http probe test',
        probes: [
          { name: 'page', kind: 'http', interval: '200ms', expect: { status: 200, body: 'Welcome to nginx!' }, secretHeaders: { Authorization: { env: 'BO_TEST_HTTP_TOKEN' } } },
          { name: 'tls-ca', kind: 'http', interval: '200ms', url: n.httpsUrl, tls: { ca: n.certFile } },
          { name: 'tls-rt', kind: 'http', interval: '200ms', url: n.httpsUrl, tls: { pin: n.certFingerprint }, requestTimeout: '1s' },
          { name: 'tls-rc', kind: 'http', interval: '200ms', url: n.httpsUrl, tls: { pin: n.certFingerprint }, requestTimeout: '1s', reconnect: 'immediate' },
        ],
        injector: { kind: 'cable-pull' },
        blackouts: ['2s'],
        warmup: '1500ms',
        recovery: '8s',
      },
      { env: { BO_TEST_HTTP_TOKEN: SECRET } },
    );
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const t = readSummary(r.out).trials[0]!;
    for (const p of ['page', 'tls-ca']) {
      expect(t.probes[p]!.samples, p).toBeGreaterThan(5);
      expect(t.probes[p]!.outcome, p).toBe('stalled');
      expect(t.probes[p]!.observedOutageMs, p).toBeGreaterThan(1800);
      // one keep-alive connection all along: the session was never lost
      expect(eventsOf(r.events, p, 'session-lost'), p).toHaveLength(0);
    }
    expect(t.probes['tls-rt']!.outcome).toBe('failed');
    expect(t.probes['tls-rt']!.reason).toContain('no response within the request timeout of 1000 ms');
    expect(t.probes['tls-rc']!.outcome).toBe('recovered');
    // the response status is each sample's value
    const statuses = new Set(eventsOf(r.events, 'page', 'sample').map((e) => (e.type === 'sample' ? e.value : 0)));
    expect([...statuses]).toEqual([200]);
    // the secret header's value never reaches the event log
    expect(readFileSync(`${r.out}/events.jsonl`, 'utf8')).not.toContain('s3cr3t-token');
    // the requests reached the stock nginx (its own access log)
    expect(readFileSync(`${lab.state().dir}/nginx/access.log`, 'utf8')).toMatch(/"GET \/ HTTP\/1\.1" 200 /);
  });

  it('a wrong port, expectation, pin or trust is a preflight failure: exit 2, nothing injected', async () => {
    const n = nginx();
    const cases: Array<[Record<string, unknown>, RegExp, NodeJS.ProcessEnv?]> = [
      [{ name: 'closed', kind: 'http', url: n.url.replace(/\/$/, ':8099/') }, /ECONNREFUSED/],
      [{ name: 'status', kind: 'http', url: `${n.url}no-such-page`, expect: { status: 200 } }, /HTTP 404 Not Found, expected 200/],
      [{ name: 'body', kind: 'http', expect: { body: 'Welcome to Apache' } }, /does not match \/Welcome to Apache\//],
      [{ name: 'pin', kind: 'http', url: n.httpsUrl, tls: { pin: `sha256:${'AB:'.repeat(31)}AB` } }, /does not match the pinned one/],
      [{ name: 'untrusted', kind: 'http', url: n.httpsUrl }, /self[- ]signed certificate/],
      [{ name: 'nosecret', kind: 'http', secretHeaders: { Authorization: { env: 'BO_TEST_UNSET_TOKEN' } } }, /environment variable BO_TEST_UNSET_TOKEN is not set/],
    ];
    for (const [probe, reason, env] of cases) await expectPreflightFailure(LAB, `http preflight ${probe.name}`, probe, reason, env);
  });

  it('refuses a credential header given inline, naming the field', async () => {
    const suite = writeSuite({
      name: 'inline secret',
      target: 'lab',
      probes: [{ name: 'p', kind: 'http', headers: { Authorization: SECRET } }],
      injector: { kind: 'cable-pull' },
      blackouts: ['1s'],
    });
    const r = await runCli(['validate', suite]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/probes\[0\]\.headers\.Authorization: "Authorization" carries a credential: give it under secretHeaders/);
  });
});
