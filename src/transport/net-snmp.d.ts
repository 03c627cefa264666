/** The part of net-snmp (no bundled types) that blackout uses. */
declare module 'net-snmp' {
  export interface Varbind {
    oid: string;
    type?: number;
    value?: unknown;
  }
  export interface Session {
    get(oids: string[], cb: (error: Error | null, varbinds: Varbind[]) => void): void;
    set(varbinds: Varbind[], cb: (error: Error | null, varbinds: Varbind[]) => void): void;
    subtree(oid: string, maxRepetitions: number, feed: (varbinds: Varbind[]) => boolean | void, done: (error: Error | null) => void): void;
    close(): void;
    on(event: 'error', cb: (e: Error) => void): void;
  }
  export interface SessionOptions {
    port?: number;
    retries?: number;
    timeout?: number;
    version?: number;
    transport?: string;
  }
  export interface V3User {
    name: string;
    level: number;
    authProtocol?: number;
    authKey?: string;
    privProtocol?: number;
    privKey?: string;
  }
  const snmp: {
    Version1: number;
    Version2c: number;
    Version3: number;
    ObjectType: { Integer: number; OctetString: number };
    SecurityLevel: Record<string, number>;
    AuthProtocols: Record<string, number>;
    PrivProtocols: Record<string, number>;
    createSession(target: string, community: string, options?: SessionOptions): Session;
    createV3Session(target: string, user: V3User, options?: SessionOptions): Session;
    isVarbindError(v: Varbind): boolean;
    varbindError(v: Varbind): string;
  };
  export default snmp;
}
