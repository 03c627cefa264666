/**
 * manual: the seeds' original method, measured — a person pulls a real cable.
 *
 *   injector: { kind: manual, what: "the network cable of app01" }   # `what` is optional
 *
 * For each trial the terminal says exactly what to do ("Unplug the network
 * cable of app01 now, then press Enter"), then counts the seconds on screen
 * ("1… 2… 3…" up to the requested length) with the probes' live state
 * underneath, then says "Plug it back in now, then press Enter".
 *
 * The cut and restore instants are the key presses; where the suite has an icmp
 * probe, its last reply before the silence (+ one interval: the first lost
 * reply) and its first reply after it are recorded too, with their difference
 * to the key presses (a person presses Enter a moment after the cable is out).
 *
 * It needs a terminal (stdin and stdout a TTY: a local terminal, `ssh -t`,
 * tmux) and refuses to start without one. Ctrl-C during a blackout still asks
 * for the cable to be plugged back in; there is no watchdog: the person is the
 * restore (the cut event says so).
 */
import { z } from 'zod';
import { MigrationKindSchema } from '../core/events.ts';
import pc from 'picocolors';
import { duration } from '../core/schema-util.ts';
import type { BlackoutEvent } from '../core/events.ts';
import { LiveState } from '../core/live-state.ts';
import { sessionStateText } from '../core/format.ts';
import type { CutInstant, InjectorDefinition, Instant } from '../core/injector.ts';

const schema = z.strictObject({
  kind: z.literal('manual').describe('the injector kind'),
  what: z.string().min(1).max(200).optional().describe('what the person pulls, for the instructions (default: "the network cable of <target>")'),
  migration: MigrationKindSchema.default('none').describe('what the person does to the target: a live or quick migration the report judges as such, or neither (default)'),
  keyTimeout: duration({ min: 1000, max: 3_600_000 }).default(600_000).describe('how long to wait for a key press before giving up'),
  icmpWait: duration({ min: 0, max: 120_000 }).default(10_000).describe("how long after the restore key to wait for the icmp probe's first reply"),
});
export type ManualConfig = z.infer<typeof schema>;

/** The icmp view of a blackout: the gap in replies that spans the key-press window. */
export function icmpWindow(samples: number[], keyCut: number, keyRestore: number): { lastBefore: number; firstAfter: number; intervalMs: number } | null {
  if (samples.length < 3) return null;
  const gaps: Array<{ a: number; b: number }> = [];
  for (let i = 1; i < samples.length; i++) gaps.push({ a: samples[i - 1]!, b: samples[i]! });
  const steps = gaps.map((g) => g.b - g.a).sort((x, y) => x - y);
  const interval = steps[Math.floor(steps.length / 2)]!;
  // the largest gap that overlaps the window the person marked
  const candidates = gaps.filter((g) => g.b - g.a > Math.max(3 * interval, 100) && g.b >= keyCut && g.a <= keyRestore);
  if (!candidates.length) return null;
  const g = candidates.reduce((m, x) => (x.b - x.a > m.b - m.a ? x : m));
  return { lastBefore: g.a, firstAfter: g.b, intervalMs: interval };
}

export const manual: InjectorDefinition<ManualConfig> = {
  kind: 'manual',
  // it talks to the person at the terminal: instructions, the count, the probes' state
  ownsTerminal: true,
  summary: 'a person pulls a real cable: instructions, an on-screen count to N, instants from key presses and the icmp probe',
  schema,
  create(config, ctx) {
    const out = process.stdout;
    const what = config.what ?? `the network cable of ${ctx.target.name}${ctx.target.address && ctx.target.address !== ctx.target.name ? ` (${ctx.target.address})` : ''}`;
    // the probes' sessions as the event stream tells them (the same fold as the live view's)
    const live = new LiveState();
    const kinds = new Map<string, string>();
    const icmp = new Map<string, number[]>();
    let unsubscribe: (() => void) | null = null;
    let keyCut: { before: number; t: number } | null = null;
    let drawn = 0;
    let timer: NodeJS.Timeout | null = null;
    let countFrom = 0;
    let requested = 0;
    let phase: 'idle' | 'unplug' | 'counting' | 'plug' = 'idle';
    let rawOn = false;

    const onEvent = (e: BlackoutEvent) => {
      live.add(e);
      if (e.type === 'run-start') for (const p of e.probes) kinds.set(p.name, p.kind);
      if (!('probe' in e) || typeof e.probe !== 'string') return;
      if (e.type === 'sample') {
        if (kinds.get(e.probe) === 'icmp') {
          const list = icmp.get(e.probe) ?? [];
          list.push(e.t);
          if (list.length > 20_000) list.splice(0, list.length - 20_000);
          icmp.set(e.probe, list);
        }
      }
    };

    const clear = () => {
      if (drawn) out.write(`\x1b[${drawn}A\x1b[0J`);
      drawn = 0;
    };
    const draw = () => {
      clear();
      const now = ctx.clock.now();
      const lines: string[] = [];
      if (phase === 'unplug') lines.push(pc.bold(pc.yellow(`  ▶ Unplug ${what} now, then press Enter.`)) + pc.dim('  (Ctrl-C aborts)'));
      if (phase === 'counting' || phase === 'plug') {
        const secs = Math.floor((now - countFrom) / 1000);
        const n = Math.ceil(requested / 1000);
        const counted = Array.from({ length: phase === 'plug' ? n : Math.min(secs, n) }, (_, i) => `${i + 1}…`).join(' ');
        lines.push(pc.bold(pc.red(`  ✂ CABLE OUT  ${counted || '…'}`)) + pc.dim(`  (counting to ${n})`));
        if (phase === 'plug') lines.push(pc.bold(pc.green(`  ▶ Plug it back in now, then press Enter.`)));
      }
      for (const [name, s] of live.sessions) lines.push(`    ${name.padEnd(14)} ${pc.dim(s.kind.padEnd(9))} ${sessionStateText(s, now)}`);
      out.write(lines.join('\n') + '\n');
      drawn = lines.length;
    };
    const startDrawing = () => {
      if (!timer) timer = setInterval(draw, 250);
      draw();
    };
    const stopDrawing = () => {
      if (timer) clearInterval(timer);
      timer = null;
      draw();
      drawn = 0; // leave the last frame on screen
    };

    const raw = (on: boolean) => {
      if (process.stdin.isTTY && rawOn !== on) {
        process.stdin.setRawMode(on);
        rawOn = on;
      }
      if (on) process.stdin.resume();
      else process.stdin.pause();
    };
    /** resolves at Enter ('enter') or Ctrl-C ('abort'), or when `until` fires ('done') */
    const key = (until?: Promise<void>): Promise<'enter' | 'abort' | 'done'> =>
      new Promise((resolve, reject) => {
        raw(true);
        const timeout = setTimeout(() => finish(null, new Error(`nobody pressed Enter within ${config.keyTimeout} ms`)), config.keyTimeout);
        const onData = (d: Buffer) => {
          const s = d.toString('latin1');
          if (s.includes('\x03')) return finish('abort');
          if (s.includes('\r') || s.includes('\n')) finish('enter');
        };
        const finish = (v: 'enter' | 'abort' | 'done' | null, err?: Error) => {
          clearTimeout(timeout);
          process.stdin.off('data', onData);
          raw(false);
          if (err) reject(err);
          else resolve(v!);
        };
        process.stdin.on('data', onData);
        until?.then(() => finish('done'));
      });

    return {
      kind: 'manual',
      migration: config.migration,
      selfTimed: true,
      dryRunCapable: true,
      describe: () => ({ kind: 'manual', what, restore: 'by a person (no watchdog)', instants: 'key presses; icmp first lost / first regained reply when an icmp probe runs' }),
      async preflight() {
        if (ctx.dryRun) {
          ctx.dryRun.transcript(`[terminal] each trial: "Unplug ${what} now, then press Enter." → count 1… 2… to N → "Plug it back in now, then press Enter."`);
          return;
        }
        if (!process.stdin.isTTY || !process.stdout.isTTY) {
          throw new Error('the manual injector needs a terminal (stdin and stdout a TTY) to talk to the person pulling the cable: run blackout in a terminal, over `ssh -t`, or in tmux');
        }
        unsubscribe = ctx.subscribe?.(onEvent) ?? null;
      },
      async heal() {
        return [];
      },
      async cut(requestedMs): Promise<CutInstant> {
        requested = requestedMs;
        if (ctx.dryRun) {
          ctx.dryRun.transcript(`[terminal] "Unplug ${what} now, then press Enter."  (the Enter key is the cut instant)`);
          const t = ctx.clock.now();
          keyCut = { before: t, t };
          return { before: t, t, deadline: t + requestedMs, detail: { mechanism: 'a person' } };
        }
        out.write(pc.bold(`\n  A ${Math.round(requestedMs / 100) / 10} s blackout, by hand.\n`));
        phase = 'unplug';
        startDrawing();
        const k = await key();
        const t = ctx.clock.now();
        if (k === 'abort') {
          phase = 'idle';
          stopDrawing();
          process.kill(process.pid, 'SIGINT');
          throw new Error('aborted before the cable was pulled');
        }
        keyCut = { before: t, t };
        countFrom = t;
        phase = 'counting';
        // no watchdog can plug a cable back in: the "deadline" is when the person is asked to
        return { before: t, t, deadline: t + requestedMs, detail: { mechanism: 'a person pulls the cable', restore: 'by the person (no watchdog)', what } };
      },
      async restore(reason): Promise<Instant> {
        if (!keyCut) {
          const now = ctx.clock.now();
          return { before: now, t: now, detail: { nothingToRestore: true } };
        }
        const cutAt = keyCut.t;
        if (ctx.dryRun) {
          ctx.dryRun.transcript(`[terminal] count "1… 2… 3…" to ${Math.ceil(requested / 1000)} with the probes' state underneath`);
          ctx.dryRun.transcript(`[terminal] "Plug it back in now, then press Enter."  (the Enter key is the restore instant)`);
          keyCut = null;
          const t = ctx.clock.now();
          return { before: t, t };
        }
        // count to N (an early Enter means the cable went back early)
        let early = false;
        if (reason !== 'signal' && reason !== 'error') {
          const countDone = new Promise<void>((r) => setTimeout(r, Math.max(0, cutAt + requested - ctx.clock.now())));
          const k = await key(countDone);
          if (k === 'abort') process.kill(process.pid, 'SIGINT');
          early = k === 'enter';
        }
        let t: number;
        if (early) t = ctx.clock.now();
        else {
          phase = 'plug';
          draw();
          out.write('\x07'); // the bell: time is up
          await key();
          t = ctx.clock.now();
        }
        phase = 'idle';
        keyCut = null;
        // the icmp probes' view: wait (bounded) for the first reply after the silence
        const detail: Record<string, unknown> = { keyCutAt: cutAt, keyRestoredAt: t, early };
        const deadline = ctx.clock.now() + config.icmpWait;
        for (const [name, kind] of kinds) {
          if (kind !== 'icmp') continue;
          let w = icmpWindow(icmp.get(name) ?? [], cutAt, t);
          // the silence closes with the first regained reply (it may come before or after the key)
          while (!w && ctx.clock.now() < deadline) {
            await new Promise((res) => setTimeout(res, 50));
            w = icmpWindow(icmp.get(name) ?? [], cutAt, t);
          }
          if (!w) {
            detail[`icmp:${name}`] = { note: 'the icmp probe saw no silence around the key presses' };
            continue;
          }
          const icmpCutAt = w.lastBefore + w.intervalMs; // the first reply that did not come
          detail[`icmp:${name}`] = {
            firstLostAt: icmpCutAt,
            firstRegainedAt: w.firstAfter,
            outageMs: w.firstAfter - icmpCutAt,
            cutKeyMinusIcmpMs: cutAt - icmpCutAt,
            restoreKeyMinusIcmpMs: t - w.firstAfter,
          };
        }
        stopDrawing();
        const summary = Object.entries(detail)
          .filter(([k]) => k.startsWith('icmp:'))
          .map(([k, v]) => {
            const x = v as { outageMs?: number; cutKeyMinusIcmpMs?: number; restoreKeyMinusIcmpMs?: number; note?: string };
            return x.note
              ? `${k.slice(5)}: ${x.note}`
              : `${k.slice(5)}: outage ${x.outageMs!.toFixed(0)} ms; Enter came ${x.cutKeyMinusIcmpMs!.toFixed(0)} ms after the first lost reply and ${x.restoreKeyMinusIcmpMs!.toFixed(0)} ms after the first regained one`;
          });
        out.write(pc.dim(`  key presses: ${((t - cutAt) / 1000).toFixed(2)} s apart${summary.length ? `; ${summary.join('; ')}` : ''}\n`));
        ctx.info({ manual: detail });
        return { before: t, t, detail };
      },
      async dispose() {
        if (timer) clearInterval(timer);
        unsubscribe?.();
        raw(false);
      },
    };
  },
};
