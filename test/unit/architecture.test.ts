/**
 * The layers of src/ and what each may import (a DEPS list per folder, as
 * Playwright keeps one), no import cycles, and no core code that recognises a
 * plug-in by the spelling of its kind. docs/architecture.md explains the layers.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = resolve(import.meta.dirname, '../../src');

/** folder (under src/) → the folders its files may import from; a file path allows that one file */
const DEPS: Record<string, string[]> = {
  core: ['core'],
  transport: ['core', 'transport'],
  lab: ['core', 'transport', 'lab'],
  probes: ['core', 'transport', 'probes'],
  // lab injectors act on the lab; the quick-migration model sizes QEMU's save
  injectors: ['core', 'transport', 'injectors', 'lab', 'analysis/migration-model.ts'],
  analysis: ['core', 'analysis'],
  reporters: ['core', 'analysis', 'reporters'],
  run: ['core', 'transport', 'analysis', 'probes', 'injectors', 'lab', 'run', 'reporters'],
  // the results store: a sink of the event stream, and what the fleet reads back
  store: ['core', 'analysis', 'reporters', 'store'],
  // campaigns, workers, shards and merges: many runs
  fleet: ['core', 'transport', 'analysis', 'probes', 'injectors', 'lab', 'run', 'reporters', 'store', 'fleet'],
  cli: ['core', 'transport', 'analysis', 'probes', 'injectors', 'lab', 'run', 'reporters', 'store', 'fleet', 'cli'],
  // the package's entry (import { defineSuite } from 'blackout')
  'index.ts': ['run/suite.ts'],
};

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) return sourceFiles(p);
    return /\.(ts|mts|mjs)$/.test(n) && !n.endsWith('.d.ts') ? [p] : [];
  });
}

/** relative imports of a file: static (incl. `import type`), re-exports and dynamic import() */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specs = [...text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)(['"])(\.{1,2}\/[^'"]+)\1/gm)].map((m) => m[2]!);
  return specs.map((s) => resolve(dirname(file), s));
}

const files = sourceFiles(SRC);
const rel = (p: string) => relative(SRC, p);
const layerOf = (p: string) => rel(p).split('/')[0]!;
const graph = new Map(files.map((f) => [f, importsOf(f)]));

describe('architecture', () => {
  it('every folder of src/ is a known layer', () => {
    const layers = new Set(files.map(layerOf));
    for (const l of layers) expect(Object.keys(DEPS), `src/${l}/ has no DEPS entry`).toContain(l);
  });

  it('each layer imports only what its DEPS list allows', () => {
    const bad: string[] = [];
    for (const [file, deps] of graph) {
      const allowed = DEPS[layerOf(file)] ?? [];
      for (const dep of deps) {
        const r = rel(dep);
        if (r.startsWith('..')) continue; // package.json and the like
        if (!allowed.some((a) => r === a || r.startsWith(`${a}/`))) bad.push(`${rel(file)} → ${r}`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('has no import cycles', () => {
    // Tarjan's strongly connected components over every relative import
    let index = 0;
    const idx = new Map<string, number>();
    const low = new Map<string, number>();
    const stack: string[] = [];
    const on = new Set<string>();
    const cycles: string[][] = [];
    const visit = (v: string): void => {
      idx.set(v, index);
      low.set(v, index++);
      stack.push(v);
      on.add(v);
      for (const w of graph.get(v) ?? []) {
        if (!graph.has(w)) continue;
        if (!idx.has(w)) {
          visit(w);
          low.set(v, Math.min(low.get(v)!, low.get(w)!));
        } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
      }
      if (low.get(v) === idx.get(v)) {
        const scc: string[] = [];
        let w: string;
        do {
          w = stack.pop()!;
          on.delete(w);
          scc.push(rel(w));
        } while (w !== v);
        if (scc.length > 1 || (graph.get(v) ?? []).includes(v)) cycles.push(scc);
      }
    };
    for (const f of graph.keys()) if (!idx.has(f)) visit(f);
    expect(cycles).toEqual([]);
  });

  it('the cycle check finds a cycle when there is one (positive control)', () => {
    const g = new Map([
      ['a', ['b']],
      ['b', ['a']],
    ]);
    const seen = new Set<string>();
    const onPath = new Set<string>();
    let found = false;
    const dfs = (v: string) => {
      if (onPath.has(v)) return void (found = true);
      if (seen.has(v)) return;
      seen.add(v);
      onPath.add(v);
      for (const w of g.get(v) ?? []) dfs(w);
      onPath.delete(v);
    };
    dfs('a');
    expect(found).toBe(true);
  });

  it('no code outside a plug-in file tests a kind by its name', () => {
    const bad: string[] = [];
    for (const file of files) {
      const r = rel(file);
      if (r.startsWith('probes/') || r.startsWith('injectors/')) continue;
      readFileSync(file, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          if (/(?<!typeof )\bkind\s*[!=]==\s*['"`]|['"`]\s*[!=]==\s*[\w.]*\bkind\b|\bkind\b[\w.?]*\.(includes|startsWith|endsWith|match)\(|\.test\([^)]*\bkind\b/.test(line))
            bad.push(`${r}:${i + 1}: ${line.trim()}`);
        });
    }
    expect(bad).toEqual([]);
  });
});
