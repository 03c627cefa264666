/**
 * `blackout merge DIR… --out OUT`: one run folder from the run folders of the
 * shards of one sweep (as Playwright's merge-reports does for its blobs), so
 * every reporter renders the merged run exactly as it would an unsharded one.
 *
 * Each shard's events keep their trial numbers (a shard runs planned trials
 * under their planned numbers, see shard.ts); their times move onto one clock
 * (the earliest shard's origin, by wall time). One run-start (the first
 * shard's, with the list of merged runs) and one run-end frame them.
 * Attachments are copied under shards/<n>/ and their paths rewritten.
 */
import { closeSync, cpSync, existsSync, mkdirSync, openSync, readSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { foldEvents, EventLogError } from '../core/event-log.ts';
import type { BlackoutEvent, EventOf } from '../core/events.ts';
import { isDeepStrictEqual } from 'node:util';
import { EXIT, worstExit } from '../run/exit-codes.ts';

export class MergeError extends Error {}

interface ShardRun {
  dir: string;
  start: EventOf<'run-start'>;
}

/** The first line of a log (its run-start), without reading the rest. */
function readRunStart(dir: string): EventOf<'run-start'> {
  const path = join(dir, 'events.jsonl');
  if (!existsSync(path)) throw new MergeError(`${path}: not found`);
  let start: EventOf<'run-start'> | null = null;
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(1 << 16);
    let text = '';
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      text += buf.subarray(0, n).toString('utf8');
      if (text.includes('\n')) break;
    }
    const line = text.split('\n')[0] ?? '';
    try {
      const e = JSON.parse(line) as BlackoutEvent;
      if (e.type === 'run-start') start = e;
    } catch {
      /* reported below */
    }
  } finally {
    closeSync(fd);
  }
  if (!start) throw new MergeError(`${path}: the first event is not run-start`);
  return start;
}

export interface MergeResult {
  outDir: string;
  runs: number;
  trials: number;
  missingShards: number[];
}

export function mergeRunDirs(dirs: string[], outDir: string): MergeResult {
  if (dirs.length === 0) throw new MergeError('merge: give at least one run folder');
  const out = resolve(outDir);
  if (existsSync(join(out, 'events.jsonl'))) throw new MergeError(`--out ${out}: that folder already holds a run (events.jsonl); choose another folder`);
  const runs: ShardRun[] = dirs.map((d) => ({ dir: resolve(d), start: readRunStart(d) }));
  const first = runs[0]!.start;
  for (const r of runs) {
    if (r.start.suite !== first.suite) throw new MergeError(`${r.dir}: suite "${r.start.suite}" is not "${first.suite}" (merge the shards of one suite)`);
    if (!isDeepStrictEqual(r.start.config, first.config)) throw new MergeError(`${r.dir}: its suite configuration differs from ${runs[0]!.dir}'s (merge the shards of one suite file)`);
    if ((r.start.shard?.total ?? null) !== (first.shard?.total ?? null))
      throw new MergeError(`${r.dir}: shard count ${r.start.shard?.total ?? 'none'} differs from ${runs[0]!.dir}'s ${first.shard?.total ?? 'none'}`);
  }
  const seenShard = new Map<number, string>();
  for (const r of runs) {
    if (!r.start.shard) continue;
    const prev = seenShard.get(r.start.shard.index);
    if (prev) throw new MergeError(`${r.dir}: shard ${r.start.shard.index}/${r.start.shard.total} is also ${prev}`);
    seenShard.set(r.start.shard.index, r.dir);
  }
  const total = first.shard?.total ?? 0;
  const missingShards = Array.from({ length: total }, (_, i) => i + 1).filter((i) => !seenShard.has(i));
  runs.sort((a, b) => (a.start.shard?.index ?? 0) - (b.start.shard?.index ?? 0) || a.start.wallMs - b.start.wallMs);
  const origin = Math.min(...runs.map((r) => r.start.wallMs));

  mkdirSync(out, { recursive: true });
  const fd = openSync(join(out, 'events.jsonl'), 'wx');
  let buffer: string[] = [];
  let bytes = 0;
  const write = (e: BlackoutEvent) => {
    const line = JSON.stringify(e);
    buffer.push(line);
    bytes += line.length;
    if (bytes > 1 << 20) flush();
  };
  const flush = () => {
    if (buffer.length) writeSync(fd, buffer.join('\n') + '\n');
    buffer = [];
    bytes = 0;
  };
  const trialOwner = new Map<number, string>();
  let endT = 0;
  const ends: Array<EventOf<'run-end'>> = [];
  try {
    const { shard: _shard, ...head } = first;
    write({
      ...head,
      t: 0,
      runId: `merged-${first.runId}`,
      wallMs: origin,
      host: [...new Set(runs.map((r) => r.start.host))].join(', '),
      merged: runs.map((r) => ({ runId: r.start.runId, host: r.start.host, ...(r.start.shard ? { shard: r.start.shard } : {}) })),
    });
    for (const [n, r] of runs.entries()) {
      const shift = r.start.wallMs - origin;
      const attachDir = `shards/${r.start.shard?.index ?? n + 1}`;
      if (existsSync(join(r.dir, 'attachments'))) cpSync(join(r.dir, 'attachments'), join(out, attachDir, 'attachments'), { recursive: true });
      let lastEnd: EventOf<'run-end'> | null = null;
      try {
        foldEvents(join(r.dir, 'events.jsonl'), (e) => {
          if (e.type === 'run-start') return;
          const moved = { ...e, t: e.t + shift } as BlackoutEvent;
          if ('before' in moved && typeof moved.before === 'number') moved.before += shift;
          if (moved.type === 'cut') moved.deadline += shift;
          if (moved.type === 'run-end') {
            lastEnd = moved;
            return;
          }
          if (moved.type === 'trial-start') {
            const owner = trialOwner.get(moved.trial);
            if (owner !== undefined && owner !== r.dir) throw new MergeError(`trial ${moved.trial} is in both ${owner} and ${r.dir}: these are not shards of one sweep`);
            trialOwner.set(moved.trial, r.dir);
          }
          if (moved.type === 'attachment') moved.path = `${attachDir}/${moved.path}`;
          endT = Math.max(endT, moved.t);
          write(moved);
        });
      } catch (e) {
        if (e instanceof EventLogError) throw new MergeError(`${r.dir}: ${e.message}`);
        throw e;
      }
      if (lastEnd) ends.push(lastEnd);
    }
    const codes = ends.map((e) => e.exitCode);
    const incomplete = runs.length - ends.length;
    // a shard that did not finish counts as interrupted: the merged run is incomplete
    const exitCode = worstExit(incomplete ? [...codes, EXIT.interrupted] : codes);
    const reasons = [
      `merged ${runs.length} run(s)${total ? ` of ${total} shard(s)` : ''}`,
      ...(missingShards.length ? [`shard(s) ${missingShards.join(', ')} missing`] : []),
      ...(incomplete ? [`${incomplete} run(s) did not finish`] : []),
      ...[...new Set(ends.filter((e) => e.exitCode !== 0).map((e) => e.reason))],
    ];
    write({ type: 'run-end', t: endT, exitCode, reason: reasons.join('; ') });
    flush();
  } finally {
    closeSync(fd);
  }
  return { outDir: out, runs: runs.length, trials: trialOwner.size, missingShards };
}
