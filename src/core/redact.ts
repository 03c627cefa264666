/**
 * Suites hold secrets only as references (`passwordEnv`, `passwordFile`,
 * `privateKeyFile`). This copy for the event log keeps those references and
 * drops any other key that looks like a secret value, in case a future field
 * slips through validation.
 */
const SECRETISH = /(password|passphrase|secret|token|privatekey|community)$/i;

export function redactConfig(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redactConfig);
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = SECRETISH.test(k) ? '[redacted]' : redactConfig(v);
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
