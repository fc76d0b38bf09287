import net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { listen } from './listen.js';

const servers: grpc.Server[] = [];
const blockers: net.Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.forceShutdown();
  for (const b of blockers.splice(0)) b.close();
});

function block(host: string, port: number): Promise<number> {
  const b = net.createServer();
  blockers.push(b);
  return new Promise((resolve, reject) => {
    b.once('error', reject);
    b.listen(port, host, () => resolve((b.address() as net.AddressInfo).port));
  });
}

function server(): grpc.Server {
  const s = new grpc.Server();
  servers.push(s);
  return s;
}

describe('listen', () => {
  it('binds an IP literal and returns the port picked for 0', async () => {
    const port = await listen(server(), '127.0.0.1', 0);
    expect(port).toBeGreaterThan(0);
  });

  it('says what to do when the port is taken', async () => {
    const port = await block('127.0.0.1', 0);
    await expect(listen(server(), '127.0.0.1', port)).rejects.toThrow(
      `cannot listen on 127.0.0.1:${port}: the address is already in use (another dust-serve?); stop that server or choose another --port`,
    );
  });

  it('fails when any address the host resolves to is taken, not only when all are', async () => {
    // The second address of a two-address name is taken (127.0.0.2 is loopback on Linux).
    const port = await block('127.0.0.2', 0);
    const resolve = async () => ['127.0.0.1', '127.0.0.2'];
    await expect(listen(server(), 'two-addresses.test', port, grpc.ServerCredentials.createInsecure(), resolve)).rejects.toThrow(
      `cannot listen on 127.0.0.2:${port}: the address is already in use`,
    );
  });

  it('binds every resolved address on the one port picked for 0', async () => {
    const s = server();
    const port = await listen(s, 'two-addresses.test', 0, grpc.ServerCredentials.createInsecure(), async () => ['127.0.0.1', '127.0.0.2']);
    await expect(block('127.0.0.2', port)).rejects.toThrow(/EADDRINUSE/);
    await expect(block('127.0.0.1', port)).rejects.toThrow(/EADDRINUSE/);
  });
});
