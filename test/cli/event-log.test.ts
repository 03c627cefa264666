import { appendFileSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EventLog, EventLogError, foldEvents, readEvents } from '../../src/core/event-log.ts';
import type { BlackoutEvent } from '../../src/core/events.ts';
import { runCli, tempDir } from '../helpers/lab.ts';

const start: BlackoutEvent = {
  type: 'run-start',
  t: 0,
  schema: 1,
  runId: 'r',
  suite: 's',
  config: {},
  wallMs: 1,
  host: 'h',
  target: { name: 'lab', address: '10.0.0.2' },
  injector: { kind: 'cable-pull' },
  probes: [],
  version: '0',
};

describe('event log', () => {
  it('appends every event as one JSON line and writes structural events at once', () => {
    const dir = tempDir();
    const path = join(dir, 'events.jsonl');
    const log = new EventLog(path);
    log.append(start);
    // run-start is written immediately, not after the flush interval: a kill -9 now keeps it
    expect(readFileSync(path, 'utf8').trim().split('\n')).toHaveLength(1);
    log.append({ type: 'sample', t: 1, probe: 'p', trial: 0, latencyMs: 0.2 });
    log.append({ type: 'cut', t: 2, before: 1.5, deadline: 100, trial: 0 });
    expect(readFileSync(path, 'utf8').trim().split('\n')).toHaveLength(3);
    log.close();
    expect(readEvents(path)).toMatchObject({ tornTail: null, incomplete: true, events: [{ type: 'run-start' }, { type: 'sample' }, { type: 'cut' }] });
  });

  it('tolerates and reports a torn last line, rejects a bad line in the middle with its number', async () => {
    const dir = tempDir();
    const path = join(dir, 'events.jsonl');
    writeFileSync(path, JSON.stringify(start) + '\n' + JSON.stringify({ type: 'trial-start', t: 1, trial: 0, requestedMs: 5 }) + '\n');
    appendFileSync(path, '{"type":"sample","t":3,"pro');
    const r = readEvents(path);
    expect(r.events).toHaveLength(2);
    expect(r.tornTail).toContain('"pro');
    const streamed: string[] = [];
    foldEvents(path, (e) => streamed.push(e.type));
    expect(streamed).toEqual(['run-start', 'trial-start']);

    writeFileSync(path, JSON.stringify(start) + '\n{"type":"nope","t":1}\n' + JSON.stringify({ type: 'trial-end', t: 2, trial: 0 }) + '\n');
    expect(() => readEvents(path)).toThrow(/line 2: type/);
    writeFileSync(path, JSON.stringify({ ...start, schema: 99 }) + '\n');
    expect(() => readEvents(path)).toThrow(EventLogError);
    // a sample's optional numbers are checked too: the icmp send step read as text would move an outage
    writeFileSync(
      path,
      JSON.stringify(start) +
        '\n' +
        JSON.stringify({ type: 'sample', t: 3, probe: 'ping', trial: 0, seq: 9, latencyMs: 0.2, sendStepMs: '1.0' }) +
        '\n' +
        JSON.stringify({ type: 'trial-end', t: 4, trial: 0 }) +
        '\n',
    );
    expect(() => readEvents(path)).toThrow(/line 2: sendStepMs/);
    writeFileSync(path, JSON.stringify(start) + '\n' + JSON.stringify({ type: 'sample', t: 3, probe: 'ping', trial: 0, seq: 9, latencyMs: 0.2, sendStepMs: 1.0 }) + '\n');
    expect(readEvents(path).events[1]).toMatchObject({ sendStepMs: 1 });
  });

  it('reads lines that straddle its read chunks whole, multi-byte characters and lines longer than a chunk included', () => {
    const dir = tempDir();
    const path = join(dir, 'events.jsonl');
    const lines = [JSON.stringify(start)];
    const messages: string[] = [];
    // 2-, 3- and 4-byte UTF-8 characters at every offset around the 1 MiB chunk boundaries, and one
    // message of 2.5 MiB (a line longer than two chunks)
    for (let i = 0, size = 0; size < 3.2 * 2 ** 20; i++) {
      messages.push(`${'x'.repeat(i % 7)}é—🔌 `.repeat(1 + ((i * 7919) % 5000)));
      size += messages[i]!.length;
    }
    messages.push('ü'.repeat(1.25 * 2 ** 20));
    for (const m of messages) lines.push(JSON.stringify({ type: 'probe-error', t: 1, probe: 'p', trial: 0, message: m, fatal: false }));
    writeFileSync(path, lines.join('\n') + '\n');
    const got: string[] = [];
    const r = foldEvents(path, (e) => e.type === 'probe-error' && got.push(e.message));
    expect(r).toMatchObject({ count: messages.length + 1, tornTail: null, tornLines: 0 });
    expect(got).toEqual(messages);
  });

  it('short writes: every byte reaches the file, every line stays whole', () => {
    const dir = tempDir();
    try {
      const path = join(dir, 'events.jsonl');
      let calls = 0;
      // write(2) taking at most 7 bytes at a time, as a full pipe or a signal can make it
      const log = new EventLog(path, { write: (fd, b, o, l) => (calls++, writeSync(fd, b, o, Math.min(l, 7))) });
      log.append(start);
      for (let i = 0; i < 50; i++) log.append({ type: 'sample', t: i + 1, probe: 'p', trial: 0, seq: i });
      log.append({ type: 'run-end', t: 99, exitCode: 0, reason: 'completed' });
      log.close();
      expect(calls).toBeGreaterThan(100);
      const r = readEvents(path);
      expect(r.tornLines).toBe(0);
      expect(r.events).toHaveLength(52);
      expect(r.events.filter((e) => e.type === 'sample').map((e) => (e.type === 'sample' ? e.seq : -1))).toEqual(Array.from({ length: 50 }, (_, i) => i));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a write that failed half-way tears one line: the next starts on a fresh line, and report skips and counts the torn one', async () => {
    const dir = tempDir();
    try {
      const path = join(dir, 'events.jsonl');
      // the disk fills mid-chunk: write(2) takes 12 bytes, the next call fails
      let fail: 'no' | 'short' | 'error' = 'no';
      const log = new EventLog(path, {
        write: (fd, b, o, l) => {
          if (fail === 'no') return writeSync(fd, b, o, l);
          if (fail === 'short') return ((fail = 'error'), writeSync(fd, b, o, Math.min(l, 12)));
          fail = 'no';
          throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
        },
      });
      log.append(start);
      log.append({ type: 'trial-start', t: 1, trial: 0, requestedMs: 5 });
      fail = 'short';
      expect(() => log.append({ type: 'cut', t: 2, before: 1.5, deadline: 100, trial: 0 })).toThrow(/ENOSPC/);
      log.append({ type: 'restore', t: 7, before: 6.5, trial: 0, reason: 'scheduled' });
      log.append({ type: 'trial-end', t: 8, trial: 0 });
      log.append({ type: 'run-end', t: 9, exitCode: 0, reason: 'completed' });
      log.close();
      const r = readEvents(path);
      expect(r.tornLines).toBe(1);
      expect(r.tornTail).toBeNull();
      expect(r.events.map((e) => e.type)).toEqual(['run-start', 'trial-start', 'restore', 'trial-end', 'run-end']);

      // a torn line in the middle of a log written by hand, too (an older writer, a copy cut short)
      const lines = readFileSync(path, 'utf8').split('\n');
      writeFileSync(path, [lines[0], '{"type":"sample","t":1.5,"pro', ...lines.slice(1)].join('\n'));
      const cli = await runCli(['report', dir]);
      expect(cli.code, cli.stderr).toBe(0);
      expect(cli.stderr).toMatch(/2 torn lines inside events\.jsonl .* were skipped/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
