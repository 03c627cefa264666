import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EventLog, readEvents, foldEvents, EventLogError } from '../../src/core/event-log.ts';
import type { BlackoutEvent } from '../../src/core/events.ts';
import { tempDir } from '../helpers/lab.ts';

const start: BlackoutEvent = {
  type: 'run-start', t: 0, schema: 1, runId: 'r', suite: 's', config: {}, wallMs: 1, host: 'h',
  target: { name: 'lab', address: '10.0.0.2' }, injector: { kind: 'cable-pull' }, probes: [], version: '0',
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
  });
});
