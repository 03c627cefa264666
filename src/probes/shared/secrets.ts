/**
 * Secrets for the probes: always given as the name of an environment variable
 * or a file, read at open, kept in memory only, and scrubbed from every error
 * text a probe emits (client libraries sometimes echo connection strings).
 */
import { readFileSync } from 'node:fs';
import { scrub } from '../../core/redact.ts';

export interface SecretRef {
  passwordEnv?: string;
  passwordFile?: string;
}

/** Reads the password a reference points to; throws a readable error (never containing the secret). */
export function readSecret(ref: SecretRef, what: string): string {
  if (ref.passwordEnv) {
    const v = process.env[ref.passwordEnv];
    if (v === undefined || v === '') throw new Error(`${what}: environment variable ${ref.passwordEnv} is not set`);
    return v;
  }
  if (ref.passwordFile) {
    try {
      return readFileSync(ref.passwordFile, 'utf8').replace(/\r?\n$/, '');
    } catch (e) {
      throw new Error(`${what}: cannot read the password file ${ref.passwordFile} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
  }
  throw new Error(`${what}: no password given (passwordEnv or passwordFile)`);
}

/** An error whose message has the secrets replaced, keeping its code. */
export function scrubbed(e: unknown, secrets: string[]): Error {
  const err = e as NodeJS.ErrnoException;
  const out = new Error(scrub(err?.message ?? String(e), secrets)) as NodeJS.ErrnoException;
  if (typeof err?.code === 'string') out.code = err.code;
  return out;
}
