/**
 * Secrets, one module for the whole project. A secret is never inline in a
 * suite: it is the name of an environment variable or of a file, read when
 * needed, kept in memory only, scrubbed from every error text, and recorded
 * in events and reports only as its reference.
 *
 * Suites spell a reference two ways (probes: `passwordEnv` / `passwordFile`;
 * injectors: `password: { env | file }`); both become one SecretRef here.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';

/** A secret by reference: an environment variable or a file (its content, trailing newline stripped). */
export interface SecretRef {
  env?: string;
  file?: string;
}

/** The probes' spelling of a password reference, as one SecretRef. */
export function passwordRef(fields: { passwordEnv?: string; passwordFile?: string }): SecretRef {
  return { env: fields.passwordEnv, file: fields.passwordFile };
}

export function expandHome(p: string): string {
  return p === '~' ? homedir() : p.startsWith('~/') ? `${homedir()}${p.slice(1)}` : p;
}

export function secretPlaceholder(ref: SecretRef): string {
  return ref.env ? `<secret from env ${ref.env}>` : ref.file ? `<secret from file ${ref.file}>` : '<secret>';
}

/** Reads the secret a reference points to; throws a readable error that never contains the secret. */
export function readSecret(ref: SecretRef, what = 'secret'): string {
  if (ref.env) {
    const v = process.env[ref.env];
    if (v === undefined || v === '') throw new Error(`${what}: environment variable ${ref.env} is not set`);
    return v;
  }
  if (ref.file) {
    const path = expandHome(ref.file);
    if (!existsSync(path)) throw new Error(`${what}: file ${ref.file} not found`);
    try {
      return readFileSync(path, 'utf8').replace(/\r?\n$/, '');
    } catch (e) {
      throw new Error(`${what}: cannot read the file ${ref.file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
  }
  throw new Error(`${what}: no secret given (an environment variable or a file)`);
}

/** An error whose message has the secrets replaced, keeping its code. */
export function scrubbed(e: unknown, secrets: string[]): Error {
  const err = e as NodeJS.ErrnoException;
  const out = new Error(scrub(err?.message ?? String(e), secrets)) as NodeJS.ErrnoException;
  if (typeof err?.code === 'string') out.code = err.code;
  return out;
}

/**
 * For the event log: suites hold secrets only as references (`passwordEnv`,
 * `passwordFile`, `privateKeyFile`, `{ env: NAME }`). This copy keeps those
 * references and drops the value of any key whose name says "secret" (`pass`,
 * `*_KEY`, `*_TOKEN`, `apiKey`, `community`, …) unless it is a reference, in
 * case a literal value slips through (a command's `env: { API_KEY: "…" }`).
 */

/** last words of a name that mean its value is a secret */
const SECRET_WORDS = new Set([
  'pass',
  'passwd',
  'password',
  'passphrase',
  'pwd',
  'secret',
  'token',
  'key',
  'apikey',
  'privatekey',
  'community',
  'credential',
  'credentials',
  'auth',
  'cookie',
  'session',
]);
/** names ending in a secret word whose values are public */
const PUBLIC_NAMES = new Set(['hostkey']);

/** true for API_KEY, GW_TOKEN, pass, dbPassword, authKey, SNMP_COMMUNITY …; false for passwordEnv, privateKeyFile, hostKey */
export function isSecretName(name: string): boolean {
  if (PUBLIC_NAMES.has(name.toLowerCase())) return false;
  const words = name
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .split(/[\s_.-]+/)
    .filter(Boolean);
  const last = words.at(-1)?.toLowerCase() ?? '';
  return SECRET_WORDS.has(last) || /(password|passphrase|secret|token|privatekey|community)$/i.test(name);
}

/** { env: NAME } or { file: PATH }: where a secret comes from, safe to record */
function isReference(v: unknown): boolean {
  if (!v || typeof v !== 'object' || Array.isArray(v)) return false;
  const keys = Object.keys(v);
  return keys.length === 1 && (keys[0] === 'env' || keys[0] === 'file') && typeof (v as Record<string, unknown>)[keys[0]!] === 'string';
}

export function redactConfig(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redactConfig);
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = isSecretName(k) && !isReference(v) && v !== undefined ? '[redacted]' : redactConfig(v);
    return out;
  }
  return value;
}

/** Replaces every occurrence of each secret in a text (error messages from clients may echo them). */
export function scrub(text: string, secrets: Iterable<string>): string {
  let out = text;
  for (const s of secrets) if (s && s.length >= 4) out = out.split(s).join('[redacted]');
  return out;
}
