// Loopback TCP for the socket tests: a free port, and one request read to its end.
import * as net from 'node:net';

/** Ports freePort() returned in this process. */
const handedOut = new Set<number>();

/** A free loopback port (bound and released; nothing else on this VM races for it in practice). */
export async function freePort(): Promise<number> {
  for (;;) {
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as net.AddressInfo).port;
    await new Promise((r) => srv.close(r));
    // The kernel may pick a closed port again: never hand one out twice in this process (two
    // socket units of a test on one port would answer each other's connections).
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    return port;
  }
}

/** Connect to 127.0.0.1:`port`, send `send` (then half-close), read to EOF or close. */
export function request(port: number, send?: string, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = net.connect(port, '127.0.0.1');
    let out = '';
    c.on('connect', () => {
      if (send !== undefined) c.end(send);
    });
    c.on('data', (d) => (out += d.toString()));
    c.on('end', () => resolve(out));
    c.on('close', () => resolve(out));
    c.on('error', reject);
    c.setTimeout(timeoutMs, () => {
      c.destroy();
      reject(new Error(`no answer from port ${port} within ${timeoutMs} ms (got ${JSON.stringify(out)})`));
    });
  });
}
