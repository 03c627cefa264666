/**
 * The few libc calls Node does not expose, loaded once through koffi (a
 * maintained FFI whose npm package ships its prebuilt binary): flock(2) and
 * fcntl(2) for leases, setsockopt(2) and getsockopt(2) for TCP options and
 * TCP_INFO. (The nft worker thread loads its own: a worker has its own heap.) Loaded on first use, so
 * a command that needs none of them never loads the library.
 */
import koffi from 'koffi';

export interface Libc {
  flock: (fd: number, op: number) => number;
  fcntl: (fd: number, cmd: number, ...rest: unknown[]) => number;
  setsockopt: (fd: number, level: number, name: number, value: number[], len: number) => number;
  getsockopt: (fd: number, level: number, name: number, value: Buffer, len: number[]) => number;
  /** errno of the last call made through this library */
  errno: () => number;
}

let loaded: Libc | null = null;

export function libc(): Libc {
  if (!loaded) {
    const lib = koffi.load('libc.so.6');
    loaded = {
      flock: lib.func('int flock(int fd, int op)'),
      fcntl: lib.func('int fcntl(int fd, int cmd, ...)'),
      setsockopt: lib.func('int setsockopt(int fd, int level, int name, _In_ int *value, uint32_t len)'),
      getsockopt: lib.func('int getsockopt(int fd, int level, int name, _Out_ uint8_t *value, _Inout_ uint32_t *len)'),
      errno: () => koffi.errno(),
    };
  }
  return loaded;
}
