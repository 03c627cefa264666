/**
 * The web probe's journeys: what a user does on the site, written either with
 * Playwright's own API in the user's file, or as declarative steps in the
 * suite. The probe (web.ts) knows nothing of any particular site; it runs the
 * journey's `login` once per session and its `check` every interval.
 *
 * A journey module (TypeScript or JavaScript, loaded like a .ts suite) exports:
 *
 *   export async function login(page, secrets, ctx) { … }   // optional
 *   export async function check(page, ctx) { … }            // required
 *
 * `check` tells the probe what the user sees now, by what it returns:
 *   nothing, true, a number, { value?, latencyMs? }  the site works (a sample; a number is its value)
 *   false or { stale: "why" }      nothing new yet, no error shown (no sample: a long run of these is a stall)
 *   { lost: "the page's text" }    the site shows it lost its connection and is recovering by itself
 *   { failed: "the page's text" }  the user sees a final error (logged out, "please reload")
 * and a thrown error (a timeout, a failed page load, an expectation not met)
 * is an error the user saw. `ctx.state` is an object kept for one session
 * (one login), for what a check must remember (e.g. the last value seen).
 */
import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import type { Page } from 'playwright-core';
import { z } from 'zod';
import { importUserModule } from '../../core/runtime.ts';

/** what a journey's functions get besides the page */
export interface JourneyContext {
  /** the site's base URL (the probe's `url`, or the target's web service) */
  baseUrl: string;
  /** the user name (the probe's `user`, or the target's web service's) */
  user: string | undefined;
  /** the probe's `params`, as written in the suite */
  params: Readonly<Record<string, string | number | boolean>>;
  /** the probe's name */
  probe: string;
  /** kept for one session (one login): what a check must remember between calls */
  state: Record<string, unknown>;
  /** a note into the run's events (never put a secret in it) */
  note(message: string): void;
}

export type CheckResult = void | undefined | boolean | number | { value?: number; latencyMs?: number } | { stale: string } | { lost: string } | { failed: string };

export interface Journey {
  login?(page: Page, secrets: Readonly<Record<string, string>>, ctx: JourneyContext): Promise<void>;
  check(page: Page, ctx: JourneyContext): Promise<CheckResult>;
}

/** a check's verdict, as the probe uses it */
export type Verdict = { kind: 'ok'; value?: number; latencyMs?: number } | { kind: 'stale'; message: string } | { kind: 'lost'; message: string } | { kind: 'failed'; message: string };

export function verdictOf(r: CheckResult): Verdict {
  if (r === undefined || r === null || r === true) return { kind: 'ok' };
  if (r === false) return { kind: 'stale', message: 'nothing new' };
  if (typeof r === 'number') return Number.isFinite(r) ? { kind: 'ok', value: r } : { kind: 'ok' };
  if (typeof r === 'object') {
    if ('failed' in r) return { kind: 'failed', message: String(r.failed) };
    if ('lost' in r) return { kind: 'lost', message: String(r.lost) };
    if ('stale' in r) return { kind: 'stale', message: String(r.stale) };
    const o = r as { value?: unknown; latencyMs?: unknown };
    return {
      kind: 'ok',
      ...(typeof o.value === 'number' && Number.isFinite(o.value) ? { value: o.value } : {}),
      ...(typeof o.latencyMs === 'number' && Number.isFinite(o.latencyMs) ? { latencyMs: o.latencyMs } : {}),
    };
  }
  throw new Error(`the journey's check returned ${JSON.stringify(r)}: expected nothing, a boolean, a number or { value } / { stale } / { lost } / { failed }`);
}

/**
 * Failures that are the harness's own, not the application's: worth one more
 * try before they count, with the reason said. Chromium aborts whatever is in
 * flight whenever an address, route or link on the harness's machine changes
 * (net::ERR_NETWORK_CHANGED), whatever the target does. And a navigation can
 * race the automation: Chromium may swap the page's renderer under a reload
 * (an error page commits in a process of its own), and Playwright's command
 * then finds its page detached ("Not attached to an active page", seen once
 * in a reload through an 8 s pull) while the user would only have seen the
 * page load on. A second one in a row counts: a browser that is really gone
 * fails every check.
 */
export function harnessSideFailure(v: Verdict): string | null {
  if (v.kind !== 'failed' && v.kind !== 'lost') return null;
  if (v.message.includes('ERR_NETWORK_CHANGED')) return "the machine's network configuration changed under Chromium";
  if (/Not attached to an active page|Execution context was destroyed|frame was detached/i.test(v.message)) return 'the browser automation lost its page under a navigation';
  return null;
}

// ---- declarative steps ----

const selector = z.string().min(1).max(1000);
/** a secret's name in the probe's `secrets` (or `password`) */
const secretName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, "expected the name of one of the probe's secrets (password, or a key of `secrets`)");
/** "text" (a substring) or "/regex/flags" */
const textPattern = z.string().min(1).max(1000);

export const stepSchema = z.union([
  /** load a URL (absolute, or relative to the probe's url) */
  z.strictObject({ goto: z.string().min(1).max(2000).describe("load a URL (absolute, or relative to the probe's url)") }),
  /** reload the page the user is on */
  z.strictObject({ reload: z.literal(true).describe('reload the page the user is on') }),
  /** type into a field: a literal `value`, or a `secret` by name (never written in the suite) */
  z.union([
    z.strictObject({ fill: selector.describe('type into the field this selector finds'), value: z.string().max(10_000).describe('the text typed') }),
    z.strictObject({ fill: selector.describe('type into the field this selector finds'), secret: secretName.describe("the name of the secret typed (password, or a key of the probe's secrets)") }),
  ]),
  z.strictObject({ click: selector.describe('click what this selector finds') }),
  /** wait until the URL matches ("/regex/" or a glob such as "**\/app*") */
  z.strictObject({ waitForUrl: z.string().min(1).max(2000).describe('wait until the URL matches ("/regex/" or a glob such as "**/app*")') }),
  /** wait until the text (a substring, or "/regex/flags") is visible, in `in` (a selector; default the whole page) */
  z.strictObject({
    expectText: textPattern.describe('wait until this text (a substring, or "/regex/flags") is visible'),
    in: selector.optional().describe('where the text must be (a selector; default: the whole page)'),
  }),
]);
export type Step = z.infer<typeof stepSchema>;

export const declarativeSchema = z.strictObject({
  login: z.array(stepSchema).max(100).default([]).describe('the steps that log in, once per session'),
  check: z.array(stepSchema).min(1, 'expected at least one check step').max(100).describe('the steps of one check, repeated every interval'),
});
export type DeclarativeJourney = z.infer<typeof declarativeSchema>;

/** "/re/flags" → RegExp; anything else: the text itself */
export function pattern(text: string): string | RegExp {
  const m = /^\/(.+)\/([dgimsuy]*)$/s.exec(text);
  if (!m) return text;
  try {
    return new RegExp(m[1]!, m[2]!.replace('g', ''));
  } catch (e) {
    throw new Error(`${JSON.stringify(text)} is not a valid regular expression: ${(e as Error).message}`);
  }
}

async function pageText(page: Page, sel: string | undefined): Promise<string> {
  const text = await page
    .locator(sel ?? 'body')
    .first()
    .innerText({ timeout: 1000 })
    .catch(() => '');
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > 160 ? `${flat.slice(0, 160)}…` : flat;
}

/** Runs declarative steps on the page; throws an error naming the step that did not hold. */
export async function runSteps(page: Page, steps: Step[], part: 'login' | 'check', baseUrl: string, secrets: Readonly<Record<string, string>>, timeoutMs: number): Promise<void> {
  for (const [i, step] of steps.entries()) {
    const where = `${part}[${i}]`;
    try {
      if ('goto' in step) await page.goto(new URL(step.goto, baseUrl).href, { timeout: timeoutMs });
      else if ('reload' in step) await page.reload({ timeout: timeoutMs });
      else if ('fill' in step) {
        let value: string;
        if ('secret' in step) {
          const v = secrets[step.secret];
          if (v === undefined) throw new Error(`no secret named "${step.secret}" (the probe has: ${Object.keys(secrets).join(', ') || 'none'})`);
          value = v;
        } else value = step.value;
        await page.fill(step.fill, value, { timeout: timeoutMs });
      } else if ('click' in step) await page.click(step.click, { timeout: timeoutMs });
      else if ('waitForUrl' in step) await page.waitForURL(pattern(step.waitForUrl), { timeout: timeoutMs });
      else if ('expectText' in step) {
        const want = pattern(step.expectText);
        try {
          await page
            .locator(step.in ?? 'body')
            .filter({ hasText: want })
            .first()
            .waitFor({ state: 'visible', timeout: timeoutMs });
        } catch (e) {
          if (!/Timeout/i.test((e as Error).message)) throw e;
          const seen = await pageText(page, step.in);
          throw new Error(
            `expected ${want instanceof RegExp ? want : JSON.stringify(want)}${step.in ? ` in ${step.in}` : ''} within ${timeoutMs} ms; the page (${new URL(page.url()).pathname}) shows: ${JSON.stringify(seen)}`,
          );
        }
      }
    } catch (e) {
      throw new Error(`${where} (${describeStep(step)}): ${(e as Error).message.split('\n')[0]}`);
    }
  }
}

export function describeStep(step: Step): string {
  if ('goto' in step) return `goto ${step.goto}`;
  if ('reload' in step) return 'reload';
  if ('fill' in step) return `fill ${step.fill}${'secret' in step ? ` from secret ${step.secret}` : ''}`;
  if ('click' in step) return `click ${step.click}`;
  if ('waitForUrl' in step) return `waitForUrl ${step.waitForUrl}`;
  return `expectText ${step.expectText}${step.in ? ` in ${step.in}` : ''}`;
}

/** A declarative journey as a Journey. */
export function declarativeJourney(d: DeclarativeJourney, timeoutMs: number): Journey {
  return {
    async login(page, secrets, ctx) {
      await runSteps(page, d.login, 'login', ctx.baseUrl, secrets, timeoutMs);
    },
    async check(page, ctx) {
      await runSteps(page, d.check, 'check', ctx.baseUrl, {}, timeoutMs);
    },
  };
}

/**
 * Loads a journey module (absolute path: the suite loader resolves it against
 * the suite file's folder). TypeScript goes through tsx's loader, like a .ts suite
 * (core/runtime.ts importUserModule).
 */
export async function loadJourney(file: string): Promise<Journey> {
  // a suite validated without its file (programmatic use): relative to the working directory
  const path = isAbsolute(file) ? file : resolve(file);
  if (!existsSync(path)) throw new Error(`journey ${path}: file not found`);
  let mod: Record<string, unknown>;
  try {
    mod = await importUserModule(path, import.meta.url);
  } catch (e) {
    throw new Error(`journey ${path}: could not load: ${(e as Error).message.split('\n')[0]}`);
  }
  // a module outside an ESM package arrives through CJS interop: its exports under `default`
  const exports = typeof mod.check === 'function' ? mod : ((mod.default ?? {}) as Record<string, unknown>);
  if (typeof exports.check !== 'function') throw new Error(`journey ${path}: expected an exported function check(page, ctx)`);
  if (exports.login !== undefined && typeof exports.login !== 'function') throw new Error(`journey ${path}: login must be a function login(page, secrets, ctx)`);
  return { check: exports.check as Journey['check'], ...(exports.login ? { login: exports.login as Journey['login'] } : {}) };
}
