/**
 * A resolved target: where the probes connect and what the injectors act on.
 * `target: lab` (or `{ lab: NAME }`) resolves to a lab instance brought up by
 * `blackout lab up`; a real host names its address and how to reach each
 * service, with secrets given as environment variable or file names.
 */

/**
 * The lab instance a target lives in, as the lab layer recorded it. Its full
 * shape belongs to the lab (src/lab/state.ts) and only lab injectors read it
 * (through `requireLab`); the core keeps it opaque so it never depends on the lab.
 */
export interface LabRef {
  readonly name: string;
  readonly targetAddress: string;
}

export interface SshAccess {
  host: string;
  port: number;
  user: string;
  /** path of the private key file (never its content in events) */
  privateKeyFile?: string;
  /** name of the env variable holding a password */
  passwordEnv?: string;
  passwordFile?: string;
  /** pinned host key fingerprint, "SHA256:…" */
  hostKey?: string;
  knownHostsFile?: string;
}

export interface PostgresAccess {
  host: string;
  port: number;
  database: string;
  user: string;
  passwordEnv?: string;
  passwordFile?: string;
}

export interface RdpAccess {
  host: string;
  port: number;
  user: string;
  passwordEnv?: string;
  passwordFile?: string;
  /** pinned server certificate fingerprint, "sha256:AB:CD:…" */
  certFingerprint?: string;
}

export interface SmbAccess {
  host: string;
  port: number;
  share: string;
  user: string;
  domain?: string;
  passwordEnv?: string;
  passwordFile?: string;
}

export interface WebAccess {
  /** the web app's base URL */
  url: string;
  user: string;
  passwordEnv?: string;
  passwordFile?: string;
  /** lab only: the app's admin Unix socket (forced logout) */
  adminSocket?: string;
}

/** where the copy probes find their files (the lab's file-copy folder) */
export interface FilesAccess {
  /** folder on the target (sftp paths; the SMB share's root) */
  dir: string;
  /** the default large file in it, and its size and sha256 */
  file: string;
  size: number;
  sha256?: string;
}

export interface ResolvedTarget {
  /** a label for reports: the lab name or the host */
  name: string;
  /** the address probes connect to */
  address: string;
  /** set when the target is a lab instance: injectors that act on the lab need it */
  lab?: LabRef;
  /** service ports and credentials by service name (echo, ssh, postgres, …) */
  services: {
    echo?: { port: number };
    ssh?: SshAccess;
    postgres?: PostgresAccess;
    rdp?: RdpAccess;
    smb?: SmbAccess;
    web?: WebAccess;
    files?: FilesAccess;
    [name: string]: unknown;
  };
}
