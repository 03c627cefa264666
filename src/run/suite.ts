/**
 * Suite files: YAML (or TypeScript with `defineSuite`), validated strictly.
 * Every error names the field and what was expected; nothing is run until the
 * whole suite is valid.
 */
import { readFileSync, existsSync } from 'node:fs';
import { resolve, extname, dirname, isAbsolute } from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { z } from 'zod';
import { duration, secretRef } from '../core/schema-util.ts';
import { importUserModule } from '../core/runtime.ts';
import { probes, probeDefinition } from '../probes/index.ts';
import { injectors, injectorDefinition } from '../injectors/index.ts';
import type { ProbeConfigBase } from '../core/probe.ts';
import type { Sweep } from '../analysis/search.ts';
import { migrationSchema } from '../analysis/migration-model.ts';

const hostname = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$|^\[?[0-9A-Fa-f:.]+\]?$/, 'expected a host name or an IP address');

const realTarget = z.strictObject({
  host: hostname.describe("the target's address (host name or IP address)"),
  echo: z
    .strictObject({ port: z.number().int().min(1).max(65535).describe("the port of the target's echo service") })
    .optional()
    .describe('an echo service on the target (for tcp probes in echo mode)'),
  ssh: z
    .strictObject({
      user: z
        .string()
        .regex(/^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/, 'expected a user name')
        .describe('the SSH user'),
      port: z.number().int().min(1).max(65535).default(22).describe('the SSH port'),
      privateKeyFile: z.string().min(1).optional().describe('a private key file to log in with'),
      ...secretRef,
      hostKey: z
        .string()
        .regex(/^SHA256:[A-Za-z0-9+/]{43}=?$/, 'expected a host key fingerprint "SHA256:…"')
        .optional()
        .describe('the host key fingerprint, "SHA256:…" (ssh-keygen -lf KEY.pub)'),
      knownHostsFile: z.string().min(1).optional().describe('a known_hosts file holding the host key'),
    })
    .optional()
    .describe('SSH access to the target, used by the SSH probes (console, sftp) by default'),
  postgres: z
    .strictObject({
      port: z.number().int().min(1).max(65535).default(5432).describe('the PostgreSQL port'),
      database: z.string().min(1).describe('the database'),
      user: z.string().min(1).describe('the user'),
      ...secretRef,
    })
    .optional()
    .describe('the PostgreSQL database the postgres and odbc probes use by default'),
});

const targetSchema = z.union([
  z.literal('lab'),
  z.literal('lab-vm'),
  z.strictObject({
    lab: z
      .string()
      .regex(/^[a-z][a-z0-9-]{0,15}$/, 'expected a lab name')
      .describe('the name of a lab brought up with blackout lab up --name'),
    vm: z.boolean().default(false).describe("true: the lab's QEMU guest is the target"),
  }),
  realTarget,
]);
export type TargetConfig = z.infer<typeof targetSchema>;

/** a search weighs every candidate length on a grid of about a quarter resolution: bound the grid */
export const MAX_SEARCH_STEPS = 10_000;
const MAX_LENGTHS = 1000;
/** the scale benchmark runs hundreds; a few thousand sessions is already a load test of the harness itself */
const MAX_PROBES = 5000;

// 0 means "as long as the injector's own operation takes" (a real live migration)
const blackoutsSchema = z.union([
  z
    .array(duration({ min: 0 }))
    .min(1, 'expected at least one blackout length')
    .max(MAX_LENGTHS, `expected at most ${MAX_LENGTHS} blackout lengths`),
  z.strictObject({
    lengths: z
      .array(duration({ min: 0 }))
      .min(1, 'expected at least one blackout length')
      .max(MAX_LENGTHS, `expected at most ${MAX_LENGTHS} blackout lengths`)
      .describe('blackout lengths, in the order they run'),
    repeat: z.number().int().min(1).max(100).default(1).describe('how many times each length runs'),
  }),
  z.strictObject({
    search: z
      .strictObject({
        from: duration({ min: 1 }).describe('the shortest blackout length searched'),
        to: duration({ min: 1 }).describe('the longest blackout length searched'),
        resolution: duration({ min: 1 }).describe('how close the search brackets each breaking point'),
        maxTrials: z.number().int().min(1).max(500).default(40).describe('the search stops after this many trials'),
      })
      .refine((s) => s.to > s.from, { message: 'expected to > from' })
      .refine((s) => s.resolution <= s.to - s.from, { message: 'expected a resolution no larger than to − from' })
      .refine((s) => (s.to - s.from) / s.resolution <= MAX_SEARCH_STEPS, {
        message: `expected (to − from) / resolution ≤ ${MAX_SEARCH_STEPS}: a finer search of so wide a range weighs too many candidate lengths; narrow the range or coarsen the resolution`,
      })
      .describe("an adaptive search for every probe's breaking point: each trial's length chosen to narrow the open brackets"),
  }),
]);

const expectationSchema = z.strictObject({
  survives: duration({ min: 0 }).optional().describe('the probe must survive (transparent or stalled) every blackout up to this length, and one at least this long'),
});

export const baseSuite = z.strictObject({
  name: z.string().min(1).max(200).describe("the suite's name in the reports"),
  description: z.string().max(10_000).optional().describe('what the suite is about, for the reports'),
  target: targetSchema.describe('the machine under test: "lab", "lab-vm", { lab: NAME, vm }, or { host, ssh, postgres, echo } for your own'),
  probes: z
    .array(z.unknown())
    .min(1, 'expected at least one probe')
    .max(MAX_PROBES, `expected at most ${MAX_PROBES} probes`)
    .describe('the client sessions kept open against the target while it is blacked out'),
  injector: z.unknown().optional().describe('what causes the blackout: { kind: cable-pull | command | linux-gateway | manual | … }'), // validated by its kind's own schema below
  blackouts: blackoutsSchema
    .optional()
    .describe('the blackout lengths: a list ["2s", "5s", "10s"], { lengths, repeat }, or { search: { from, to, resolution } } for each probe\'s breaking point (default: the injector\'s own)'),
  warmup: duration({ min: 0, max: 600_000 }).default(2000).describe('how long the probes run before each cut'),
  recovery: duration({ min: 0, max: 3_600_000 }).default(20_000).describe('how long after each restore the probes are watched for recovery'),
  cooldown: duration({ min: 0, max: 600_000 }).default(1000).describe('pause between trials so TCP stacks settle'),
  expect: z.record(z.string().max(64), expectationSchema).default({}).describe('per probe name: what the probe must survive ({ survives: "10s" }); the run exits 1 when it does not'),
  strict: z.boolean().default(false).describe('true: every probe must survive every blackout, or the run exits 1'),
  migration: migrationSchema.describe("the migration verdict's settings: { links, memory, livePause }"),
});

export interface Suite extends Omit<z.infer<typeof baseSuite>, 'probes' | 'injector' | 'blackouts'> {
  probes: ProbeConfigBase[];
  injector: { kind: string } & Record<string, unknown>;
  /** blackout lengths in the order they run, ms (repeats expanded); empty for a search */
  blackouts: number[];
  /** how the runner picks each trial's length; null: the injector's default lengths */
  sweep: Sweep | null;
}

/** The input type of a TypeScript suite (durations as "10s" strings or ms numbers). */
export type SuiteInput = z.input<typeof baseSuite> & { probes: Array<Record<string, unknown>>; injector: Record<string, unknown> };
export function defineSuite(suite: SuiteInput): SuiteInput {
  return suite;
}

export class SuiteError extends Error {
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(`${file}: ${problems.length === 1 ? problems[0] : `\n  - ${problems.join('\n  - ')}`}`);
  }
}

/** probes[1].interval, expect["odd key"].survives: a path a person can find in the file */
function pathText(path: ReadonlyArray<PropertyKey>): string {
  let s = '';
  for (const p of path) {
    if (typeof p === 'number') s += `[${p}]`;
    else if (/^[A-Za-z_][\w-]*$/.test(String(p))) s += s ? `.${String(p)}` : String(p);
    else s += `[${JSON.stringify(String(p))}]`;
  }
  return s;
}

type Issue = z.core.$ZodIssue;

/** For a union, the branch that got furthest (deepest path) explains the problem best. */
function explainUnion(i: Extract<Issue, { code: 'invalid_union' }>): Issue[] | null {
  const branches = (i.errors ?? []).filter((b) => b.length > 0);
  if (!branches.length) return null;
  const depth = (b: Issue[]) => Math.max(...b.map((x) => x.path.length));
  const best = branches.reduce((a, b) => (depth(b) > depth(a) ? b : a));
  if (depth(best) === 0) {
    // every branch failed at the union's own level: the one that got the type right says why (a list too long)
    const typed = branches.filter((b) => b.every((x) => x.code !== 'invalid_type'));
    return typed.length === 1 ? typed[0]!.map((x) => ({ ...x, path: [...i.path, ...x.path] })) : null;
  }
  return best.map((x) => ({ ...x, path: [...i.path, ...x.path] }));
}

function issuesOf(error: { issues: Issue[] }, prefix: Array<string | number> = []): string[] {
  return error.issues.flatMap((i): string[] => {
    if (i.code === 'invalid_union') {
      const inner = explainUnion(i);
      if (inner) return issuesOf({ issues: inner }, prefix);
    }
    const path = pathText([...prefix, ...i.path]);
    let msg = i.message;
    if (i.code === 'unrecognized_keys') msg = `unknown field${i.keys.length > 1 ? 's' : ''} ${i.keys.map((k) => `"${k}"`).join(', ')}`;
    if (i.code === 'invalid_union' && prefix.length === 0 && i.path[0] === 'target') {
      msg = 'expected "lab", "lab-vm", { lab: NAME } or { host, ssh, postgres, … } (see the README, "Targets")';
    }
    return [`${path || '(suite)'}: ${msg}`];
  });
}

/**
 * Validates a suite object; throws SuiteError listing every problem with its field.
 * `baseDir`: the suite file's folder, against which a probe's relative file fields
 * (its definition's `fileFields`, e.g. the web probe's journey) are resolved.
 */
export function validateSuite(raw: unknown, file = 'suite', baseDir?: string): Suite {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new SuiteError(file, ['(suite): expected a mapping with name, target, probes, injector, blackouts']);
  const problems: string[] = [];
  const base = baseSuite.safeParse(raw);
  if (!base.success) problems.push(...issuesOf(base.error));
  const r = raw as Record<string, unknown>;

  const probeConfigs: ProbeConfigBase[] = [];
  if (Array.isArray(r.probes)) {
    const names = new Set<string>();
    r.probes.forEach((p, i) => {
      const kind = p && typeof p === 'object' ? (p as Record<string, unknown>).kind : undefined;
      const def = typeof kind === 'string' ? probeDefinition(kind) : undefined;
      if (!def) {
        problems.push(`probes[${i}].kind: expected one of ${probes.map((d) => d.kind).join(', ')}, got ${JSON.stringify(kind)}`);
        return;
      }
      const parsed = def.schema.safeParse(p);
      if (!parsed.success) return void problems.push(...issuesOf(parsed.error, ['probes', i]));
      if (baseDir) {
        const c = parsed.data as unknown as Record<string, unknown>;
        for (const f of def.fileFields ?? []) if (typeof c[f] === 'string' && !isAbsolute(c[f])) c[f] = resolve(baseDir, c[f]);
      }
      if (names.has(parsed.data.name)) problems.push(`probes[${i}].name: "${parsed.data.name}" is used twice; probe names must be unique`);
      names.add(parsed.data.name);
      probeConfigs.push(parsed.data);
    });
  }
  let injector: Suite['injector'] | null = null;
  if (r.injector !== undefined) {
    const kind = r.injector && typeof r.injector === 'object' ? (r.injector as Record<string, unknown>).kind : undefined;
    const def = typeof kind === 'string' ? injectorDefinition(kind) : undefined;
    if (!def) problems.push(`injector.kind: expected one of ${injectors.map((d) => d.kind).join(', ')}, got ${JSON.stringify(kind)}`);
    else {
      const parsed = def.schema.safeParse(r.injector);
      if (!parsed.success) problems.push(...issuesOf(parsed.error, ['injector']));
      else injector = parsed.data as Suite['injector'];
    }
  } else problems.push('injector: required (e.g. { kind: cable-pull })');

  if (base.success) {
    for (const name of Object.keys(base.data.expect)) {
      if (!probeConfigs.some((p) => p.name === name) && problems.length === 0) problems.push(`${pathText(['expect', name])}: no probe is named ${JSON.stringify(name)}`);
    }
  }
  if (problems.length || !base.success || !injector) throw new SuiteError(file, problems);

  const b = base.data.blackouts;
  let sweep: Sweep | null = null;
  if (b && 'search' in b) sweep = { mode: 'search', ...b.search };
  else if (b) sweep = Array.isArray(b) ? { mode: 'list', lengths: b, repeat: 1 } : { mode: 'list', lengths: b.lengths, repeat: b.repeat };
  const blackouts = sweep?.mode === 'list' ? sweep.lengths.flatMap((l) => Array.from({ length: sweep.repeat }, () => l)) : [];
  return { ...base.data, probes: probeConfigs, injector, blackouts, sweep };
}

/** Loads a suite file (.yaml/.yml or .ts/.mts exporting `default defineSuite(...)`). */
export async function loadSuite(file: string): Promise<Suite> {
  const path = resolve(file);
  if (!existsSync(path)) throw new SuiteError(file, ['file not found']);
  const ext = extname(path);
  let raw: unknown;
  if (ext === '.ts' || ext === '.mts' || ext === '.js' || ext === '.mjs') {
    try {
      // loaded as ESM whatever package.json sits next to it (a suite in /tmp has none),
      // so it can import defineSuite from this very module, or from 'blackout'
      const mod = (await importUserModule(path, import.meta.url)) as { default?: unknown };
      raw = mod.default;
      // a .ts file outside an ESM package arrives through CJS interop: { default: { default: suite } }
      if (raw && typeof raw === 'object' && Object.keys(raw).length === 1 && 'default' in raw) raw = (raw as { default: unknown }).default;
    } catch (e) {
      throw new SuiteError(file, [`could not load: ${(e as Error).message}`]);
    }
  } else {
    try {
      raw = parseYaml(readFileSync(path, 'utf8'), { uniqueKeys: true, maxAliasCount: 100 });
    } catch (e) {
      if (e instanceof YAMLParseError) throw new SuiteError(file, [`YAML: ${e.message.split('\n')[0]}`]);
      throw new SuiteError(file, [`could not read: ${(e as Error).message}`]);
    }
  }
  return validateSuite(raw, file, dirname(path));
}
