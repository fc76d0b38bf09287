/**
 * Opening the port: every address the host resolves to, or none. grpc-js alone reports success when any one
 * of them binds, so a second server given "localhost" where the first holds 127.0.0.1 would quietly start
 * on ::1 and take part of the traffic; and its EADDRINUSE message does not say what to do.
 */
import { lookup } from 'node:dns/promises';
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';

function bindOne(server: grpc.Server, host: string, port: number, credentials: grpc.ServerCredentials): Promise<number> {
  const address = net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
  return new Promise((resolve, reject) =>
    server.bindAsync(address, credentials, (err, bound) => {
      if (!err) return resolve(bound);
      const inUse = /EADDRINUSE/.test(err.message);
      reject(
        new Error(
          inUse
            ? `cannot listen on ${address}: the address is already in use (another dust-serve?); stop that server or choose another --port`
            : `cannot listen on ${address}: ${err.message}`,
          { cause: err },
        ),
      );
    }),
  );
}

/**
 * Binds every address `host` resolves to (`resolve`, DNS by default), all or nothing.
 * @returns the port (the one picked for all addresses when `port` is 0).
 * @throws Error naming the address that could not be bound; addresses bound before it stay bound until the
 *   caller shuts the server down.
 */
export async function listen(
  server: grpc.Server,
  host: string,
  port: number,
  credentials: grpc.ServerCredentials = grpc.ServerCredentials.createInsecure(),
  resolve = lookupAll,
): Promise<number> {
  const literal = host.replace(/^\[(.*)\]$/, '$1');
  const addresses = net.isIP(literal) ? [literal] : await resolve(host);
  let bound = port;
  for (const address of addresses) bound = await bindOne(server, address, bound, credentials);
  return bound;
}

async function lookupAll(host: string): Promise<string[]> {
  return [...new Set((await lookup(host, { all: true })).map((a) => a.address))];
}
