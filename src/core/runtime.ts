/**
 * How this copy of blackout runs: from its TypeScript sources (a checkout,
 * through tsx or vitest) or compiled (the published package's dist/*.js).
 * Child processes that run one of our own modules ask here for their argv,
 * so the same call works in both.
 */
import Module, { createRequire, register } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** true in the published package (this module is dist/core/runtime.js), false from the sources */
export const COMPILED: boolean = import.meta.url.endsWith('.js');

/**
 * The node arguments (after process.execPath) that run the module `spec`
 * (a `.ts` path relative to `base`, the caller's import.meta.url) as its own
 * process: the compiled `.js` sibling with plain node when `base` is
 * compiled, else the `.ts` source through tsx's loader, resolved to a file
 * here so the child's working directory does not matter.
 */
export function nodeArgv(spec: string, base: string): string[] {
  const url = new URL(spec, base);
  if (base.endsWith('.js')) return [fileURLToPath(url.href.replace(/\.(m?)ts$/, '.$1js'))];
  return ['--import', pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href, fileURLToPath(url)];
}

// `import … from 'blackout'` in a user's TypeScript file (a suite, a web
// journey) means this very copy of blackout, wherever the file is and however
// blackout was installed (installed globally, there is no node_modules/blackout
// beside the file). The bare name is mapped to our own entry once, before the
// first such import: for ESM by a resolve hook, and for a file tsx loads as
// CommonJS (a .ts file with no "type": "module" package.json above it) in
// require's resolution, as tsx itself extends it.
const SELF_HOOK = `let entry;
export function initialize(data) { entry = data.entry; }
export async function resolve(specifier, context, next) {
  return specifier === 'blackout' ? { url: entry, shortCircuit: true } : next(specifier, context);
}`;
let selfMapped = false;

function mapSelf(): void {
  if (selfMapped) return;
  selfMapped = true;
  const entry = new URL(COMPILED ? '../index.js' : '../index.ts', import.meta.url);
  register(`data:text/javascript,${encodeURIComponent(SELF_HOOK)}`, { data: { entry: entry.href } });
  const cjs = Module as unknown as { _resolveFilename: (request: string, ...rest: unknown[]) => string };
  const resolveFilename = cjs._resolveFilename;
  cjs._resolveFilename = function (this: unknown, request: string, ...rest: unknown[]): string {
    return request === 'blackout' ? fileURLToPath(entry) : resolveFilename.call(this, request, ...rest);
  };
}

/**
 * Imports a user's module: TypeScript through tsx (loaded only now, so a
 * start that needs none does not pay for it), as ESM whatever package.json
 * sits next to it, with `blackout` resolving to this copy.
 */
export async function importUserModule(path: string, parentUrl: string): Promise<Record<string, unknown>> {
  mapSelf();
  const href = pathToFileURL(path).href;
  if (!/\.[mc]?ts$/.test(path)) return (await import(href)) as Record<string, unknown>;
  const { tsImport } = await import('tsx/esm/api');
  return (await tsImport(href, parentUrl)) as Record<string, unknown>;
}
