/**
 * The lab's services: every file in this folder that exports a LabService.
 * Adding a service is one file here, nothing else (its Debian packages are in
 * it too). They start in name order, except that a service starts after the
 * ones its `after` names.
 */
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { LabService } from '../service.ts';

function isLabService(x: unknown): x is LabService {
  const s = x as Partial<LabService> | null;
  return typeof s === 'object' && s !== null && typeof s.name === 'string' && Array.isArray(s.packages) && typeof s.start === 'function';
}

/** name order, each service after the ones it names (a cycle or an unknown name is a programming error) */
export function startOrder(found: readonly LabService[]): LabService[] {
  const byName = new Map<string, LabService>();
  for (const s of found) {
    if (byName.has(s.name)) throw new Error(`two lab services are named ${s.name}`);
    byName.set(s.name, s);
  }
  const out: LabService[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (s: LabService, path: string[]): void => {
    if (state.get(s.name) === 'done') return;
    if (state.get(s.name) === 'visiting') throw new Error(`lab services start after each other in a circle: ${[...path, s.name].join(' → ')}`);
    state.set(s.name, 'visiting');
    for (const n of s.after ?? []) {
      const dep = byName.get(n);
      if (!dep) throw new Error(`lab service ${s.name} starts after ${n}, which is no lab service`);
      visit(dep, [...path, s.name]);
    }
    state.set(s.name, 'done');
    out.push(s);
  };
  for (const s of [...found].sort((a, b) => a.name.localeCompare(b.name))) visit(s, []);
  return out;
}

const here = dirname(fileURLToPath(import.meta.url));
// sources (.ts, run through tsx) or the compiled package (.js); never this file or a declaration file
const files = readdirSync(here)
  .filter((f) => /\.(ts|js)$/.test(f) && !f.endsWith('.d.ts') && !/^index\.(ts|js)$/.test(f))
  .sort();
const modules = await Promise.all(files.map((f) => import(pathToFileURL(join(here, f)).href) as Promise<Record<string, unknown>>));

export const services: LabService[] = startOrder(modules.flatMap((m) => Object.values(m).filter(isLabService)));
