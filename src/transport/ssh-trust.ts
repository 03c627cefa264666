/**
 * SSH host trust, one module for every SSH client of the project (the
 * injectors' remote commands and the probes' sessions): a pinned fingerprint,
 * or a known_hosts file read as OpenSSH reads it — host patterns with `*`,
 * `?` and `!` negation, `[host]:port` names, hashed `|1|salt|hash` hosts,
 * `@revoked` keys refused outright, and `@cert-authority` lines taken only as
 * a CA (never as the host's own key; this client accepts no host
 * certificates, so a CA line never trusts a key). An unknown or changed key is
 * refused with the offered fingerprint, never accepted.
 */
import { createHash, createHmac } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { expandHome } from '../core/secrets.ts';

/** Where a host key is checked against: a pinned fingerprint or a known_hosts file (default ~/.ssh/known_hosts). */
export interface HostTrust {
  host: string;
  port: number;
  /** pinned host key: "SHA256:…" (what `ssh-keygen -lf` prints) */
  hostKey?: string;
  knownHostsFile?: string;
  /** how to name the pin in messages (default "the pinned key") */
  pinLabel?: string;
}

/** The OpenSSH fingerprint of a raw public key blob: "SHA256:" + unpadded base64 of its SHA-256. */
export function fingerprint(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

/** The key type named inside a public key blob (its first SSH string). */
export function keyType(keyBlob: Buffer): string {
  if (keyBlob.length < 4) return 'unknown';
  const n = keyBlob.readUInt32BE(0);
  return keyBlob.subarray(4, 4 + n).toString('latin1');
}

function globToRegex(glob: string): RegExp {
  return new RegExp(
    `^${glob
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
    'i',
  );
}

/** Does a known_hosts host field (comma list, patterns, negations, hashed |1|salt|hash) name this host? */
export function knownHostsFieldMatches(field: string, host: string, port: number): boolean {
  const name = port === 22 ? host : `[${host}]:${port}`;
  if (field.startsWith('|1|')) {
    const [, , salt, hash] = field.split('|');
    if (!salt || !hash) return false;
    return createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64') === hash;
  }
  let matched = false;
  for (const pat of field.split(',')) {
    const neg = pat.startsWith('!');
    const p = neg ? pat.slice(1) : pat;
    if (globToRegex(p).test(name)) {
      if (neg) return false;
      matched = true;
    }
  }
  return matched;
}

export interface KnownHostEntry {
  marker: '' | '@revoked' | '@cert-authority';
  type: string;
  key: string;
}

export function knownHostsEntries(text: string, host: string, port: number): KnownHostEntry[] {
  const out: KnownHostEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const parts = line.split(/\s+/);
    let marker: KnownHostEntry['marker'] = '';
    if (parts[0] === '@revoked' || parts[0] === '@cert-authority') marker = parts.shift() as KnownHostEntry['marker'];
    const [field, type, key] = parts;
    if (!field || !type || !key) continue;
    if (knownHostsFieldMatches(field, host, port)) out.push({ marker, type, key });
  }
  return out;
}

/**
 * Decides about an offered host key. Returns null when it is trusted, else the
 * error text (which names the offered fingerprint).
 */
export function checkHostKey(s: HostTrust, keyBlob: Buffer): string | null {
  const fp = fingerprint(keyBlob);
  const type = keyType(keyBlob);
  const offered = `${type} ${fp}`;
  const where = `${s.host}:${s.port}`;
  if (s.hostKey) {
    if (s.hostKey.replace(/=+$/, '') === fp) return null;
    return `host key of ${where} does NOT match ${s.pinLabel ?? 'the pinned key'} ${s.hostKey}: the server offered ${offered}. If the host was reinstalled, check the new key out of band and pin it (hostKey: "${fp}"); otherwise someone may be intercepting the connection.`;
  }
  const file = expandHome(s.knownHostsFile ?? '~/.ssh/known_hosts');
  if (!existsSync(file)) {
    return `host key of ${where} is unknown (no hostKey pinned and ${file} does not exist): the server offered ${offered}. Check it out of band and pin it with hostKey: "${fp}".`;
  }
  const entries = knownHostsEntries(readFileSync(file, 'utf8'), s.host, s.port);
  const b64 = keyBlob.toString('base64');
  if (entries.some((e) => e.marker === '@revoked' && e.key === b64)) return `host key of ${where} (${offered}) is marked @revoked in ${file}`;
  const plain = entries.filter((e) => e.marker === '');
  if (plain.some((e) => e.key === b64)) return null;
  if (plain.length) {
    return `host key of ${where} has CHANGED: ${file} lists ${plain.map((e) => e.type).join(', ')} key(s) for it, but the server offered ${offered}. Check the new key out of band before trusting it.`;
  }
  return `host key of ${where} is unknown: ${file} has no entry for it; the server offered ${offered}. Check it out of band, then pin it (hostKey: "${fp}") or add it to ${file}.`;
}

/** Host key algorithms to ask for: the ones known_hosts lists for this host first (so a listed key is the one offered). */
export function preferredHostKeyAlgorithms(s: HostTrust): string[] | undefined {
  if (s.hostKey || !s.knownHostsFile) return undefined;
  const file = expandHome(s.knownHostsFile);
  if (!existsSync(file)) return undefined;
  const types = [
    ...new Set(
      knownHostsEntries(readFileSync(file, 'utf8'), s.host, s.port)
        .filter((e) => !e.marker)
        .map((e) => e.type),
    ),
  ];
  if (!types.length) return undefined;
  const algos: string[] = [];
  for (const t of types) {
    if (t === 'ssh-rsa') algos.push('rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa');
    else algos.push(t);
  }
  return algos;
}
