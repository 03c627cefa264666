/**
 * web: a logged-in browser session on any site, driven by playwright-core
 * with Debian's Chromium (/usr/bin/chromium; never a downloaded browser). The
 * site is described by a journey (web-journey.ts): the user's own module
 * written with Playwright's API (`journey: ./journeys/shop.ts`, relative to the
 * suite file) or declarative steps in the suite (goto, fill from a secret,
 * click, expect text). The probe runs the journey's login once per session
 * and its check every interval, in one browser context (own cookies).
 *
 * What the user would see decides:
 *  - the check says the site works → a sample;
 *  - nothing new, no error shown → no sample (a long run of these is a stall);
 *  - the site shows it lost its connection and recovers by itself → session
 *    lost; working again → reconnected (recovered);
 *  - a final error on the page, a check that throws (a page load that timed
 *    out, an expected text that never came), or a script error on the page
 *    (`scriptErrors: fail`) → failed, with the page's own words; with a
 *    `reconnect` policy the user starts over: a fresh context, login again.
 * Screenshots: when the page first shows trouble and at the first working
 * check after it (`ctx.attach`, into the run folder and the report). A silent
 * stall the page itself does not show gets none.
 *
 * One Chromium per process, shared by every web probe: headless, no sandbox,
 * no GPU, no background networking, a fresh profile each launch that
 * playwright removes when the browser closes.
 */
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { z } from 'zod';
import { sleep } from '../core/clock.ts';
import { duration, probeBase, secretRef } from '../core/schema-util.ts';
import { passwordRef, readSecret, scrub } from '../core/secrets.ts';
import { reconnectSchema } from './shared/session-loop.ts';
import type { ProbeDefinition } from '../core/probe.ts';
import { request, sessionFacts } from './shared/facts.ts';
import { declarativeJourney, declarativeSchema, harnessSideFailure, loadJourney, verdictOf, type Journey, type JourneyContext, type Verdict } from './shared/web-journey.ts';

const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected an environment variable name');
/** a secret is never inline: an environment variable or a file */
const secretSource = z.union([
  z.strictObject({ env: envName.describe('the environment variable holding the secret') }),
  z.strictObject({ file: z.string().min(1).describe('a file holding the secret') }),
]);

const schema = z.strictObject({
  ...probeBase('web', { interval: 1000, tolerance: 1500 }),
  url: z.string().url().optional().describe("the site's base URL (default: the target's web service)"),
  user: z.string().min(1).max(256).optional().describe("the user name the journey logs in with (default: the target's web service's)"),
  /** the `password` secret (default: the target's web service's) */
  ...secretRef,
  secrets: z
    .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, 'expected a secret name (letters, digits, _)'), secretSource)
    .default({})
    .describe('more secrets for the journey, by name: { apiKey: { env: SHOP_KEY } }'),
  journey: z.union([z.string().min(1).max(4096), declarativeSchema]).describe('a module exporting login(page, secrets, ctx) and check(page, ctx), relative to the suite file; or declarative steps'),
  params: z
    .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, 'expected a parameter name'), z.union([z.string().max(1000), z.number(), z.boolean()]))
    .default({})
    .describe('free parameters handed to a journey module (ctx.params)'),
  navigationTimeout: duration({ min: 500, max: 600_000 }).default(15_000).describe('the login (every page load and action in it) must finish within this'),
  checkTimeout: duration({ min: 100, max: 600_000 }).default(15_000).describe('each page load and action of a check must finish within this (the page-load timeout)'),
  reconnect: reconnectSchema.describe('after a failed check: none (the session is over), or log in again in a fresh browser context'),
  scriptErrors: z.enum(['fail', 'record']).default('fail').describe('an uncaught script error on the page: fail the session, or only record it'),
  browser: z.string().min(1).default('/usr/bin/chromium').describe('the Chromium (or Chrome) executable'),
});
export type WebConfig = z.infer<typeof schema>;

export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'];

let shared: { path: string; browser: Promise<Browser>; refs: number } | null = null;

function acquireBrowser(path: string): Promise<Browser> {
  if (!shared || shared.path !== path) {
    // playwright gives every launch a fresh temporary --user-data-dir of its own and removes it at close;
    // loaded here, not at the top: it is the heaviest module of every start of the command (~0.4 s)
    const browser = import('playwright-core').then(({ chromium }) => chromium.launch({ executablePath: path, headless: true, args: CHROMIUM_ARGS, timeout: 30_000 }));
    shared = { path, browser, refs: 0 };
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

/** a declarative check that loads a page: its page-load timeout is a request deadline */
const loadsPages = (c: WebConfig) => typeof c.journey !== 'string' && c.journey.check.some((s) => 'goto' in s || 'reload' in s);

/** rejects after `ms` with `what` (a journey module's own code may wait for ever) */
function bounded<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms)))]).finally(() => clearTimeout(timer));
}

export const web: ProbeDefinition<WebConfig> = {
  kind: 'web',
  summary: 'a logged-in Chromium session (playwright-core) following a journey: your Playwright module or declarative steps; a check every interval',
  packages: ['chromium'],
  schema,
  fileFields: ['journey'],
  policy: (c) => ({
    client: 'Chromium (Debian) via playwright-core',
    journey: typeof c.journey === 'string' ? c.journey : `declarative: ${c.journey.login.length} login step(s), ${c.journey.check.length} check step(s)`,
    ...(Object.keys(c.params).length ? { journeyParams: c.params } : {}),
    navigationTimeoutMs: c.navigationTimeout,
    // a declarative check that loads a page gives up on it after checkTimeout: a request deadline
    ...(loadsPages(c) ? { pageLoadTimeoutMs: c.checkTimeout } : { actionTimeoutMs: c.checkTimeout }),
    reconnect: c.reconnect.mode === 'none' ? 'none' : `${c.reconnect.mode}: log in again in a fresh browser context`,
    scriptErrors: c.scriptErrors,
  }),
  // every page load and action of a check must finish within checkTimeout: the browser gives up on an answer then
  facts: (c) =>
    sessionFacts(
      request(c.checkTimeout, loadsPages(c) ? 'page-load timeout' : 'check action timeout'),
      [`navigation timeout ${c.navigationTimeout} ms: applies to logging in only`],
      c.reconnect.mode !== 'none',
    ),
  create(config, ctx) {
    let journey: Journey | null = null;
    let acquired = false;
    let browser: Browser | null = null;
    let context: BrowserContext | null = null;
    let page: Page | null = null;
    let jctx: JourneyContext | null = null;
    let secrets: Record<string, string> = {};
    let baseUrl = '';
    let user: string | undefined;
    let loop: Promise<void> = Promise.resolve();
    let stopped = false;
    let troubleShot = false;
    let recoveryShot = false;
    let inTrouble = false;
    const pageErrors: string[] = [];
    let reportedErrors = 0;

    const clean = (text: string) => scrub(text, Object.values(secrets));
    const firstLine = (e: unknown) => clean(((e as Error)?.message ?? String(e)).split('\n')[0]!);

    const shot = async (name: string) => {
      try {
        if (page) ctx.attach(name, await page.screenshot({ timeout: 5000 }), 'image/png');
      } catch {
        /* the page is gone: nothing to show */
      }
    };

    async function endSession(): Promise<void> {
      const c = context;
      context = null;
      page = null;
      await c?.close().catch(() => {});
    }

    /** a fresh browser context, the journey's login, then checks until the first one that works */
    async function startSession(): Promise<Extract<Verdict, { kind: 'ok' }>> {
      context = await browser!.newContext({ viewport: { width: 900, height: 500 } });
      context.setDefaultTimeout(config.navigationTimeout);
      context.setDefaultNavigationTimeout(config.navigationTimeout);
      const p = (page = await context.newPage());
      p.on('pageerror', (e) => pageErrors.push(clean(e.message)));
      p.on('crash', () => pageErrors.push('the page crashed'));
      jctx = {
        baseUrl,
        user,
        params: config.params,
        probe: config.name,
        state: {},
        note: (message) => ctx.emit({ type: 'probe-note', message: clean(message) }),
      };
      const deadline = ctx.clock.now() + config.navigationTimeout;
      try {
        if (journey!.login) await bounded(journey!.login(p, secrets, jctx), config.navigationTimeout + 5000, "the journey's login");
        context.setDefaultTimeout(config.checkTimeout);
        context.setDefaultNavigationTimeout(config.checkTimeout);
        // the site must be seen working once before the session counts as open
        for (;;) {
          const v = await runCheck();
          if (v.kind === 'ok') return v;
          if (v.kind !== 'stale') throw new Error(v.message);
          if (ctx.clock.now() > deadline) throw new Error(`the first check saw nothing new within ${config.navigationTimeout} ms (${v.message})`);
          await sleep(Math.min(250, config.interval), ctx.signal);
        }
      } catch (e) {
        await endSession();
        throw new Error(`${config.name}: ${firstLine(e)}`);
      }
    }

    async function runCheck(): Promise<Verdict> {
      return verdictOf(await bounded(journey!.check(page!, jctx!), config.checkTimeout + 5000, "the journey's check"));
    }

    async function trouble(): Promise<void> {
      if (inTrouble) return;
      inTrouble = true;
      if (!troubleShot) {
        troubleShot = true;
        await shot('first-failure.png');
      }
    }

    /** the check loop of one session and, by the reconnect policy, of the ones after it */
    async function run(): Promise<void> {
      let lost = false;
      // one harness-side failure in a row (harnessSideFailure) is checked again at the next tick, not taken
      // for the application's failure; a second one in a row is
      let retriedHarnessSide = false;
      let next = ctx.clock.now() + config.interval;
      while (!stopped && !ctx.signal.aborted) {
        await sleep(Math.max(0, next - ctx.clock.now()), ctx.signal).catch(() => {});
        if (stopped || ctx.signal.aborted) return;
        const sent = ctx.clock.now();
        const lateMs = Math.round((sent - next) * 100) / 100;
        next += config.interval;
        if (next < sent) next = sent; // late: go at once, skip the missed ticks
        let v: Verdict;
        try {
          v = await runCheck();
        } catch (e) {
          v = { kind: 'failed', message: firstLine(e) };
        }
        if (stopped || ctx.signal.aborted) return;
        const harnessSide = harnessSideFailure(v);
        if (harnessSide && 'message' in v && !retriedHarnessSide) {
          retriedHarnessSide = true;
          ctx.emit({ type: 'probe-error', message: `${clean(v.message)} (${harnessSide}; checked again)`, fatal: false });
          continue;
        }
        retriedHarnessSide = false;
        if (config.scriptErrors === 'fail') {
          while (reportedErrors < pageErrors.length) ctx.emit({ type: 'probe-error', message: `script error on the page: ${pageErrors[reportedErrors++]}`, fatal: true });
        } else if (reportedErrors < pageErrors.length) {
          while (reportedErrors < pageErrors.length) ctx.emit({ type: 'probe-note', message: `script error on the page (recorded): ${pageErrors[reportedErrors++]}` });
        }
        if (v.kind === 'ok') {
          if (lost) {
            lost = false;
            ctx.emit({ type: 'session-open', reconnect: true, message: 'the site works again in the same browser session' });
          }
          ctx.emit({ type: 'sample', latencyMs: v.latencyMs ?? ctx.clock.now() - sent, lateMs, ...(v.value !== undefined ? { value: v.value } : {}) });
          if (inTrouble && !recoveryShot) {
            recoveryShot = true;
            inTrouble = false;
            await shot('after-recovery.png');
          }
          continue;
        }
        if (v.kind === 'stale') continue;
        if (v.kind === 'lost') {
          if (!lost) {
            lost = true;
            ctx.emit({ type: 'session-lost', message: clean(v.message) });
          }
          await trouble();
          continue;
        }
        // failed: the user saw a final error
        await trouble();
        if (!lost) ctx.emit({ type: 'session-lost', message: clean(v.message) });
        else ctx.emit({ type: 'probe-error', message: clean(v.message), fatal: true });
        lost = false;
        if (config.reconnect.mode === 'none') return;
        // the user starts over: a fresh context, login again, by the reconnect policy's backoff
        await endSession();
        let delay = config.reconnect.mode === 'immediate' ? 0 : config.reconnect.initial;
        for (;;) {
          if (delay > 0) await sleep(delay, ctx.signal).catch(() => {});
          if (stopped) return;
          try {
            const first = await startSession();
            ctx.emit({ type: 'session-open', reconnect: true, message: `logged in again${user ? ` as ${user}` : ''}` });
            ctx.emit({ type: 'sample', ...(first.value !== undefined ? { value: first.value } : {}), ...(first.latencyMs !== undefined ? { latencyMs: first.latencyMs } : {}) });
            break;
          } catch (e) {
            if (stopped) return;
            ctx.emit({ type: 'probe-error', message: firstLine(e), fatal: false });
            delay = config.reconnect.mode === 'immediate' ? Math.min(Math.max(delay * 2, 100), 1000) : Math.min(Math.max(delay, 1) * 2, config.reconnect.max);
          }
        }
        next = ctx.clock.now() + config.interval;
      }
    }

    return {
      async open() {
        const t = ctx.target.services.web;
        const base = config.url ?? t?.url;
        if (!base) throw new Error(`${config.name}: no site: set the probe's url (or use a target with a web service)`);
        baseUrl = base.endsWith('/') || new URL(base).pathname !== '/' ? base : `${base}/`;
        user = config.user ?? t?.user;
        if (config.passwordEnv || config.passwordFile || t?.passwordFile || t?.passwordEnv) {
          secrets.password = readSecret(passwordRef(config.passwordEnv || config.passwordFile ? config : (t ?? {})), `${config.name}: web password`);
        }
        for (const [name, src] of Object.entries(config.secrets)) {
          secrets[name] = readSecret(src, `${config.name}: secret ${name}`);
        }
        if (typeof config.journey === 'string') {
          journey = await loadJourney(config.journey).catch((e: Error) => Promise.reject(new Error(`${config.name}: ${e.message}`)));
        } else {
          // the login's steps wait as long as the login may take, a check's as long as a check may
          journey = { login: declarativeJourney(config.journey, config.navigationTimeout).login!, check: declarativeJourney(config.journey, config.checkTimeout).check };
        }
        acquired = true;
        browser = await acquireBrowser(config.browser);
        const first = await startSession();
        ctx.emit({ type: 'session-open', reconnect: false, message: user ? `logged in as ${user}` : "the journey's login is done" });
        ctx.emit({ type: 'sample', ...(first.value !== undefined ? { value: first.value } : {}), ...(first.latencyMs !== undefined ? { latencyMs: first.latencyMs } : {}) });
        loop = run().catch((e) => {
          if (!stopped) ctx.emit({ type: 'probe-error', message: firstLine(e), fatal: true });
        });
      },
      async close() {
        stopped = true;
        // closing the context ends a check in progress (it rejects at once)
        await endSession();
        await Promise.race([loop, sleep(2000)]);
        if (acquired) await releaseBrowser();
        secrets = {};
      },
    };
  },
};
