/**
 * web: a logged-in browser session on the target's web app, driven by
 * playwright-core with Debian's Chromium (/usr/bin/chromium; never a
 * downloaded browser). The probe logs in through the form, keeps the live
 * page open and checks every interval that fresh server data arrived over the
 * page's websocket.
 *
 * What the user would see decides:
 *  - fresh data each interval → a sample (value = the server's sequence number);
 *  - the page's websocket dropped and the page is reconnecting by its own
 *    logic → session lost; live again with fresh data → reconnected (recovered);
 *  - the page gave up ("Please reload"), logged the user out, or landed on the
 *    login form, or a script error reached the page → failed, with the page's
 *    own text.
 * Screenshots: when the page first shows trouble (reconnecting, an error, logged
 * out) and at the first fresh data after it (`ctx.attach`, so they land in the
 * run folder and the report). A silent stall the page itself does not show
 * gets none.
 *
 * One Chromium per process, shared by every web probe (a fresh profile each
 * launch); each probe has its own browser context (own cookies).
 */
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { z } from 'zod';
import { duration, probeBase, secretRef } from '../core/schema-util.ts';
import { passwordRef, readSecret, scrub } from '../core/secrets.ts';
import { request, sessionFacts } from './shared/facts.ts';
import type { ProbeDefinition } from '../core/probe.ts';

const schema = z.strictObject({
  ...probeBase('web', { interval: 1000, tolerance: 1500 }),
  /** the web app's base URL (default: the lab's) */
  url: z.string().url().optional(),
  user: z.string().min(1).optional(),
  ...secretRef,
  /** the page's own policy (the lab app reads it from the query string) */
  staleAfter: duration({ min: 500 }).default(3000),
  giveUp: duration({ min: 0 }).default(30_000),
  /** page loads and the login must finish within this */
  navigationTimeout: duration({ min: 1000 }).default(15_000),
  browser: z.string().min(1).default('/usr/bin/chromium'),
});
export type WebConfig = z.infer<typeof schema>;

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-quic',
  '--no-first-run',
  '--disable-component-update',
  '--disable-sync',
];

let shared: { path: string; browser: Promise<Browser>; refs: number } | null = null;

function acquireBrowser(path: string): Promise<Browser> {
  if (!shared || shared.path !== path) {
    // playwright gives every launch a fresh temporary --user-data-dir of its own
    shared = { path, browser: chromium.launch({ executablePath: path, headless: true, args: CHROMIUM_ARGS, timeout: 30_000 }), refs: 0 };
    shared.browser.catch(() => (shared = null));
  }
  shared.refs++;
  return shared.browser;
}

async function releaseBrowser(): Promise<void> {
  if (!shared) return;
  if (--shared.refs > 0) return;
  const b = shared.browser;
  shared = null;
  await (await b.catch(() => null))?.close().catch(() => {});
}

interface PageState {
  state: string;
  seq: number | null;
  receivedAt: number | null;
  reconnects: number;
  message: string;
  path: string;
  reason: string;
  now: number;
}

const readState = (page: Page): Promise<PageState> =>
  page.evaluate(() => {
    const bo = (window as unknown as { __bo?: { state: string; seq: number | null; receivedAt: number | null; reconnects: number; message: string } }).__bo;
    return {
      state: bo?.state ?? 'none',
      seq: bo?.seq ?? null,
      receivedAt: bo?.receivedAt ?? null,
      reconnects: bo?.reconnects ?? 0,
      message: bo?.message ?? '',
      path: location.pathname,
      reason: document.getElementById('reason')?.textContent ?? '',
      now: Date.now(),
    };
  });

export const web: ProbeDefinition<WebConfig> = {
  kind: 'web',
  summary: 'logged-in Chromium session (playwright-core) on the web app; fresh websocket data every interval',
  schema,
  policy: (c) => ({
    client: 'Chromium (Debian) via playwright-core',
    pageStaleAfterMs: c.staleAfter,
    pageGivesUpAfterMs: c.giveUp,
    pageReconnect: 'backoff 0.5 s doubling to 5 s, 5 s connect timeout',
    serverHeartbeat: 'lab app: ping every 5 s, a socket that missed a pong is terminated',
    navigationTimeoutMs: c.navigationTimeout,
    reconnect: 'page',
  }),
  // the page treats a socket silent for staleAfter as dead and opens a new one (recovered, not survived)
  facts: (c) => sessionFacts(request(c.staleAfter, 'page staleness limit'), [`navigation timeout ${c.navigationTimeout} ms: applies to loading the page only`, `gives up after ${c.giveUp} ms without a working socket`], true),
  create(config, ctx) {
    // what the page or the browser says may echo the password (a login page repeating what was typed,
    // Playwright's call log): every message leaves through scrub
    const secrets: string[] = [];
    const emit: typeof ctx.emit = (e) => ctx.emit('message' in e && typeof e.message === 'string' ? { ...e, message: scrub(e.message, secrets) } : e);
    let context: BrowserContext | null = null;
    let acquired = false;
    let timer: NodeJS.Timeout | null = null;
    let running: Promise<void> = Promise.resolve();
    let stopped = false;

    return {
      async open() {
        const t = ctx.target.services.web;
        const base = config.url ?? t?.url;
        const user = config.user ?? t?.user;
        if (!base || !user) throw new Error(`${config.name}: no web app (the lab's web service or the probe's url and user)`);
        const password = readSecret(passwordRef(config.passwordEnv || config.passwordFile ? config : (t ?? {})), `${config.name}: web password`);
        secrets.push(password);
        acquired = true;
        const browser = await acquireBrowser(config.browser);
        context = await browser.newContext({ viewport: { width: 900, height: 500 } });
        context.setDefaultTimeout(config.navigationTimeout);
        const p = await context.newPage();
        const pageErrors: string[] = [];
        p.on('pageerror', (e) => pageErrors.push(e.message));
        p.on('crash', () => pageErrors.push('the page crashed'));
        const q = new URLSearchParams({ client: config.name, staleAfter: String(config.staleAfter), giveUp: String(config.giveUp) });
        const loginUrl = new URL(`login?${q}`, base.endsWith('/') ? base : `${base}/`).href;
        try {
          await p.goto(loginUrl, { timeout: config.navigationTimeout });
          await p.fill('#user', user);
          await p.fill('#password', password);
          await Promise.all([p.waitForURL(/\/app(\?|$)/, { timeout: config.navigationTimeout }), p.click('#login')]);
          await p.waitForFunction(() => (window as unknown as { __bo?: { state: string; seq: number | null } }).__bo?.seq != null, undefined, { timeout: config.navigationTimeout });
        } catch (e) {
          const where = await p.evaluate(() => `${location.pathname}: ${document.getElementById('reason')?.textContent ?? ''}`).catch(() => '');
          throw new Error(scrub(`${config.name}: login at ${loginUrl.split('?')[0]} failed: ${(e as Error).message.split('\n')[0]}${where ? ` (page ${where})` : ''}`, secrets));
        }
        emit({ type: 'session-open', reconnect: false, message: `logged in as ${user}` });

        let lastSeq: number | null = null;
        let lost = false;
        let terminal = false;
        let troubleShot = false;
        let recoveryShot = false;
        let inTrouble = false;
        let reportedErrors = 0;
        const shot = async (name: string) => {
          try {
            ctx.attach(name, await p.screenshot({ timeout: 5000 }), 'image/png');
          } catch {
            /* the page is gone: nothing to show */
          }
        };
        const check = async () => {
          if (stopped || terminal) return;
          let s: PageState;
          try {
            s = await readState(p);
          } catch (e) {
            // a navigation in progress (e.g. the page sending the user to the login form)
            if (!/context was destroyed|navigat/i.test((e as Error).message)) emit({ type: 'probe-error', message: (e as Error).message.split('\n')[0]!, fatal: false });
            return;
          }
          if (stopped) return;
          while (reportedErrors < pageErrors.length) emit({ type: 'probe-error', message: `script error on the page: ${pageErrors[reportedErrors++]}`, fatal: true });
          const bad = s.path !== '/app' || s.state === 'failed' || s.state === 'logged-out';
          if (bad) {
            terminal = true;
            if (!troubleShot) {
              troubleShot = true;
              await shot('first-failure.png');
            }
            const text = s.path !== '/app' ? `sent to ${s.path}: ${s.reason || 'logged out'}` : s.message;
            if (!lost) emit({ type: 'session-lost', message: text });
            else emit({ type: 'probe-error', message: text, fatal: true });
            return;
          }
          const fresh = s.seq !== null && s.seq !== lastSeq && s.state === 'live';
          if (fresh) {
            lastSeq = s.seq;
            if (lost) {
              lost = false;
              emit({ type: 'session-open', reconnect: true, message: `the page reconnected its websocket (reconnect #${s.reconnects})` });
            }
            emit({ type: 'sample', seq: s.seq!, value: s.seq!, latencyMs: s.receivedAt !== null ? Math.max(0, s.now - s.receivedAt) : undefined });
            if (inTrouble && !recoveryShot) {
              recoveryShot = true;
              inTrouble = false;
              await shot('after-recovery.png');
            }
            return;
          }
          if (s.state === 'reconnecting' && !lost) {
            lost = true;
            emit({ type: 'session-lost', message: `the page's websocket is down: ${s.message}` });
          }
          // trouble the user can see: the page is no longer live (reconnecting, an error, logged out)
          if (!inTrouble && (lost || s.state !== 'live')) {
            inTrouble = true;
            if (!troubleShot) {
              troubleShot = true;
              await shot('first-failure.png');
            }
          }
        };
        const tick = () => {
          if (stopped) return;
          running = check().finally(() => {
            if (!stopped) timer = setTimeout(tick, config.interval);
          });
        };
        tick();
      },
      async close() {
        stopped = true;
        if (timer) clearTimeout(timer);
        await running.catch(() => {});
        await context?.close().catch(() => {});
        if (acquired) await releaseBrowser();
      },
    };
  },
};
