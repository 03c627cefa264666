/**
 * Suites hold secrets only as references (`passwordEnv`, `passwordFile`,
 * `privateKeyFile`, `{ env: NAME }`). This copy for the event log keeps those
 * references and drops the value of any key whose name says "secret" (`pass`,
 * `*_KEY`, `*_TOKEN`, `apiKey`, `community`, …) unless it is a reference, in
 * case a literal value slips through (a command's `env: { API_KEY: "…" }`).
 */

/** last words of a name that mean its value is a secret */
const SECRET_WORDS = new Set(['pass', 'passwd', 'password', 'passphrase', 'pwd', 'secret', 'token', 'key', 'apikey', 'privatekey', 'community', 'credential', 'credentials', 'auth', 'cookie', 'session']);
/** names ending in a secret word whose values are public */
const PUBLIC_NAMES = new Set(['hostkey']);

/** true for API_KEY, GW_TOKEN, pass, dbPassword, authKey, SNMP_COMMUNITY …; false for passwordEnv, privateKeyFile, hostKey */
export function isSecretName(name: string): boolean {
  if (PUBLIC_NAMES.has(name.toLowerCase())) return false;
  const words = name.replace(/([a-z0-9])([A-Z])/g, '$1 $2').split(/[\s_.-]+/).filter(Boolean);
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
