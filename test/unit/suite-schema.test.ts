/**
 * The published JSON Schema of the suite format (schema/suite.schema.json):
 * current with its generator, accepted by every bundled suite, and refusing
 * what `validate` refuses at the same field. Where JSON Schema cannot follow
 * `validate` (rules across fields, bounds on a duration written as a string),
 * the cases below say so and hold that the schema stays the lenient one: an
 * editor may miss a problem `validate` names, never flag a suite it runs.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv, type ErrorObject } from 'ajv';
import { parse as parseYaml } from 'yaml';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { jsonSchemaOf, suiteJsonSchema, suiteJsonSchemaText } from '../../src/run/suite-schema.ts';
import { validateSuite, SuiteError } from '../../src/run/suite.ts';
import { probes } from '../../src/probes/index.ts';
import { injectors } from '../../src/injectors/index.ts';
import { DURATION_PATTERN, duration } from '../../src/core/schema-util.ts';
import { parseDuration } from '../../src/core/clock.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const SCHEMA_FILE = join(ROOT, 'schema/suite.schema.json');

// what an editor does with `format: uri` (zod's url() is the WHATWG parser too); allowUnionTypes: a duration is "string or number"
const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true, formats: { uri: (s: string) => URL.canParse(s) } });
const check = ajv.compile(JSON.parse(readFileSync(SCHEMA_FILE, 'utf8')) as object);

type Path = Array<string | number>;

/** the field paths the JSON Schema complains about (an unknown field and a missing one named as the field itself) */
function schemaPaths(errors: ErrorObject[]): Path[] {
  return errors.map((e) => {
    const p: Path = e.instancePath
      .split('/')
      .slice(1)
      .map((s) => (/^\d+$/.test(s) ? Number(s) : s.replace(/~1/g, '/').replace(/~0/g, '~')));
    if (e.keyword === 'additionalProperties') p.push((e.params as { additionalProperty: string }).additionalProperty);
    if (e.keyword === 'required') p.push((e.params as { missingProperty: string }).missingProperty);
    return p;
  });
}

/** the field paths `validate` names: "probes[0].port: …", "probes[0]: unknown field "x"", "(suite): unknown field "y"" */
function validatePaths(raw: unknown): Path[] | null {
  try {
    validateSuite(raw);
    return null;
  } catch (e) {
    if (!(e instanceof SuiteError)) throw e;
    return e.problems.flatMap((problem) => {
      const m = /^(.*?): (.*)$/s.exec(problem)!;
      const path: Path =
        m[1] === '(suite)'
          ? []
          : [...m[1]!.matchAll(/\[(\d+)\]|\["((?:[^"\\]|\\.)*)"\]|\.?([^.[\]]+)/g)].map((x) => (x[1] !== undefined ? Number(x[1]) : x[2] !== undefined ? (JSON.parse(`"${x[2]}"`) as string) : x[3]!));
      const unknown = /^unknown fields? (.*)$/.exec(m[2]!);
      if (!unknown) return [path];
      return [...unknown[1]!.matchAll(/"([^"]*)"/g)].map((k) => [...path, k[1]!]);
    });
  }
}

const bundled = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((d) => (d.isDirectory() ? bundled(join(dir, d.name)) : /\.ya?ml$/.test(d.name) ? [join(dir, d.name)] : []));
const suiteFiles = bundled(join(ROOT, 'suites'));

/** a valid suite touching every part of the format; each wrong case below changes one thing in it */
const good = () => ({
  name: 'schema check',
  target: { host: 'app01.example.internal', ssh: { user: 'Deploy', port: 22, passwordEnv: 'SSH_PW' } },
  probes: [
    { name: 'ping', kind: 'icmp', interval: 10 },
    {
      name: 'redis',
      kind: 'tcp',
      mode: 'exchange',
      port: 6379,
      send: 'PING\r\n',
      expect: '^\\+PONG',
      keepalive: { idle: '10s', interval: '1s', count: 3 },
      reconnect: { mode: 'backoff', initial: '200ms' },
    },
    {
      name: 'shop',
      kind: 'http',
      url: 'https://shop.example.internal/health',
      expect: { status: [200, 204], body: 'ok' },
      secretHeaders: { Authorization: { env: 'SHOP_TOKEN' } },
      requestTimeout: '3s',
    },
    { name: 'web', kind: 'web', url: 'https://shop.example.internal/', journey: { login: [{ goto: '/login' }, { fill: '#user', secret: 'password' }], check: [{ expectText: 'Welcome' }] } },
    { name: 'copy', kind: 'sftp', size: '64MB', direction: 'both' },
  ],
  injector: {
    kind: 'command',
    ssh: { host: 'gw1.example.internal', user: 'root', privateKeyFile: '/root/.ssh/id_ed25519', knownHostsFile: '/root/.ssh/known_hosts' },
    cut: ['nft', 'add', 'element', 'inet', 'x', 'y', '{ 10.0.0.1 }'],
    restore: ['nft', 'flush', 'set', 'inet', 'x', 'y'],
  },
  blackouts: { search: { from: '1s', to: '30s', resolution: '500ms' } },
  expect: { redis: { survives: '5s' } },
  migration: { links: { '1GbE iSCSI': '125MB/s', '10GbE': '10Gbit/s' }, memory: ['512MB', '2GiB'], livePause: '300ms' },
});
type Suite = ReturnType<typeof good>;
const probe = (s: Suite, i: number) => s.probes[i] as Record<string, unknown>;

/** one wrong thing each, and the field both must name */
const wrong: Array<[string, (s: Suite) => void, Path]> = [
  ['a wrong top-level field', (s) => Object.assign(s, { blackout: ['5s'] }), ['blackout']],
  ['a missing name', (s) => delete (s as Partial<Suite>).name, ['name']],
  ['a missing injector', (s) => delete (s as Partial<Suite>).injector, ['injector']],
  ['an unknown probe kind', (s) => (probe(s, 1).kind = 'tpc'), ['probes', 1, 'kind']],
  ['a probe without a kind', (s) => delete probe(s, 0).kind, ['probes', 0, 'kind']],
  ['a wrong field name in a probe', (s) => (probe(s, 0).intervall = '1s'), ['probes', 0, 'intervall']],
  ['a wrong type in a probe field', (s) => (probe(s, 1).port = 'six thousand'), ['probes', 1, 'port']],
  ['a port out of range', (s) => (probe(s, 1).port = 70000), ['probes', 1, 'port']],
  ['a duration that is no duration', (s) => (probe(s, 0).interval = 'ten seconds'), ['probes', 0, 'interval']],
  ['a duration number below its minimum', (s) => (probe(s, 0).interval = 0), ['probes', 0, 'interval']],
  ['a negative blackout length', (s) => Object.assign(s, { blackouts: ['-2s'] }), ['blackouts', 0]],
  ['a mode that does not exist', (s) => (probe(s, 1).mode = 'ping'), ['probes', 1, 'mode']],
  ['a wrong field in a nested block', (s) => ((probe(s, 1).keepalive as Record<string, unknown>).idel = '5s'), ['probes', 1, 'keepalive', 'idel']],
  ['a wrong reconnect mode', (s) => (probe(s, 1).reconnect = { mode: 'sometimes' }), ['probes', 1, 'reconnect', 'mode']],
  ['an inline secret', (s) => (probe(s, 2).secretHeaders = { Authorization: { value: 'hunter2' } }), ['probes', 2, 'secretHeaders', 'Authorization', 'value']],
  ['a missing field of a probe kind', (s) => delete probe(s, 3).journey, ['probes', 3, 'journey']],
  ['a wrong declarative journey step', (s) => (probe(s, 3).journey = { check: [{ expectTxt: 'Welcome' }] }), ['probes', 3, 'journey', 'check', 0, 'expectTxt']],
  ['a size that is no size', (s) => (probe(s, 4).size = '64 parsecs'), ['probes', 4, 'size']],
  ['a wrong injector field', (s) => Object.assign(s.injector, { restor: ['true'] }), ['injector', 'restor']],
  ['a missing injector field', (s) => delete (s.injector as Partial<Suite['injector']>).restore, ['injector', 'restore']],
  ['a wrong type in an injector field', (s) => (s.injector.cut = 'nft add element' as unknown as string[]), ['injector', 'cut']],
  ['an unknown injector kind', (s) => (s.injector.kind = 'cable-pul'), ['injector', 'kind']],
  ['a wrong field of another injector kind', (s) => Object.assign(s, { injector: { kind: 'cable-pull', vm: 'app01' } }), ['injector', 'vm']],
  ['a wrong target field', (s) => Object.assign(s.target, { hots: 'x' }), ['target', 'hots']],
  ['a wrong search field', (s) => Object.assign(s.blackouts.search, { resoluton: '1s' }), ['blackouts', 'search', 'resoluton']],
  ['a wrong expectation field', (s) => Object.assign(s.expect.redis, { survive: '5s' }), ['expect', 'redis', 'survive']],
  ['a throughput that is no throughput', (s) => (s.migration.links['10GbE'] = '10 gigs'), ['migration', 'links', '10GbE']],
];

/**
 * What `validate` refuses and JSON Schema cannot express: the schema lets them
 * pass (an editor stays quiet), `validate` names the field. A case that starts
 * failing here has become expressible: move it to `wrong`.
 */
const onlyValidate: Array<[string, (s: Suite) => void, Path]> = [
  ['exchange mode without send (a rule across fields)', (s) => delete probe(s, 1).send, ['probes', 1, 'send']],
  ['a body on a GET request (a rule across fields)', (s) => (probe(s, 2).body = 'x'), ['probes', 2, 'body']],
  ['two probes with one name (across list items)', (s) => (probe(s, 1).name = 'ping'), ['probes', 1, 'name']],
  ['an expectation for no probe (across fields)', (s) => Object.assign(s.expect, { nobody: { survives: '1s' } }), ['expect', 'nobody']],
  ['a search with to ≤ from (a rule across fields)', (s) => Object.assign(s.blackouts.search, { to: '1s' }), ['blackouts', 'search']],
  ['an SSH block with neither hostKey nor knownHostsFile (one of two fields)', (s) => delete (s.injector.ssh as Partial<Suite['injector']['ssh']>).knownHostsFile, ['injector', 'ssh']],
  ['a duration string below its minimum (a bound on a string)', (s) => (probe(s, 0).interval = '0ms'), ['probes', 0, 'interval']],
  ['a regular expression that does not compile', (s) => (probe(s, 1).expect = '(unclosed'), ['probes', 1, 'expect']],
];

describe('the suite JSON Schema', () => {
  it('the committed schema/suite.schema.json is what the generator writes (npm run schema)', () => {
    expect(readFileSync(SCHEMA_FILE, 'utf8'), 'stale: run `npm run schema` and commit schema/suite.schema.json').toBe(suiteJsonSchemaText());
  });

  it('names every probe and injector kind, and describes every field of every kind, nested ones included', () => {
    const schema = suiteJsonSchema();
    const defs = schema.definitions as Record<string, unknown>;
    const undescribed: string[] = [];
    // every `properties` entry anywhere below a node: a field an editor completes
    const walk = (node: unknown, where: string): void => {
      if (Array.isArray(node)) return node.forEach((n) => walk(n, where));
      if (!node || typeof node !== 'object') return;
      for (const [k, v] of Object.entries(node)) {
        if (k === 'properties') {
          for (const [field, s] of Object.entries(v as Record<string, { description?: string }>)) {
            if (!s.description) undescribed.push(`${where}.${field}`);
            walk(s, `${where}.${field}`);
          }
        } else walk(v, where);
      }
    };
    for (const [what, kinds] of [
      ['probe', probes],
      ['injector', injectors],
    ] as const) {
      for (const d of kinds) {
        expect(defs[`${what}-${d.kind}`], `${what} kind ${d.kind}`).toBeDefined();
        walk(defs[`${what}-${d.kind}`], `${what} ${d.kind}`);
      }
    }
    walk({ properties: schema.properties }, 'suite');
    expect(undescribed).toEqual([]);
    expect((defs.probe as { properties: { kind: { enum: string[] } } }).properties.kind.enum).toEqual(probes.map((d) => d.kind));
    expect((defs.injector as { properties: { kind: { enum: string[] } } }).properties.kind.enum).toEqual(injectors.map((d) => d.kind));
  });

  it.each(suiteFiles.map((f) => [f.slice(ROOT.length + 1), f]))('%s names the schema on its first line and validates against it', (_, file) => {
    const text = readFileSync(file, 'utf8');
    const first = /^# yaml-language-server: \$schema=(\S+)\n/.exec(text);
    expect(first, 'first line: # yaml-language-server: $schema=<relative path>').not.toBeNull();
    expect(resolve(dirname(file), first![1]!)).toBe(SCHEMA_FILE);
    const raw: unknown = parseYaml(text);
    expect(check(raw), JSON.stringify(check.errors)).toBe(true);
    expect(() => validateSuite(raw)).not.toThrow();
  });

  it('the example suite the CI recipes copy validates against it too', () => {
    const raw: unknown = parseYaml(readFileSync(join(ROOT, 'examples/app01-gateway.yaml'), 'utf8'));
    expect(check(raw), JSON.stringify(check.errors)).toBe(true);
  });

  it('the suite the wrong cases start from is valid for both', () => {
    expect(validatePaths(good())).toBeNull();
    expect(check(good()), JSON.stringify(check.errors)).toBe(true);
  });

  it.each(wrong)('%s: refused by the schema and by validate, naming the same field', (_, spoil, path) => {
    const s = good();
    spoil(s);
    expect(validatePaths(s), 'validate').toContainEqual(path);
    expect(check(s), 'JSON Schema').toBe(false);
    expect(schemaPaths(check.errors!), JSON.stringify(check.errors)).toContainEqual(path);
  });

  it.each(onlyValidate)('%s: refused by validate only', (_, spoil, path) => {
    const s = good();
    spoil(s);
    expect(validatePaths(s), 'validate').toContainEqual(path);
    expect(check(s), JSON.stringify(check.errors)).toBe(true);
  });

  it("a duration's pattern accepts the strings parseDuration reads, and no others", () => {
    const re = new RegExp(DURATION_PATTERN);
    for (const ok of ['250ms', '10s', ' 2m ', '1h', '1.5s', '100', '0']) {
      expect(re.test(ok), ok).toBe(true);
      expect(() => duration().parse(ok), ok).not.toThrow();
    }
    for (const bad of ['10 seconds', '1d', '-1s', 's', '', '1e3']) {
      expect(re.test(bad), bad).toBe(false);
      expect(() => duration().parse(bad), bad).toThrow();
    }
    expect(parseDuration('1.5s')).toBe(1500);
  });

  it('a pattern with flags is refused rather than published case-sensitive', () => {
    expect(() => jsonSchemaOf(z.strictObject({ user: z.string().regex(/^[a-z]+$/i) }))).toThrow(/flags/);
  });
});
