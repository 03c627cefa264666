/**
 * A web journey for the lab's web app (lab/web-server.mjs), written the way a
 * user writes one for their own site: Playwright's API on the app's own page.
 *
 *   probes:
 *     - name: web
 *       kind: web
 *       journey: ./journeys/lab-app.ts
 *       params: { staleAfter: 3s, giveUp: 30s }
 *
 * The app's live page keeps a websocket fed with fresh data every 250 ms and
 * reconnects it by its own logic; it exposes its state as `window.__bo`
 * (state, the last sequence number, the text it shows). Its policy comes from
 * the query string, so the journey passes the probe's params on:
 *   staleAfter  no data for this long → the page drops the socket and reconnects (default 3 s)
 *   giveUp      reconnecting for this long → the page shows "Please reload" and stops (default 30 s)
 */
import type { Page } from 'playwright-core';
import type { CheckResult, JourneyContext } from '../../src/probes/shared/web-journey.ts';

interface LabPageState {
  state: string;
  seq: number | null;
  receivedAt: number | null;
  reconnects: number;
  message: string;
  /** what started the last outage ("Reconnecting… (why)"), kept after the page reconnected */
  lastDrop: string;
  path: string;
  reason: string;
  now: number;
}

/** "3s", "500ms" or a number of ms */
function ms(v: string | number | boolean | undefined, fallback: number): number {
  if (v === undefined || typeof v === 'boolean') return fallback;
  if (typeof v === 'number') return v;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$/.exec(v);
  if (!m) throw new Error(`expected a duration like 500ms or 3s, got ${JSON.stringify(v)}`);
  return Number(m[1]) * (m[2] === 's' ? 1000 : m[2] === 'm' ? 60_000 : 1);
}

const readState = (page: Page): Promise<LabPageState> =>
  page.evaluate(() => {
    const bo = (window as unknown as { __bo?: { state: string; seq: number | null; receivedAt: number | null; reconnects: number; message: string; lastDrop?: string } }).__bo;
    return {
      state: bo?.state ?? 'none',
      seq: bo?.seq ?? null,
      receivedAt: bo?.receivedAt ?? null,
      reconnects: bo?.reconnects ?? 0,
      message: bo?.message ?? '',
      lastDrop: bo?.lastDrop ?? '',
      path: location.pathname,
      reason: document.getElementById('reason')?.textContent ?? '',
      now: Date.now(),
    };
  });

export async function login(page: Page, secrets: Readonly<Record<string, string>>, ctx: JourneyContext): Promise<void> {
  if (!ctx.user) throw new Error("the lab app needs a user (the probe's user, or the lab's web service)");
  const password = secrets.password;
  if (password === undefined) throw new Error("the lab app needs the password secret (passwordEnv / passwordFile, or the lab's web service)");
  const q = new URLSearchParams({ client: ctx.probe, staleAfter: String(ms(ctx.params.staleAfter, 3000)), giveUp: String(ms(ctx.params.giveUp, 30_000)) });
  const loginUrl = new URL(`login?${q}`, ctx.baseUrl).href;
  try {
    await page.goto(loginUrl);
    await page.fill('#user', ctx.user);
    await page.fill('#password', password);
    await Promise.all([page.waitForURL(/\/app(\?|$)/), page.click('#login')]);
    // logged in once the live page got its first data
    await page.waitForFunction(() => (window as unknown as { __bo?: { seq: number | null } }).__bo?.seq != null);
  } catch (e) {
    const where = await page.evaluate(() => `${location.pathname}: ${document.getElementById('reason')?.textContent ?? ''}`).catch(() => '');
    throw new Error(`login at ${loginUrl.split('?')[0]} failed: ${(e as Error).message.split('\n')[0]}${where ? ` (page ${where})` : ''}`);
  }
}

export async function check(page: Page, ctx: JourneyContext): Promise<CheckResult> {
  let s: LabPageState;
  try {
    s = await readState(page);
  } catch (e) {
    // a navigation in progress (the page sending the user to the login form): look again next time
    if (/context was destroyed|navigat/i.test((e as Error).message)) return { stale: 'the page is navigating' };
    throw e;
  }
  if (s.path !== '/app') return { failed: `sent to ${s.path}: ${s.reason || 'logged out'}` };
  if (s.state === 'failed' || s.state === 'logged-out') return { failed: s.message };
  // the page's own reconnect counter: a drop and reconnect that happened between two looks (a loaded
  // machine looks late) is still a lost session, not a stall
  const before = typeof ctx.state.reconnects === 'number' ? ctx.state.reconnects : s.reconnects;
  ctx.state.reconnects = s.reconnects;
  if (s.state === 'reconnecting') {
    ctx.state.sawDown = true;
    return { lost: `the page's websocket is down: ${s.message}` };
  }
  const missed = s.reconnects > before && ctx.state.sawDown !== true;
  ctx.state.sawDown = false;
  if (missed) return { lost: `the page's websocket is down: ${s.lastDrop} (back before this look)` };
  // fresh data: a sequence number not seen before, on a live page
  if (s.state === 'live' && s.seq !== null && s.seq !== ctx.state.lastSeq) {
    ctx.state.lastSeq = s.seq;
    return { value: s.seq, ...(s.receivedAt !== null ? { latencyMs: Math.max(0, s.now - s.receivedAt) } : {}) };
  }
  return { stale: `no fresh data (page ${s.state})` };
}
