/**
 * Every reporter is a pure function of the analysis (itself a pure function
 * of the events); `writeReports` is the only place that touches the disk, so
 * `blackout report DIR` rebuilds exactly what the run wrote.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { analyze, type Analysis } from '../analysis.ts';
import { readEvents } from '../event-log.ts';
import { htmlReport } from './html.ts';
import { jsonReport } from './json.ts';
import { junitReport } from './junit.ts';
import { markdownReport } from './markdown.ts';

export interface Reporter {
  file: string;
  render(a: Analysis): string;
}

export const reporters: Reporter[] = [
  { file: 'summary.json', render: jsonReport },
  { file: 'junit.xml', render: junitReport },
  { file: 'summary.md', render: markdownReport },
  { file: 'report.html', render: htmlReport },
];

export interface WrittenReports {
  analysis: Analysis;
  files: string[];
  tornTail: boolean;
}

export function writeReports(runDir: string): WrittenReports {
  const { events, tornTail } = readEvents(join(runDir, 'events.jsonl'));
  const analysis = analyze(events);
  const files = reporters.map((r) => {
    const path = join(runDir, r.file);
    writeFileSync(path, r.render(analysis));
    return path;
  });
  return { analysis, files, tornTail: tornTail !== null };
}
