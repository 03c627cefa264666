// The lab's TCP echo service (RFC 862): every byte received is sent back.
// Plain JavaScript so it starts in ~40 ms without a TypeScript loader; it runs
// inside the target namespace and its freezer cgroup like every lab server.
import { createServer } from 'node:net';

const [host = '0.0.0.0', port = '7'] = process.argv.slice(2);
const server = createServer((socket) => {
  socket.setNoDelay(true);
  socket.on('error', () => socket.destroy());
  socket.pipe(socket);
});
server.maxConnections = 20000;
server.listen({ host, port: Number(port), backlog: 4096 }, () => {
  process.stdout.write(`echo listening on ${host}:${port}\n`);
});
