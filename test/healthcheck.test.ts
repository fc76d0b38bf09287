/**
 * deploy/docker/healthcheck.mjs, the Docker HEALTHCHECK and the Kubernetes exec probe: exit 0 for a SERVING server
 * over plaintext, TLS and mutual TLS (configured by the same DUST_* variables as the server), 1 otherwise.
 */
import { execFile } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CertFactory, type KeyPair } from './support/certs.js';
import { startTestServer, type TestServer } from './support/harness.js';
import { WITH_OPENSSL } from './support/tools.js';

/** The script's exit code with these environment variables. */
function probe(env: Record<string, string>): Promise<number> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, ['deploy/docker/healthcheck.mjs'], { env: { PATH: process.env.PATH ?? '', ...env } });
    child.on('exit', (code) => resolve(code ?? -1));
  });
}

const certs = new CertFactory();
const servers: TestServer[] = [];
let ca: KeyPair;
afterAll(async () => {
  for (const s of servers) await s.close();
  certs.remove();
});

async function serve(options: Parameters<typeof startTestServer>[0]): Promise<string> {
  const s = await startTestServer({ warmup: false, ...options });
  servers.push(s);
  return String(s.server.port);
}

describe('healthcheck.mjs', () => {
  it('plaintext: SERVING exits 0; nothing listening exits 1', async () => {
    const port = await serve({});
    expect(await probe({ DUST_PORT: port })).toBe(0);
    expect(await probe({ DUST_PORT: '1' })).toBe(1);
  });
});

WITH_OPENSSL.describe('healthcheck.mjs with certificates', () => {
  beforeAll(() => {
    ca = certs.ca('probe-ca');
  });

  it('TLS: with the server’s DUST_TLS_* variables it exits 0; a plaintext check of a TLS server exits 1', async () => {
    const pair = certs.leaf('probe-server', ca, 'server');
    const port = await serve({ tlsCert: pair.cert, tlsKey: pair.key });
    expect(await probe({ DUST_PORT: port, DUST_TLS_CERT: pair.cert, DUST_TLS_KEY: pair.key })).toBe(0);
    expect(await probe({ DUST_PORT: port })).toBe(1);
  });

  it('mutual TLS: it presents the server’s certificate, accepted when the client CA issued it', async () => {
    const pair = certs.leaf('probe-mtls', ca, 'server+client');
    const port = await serve({ tlsCert: pair.cert, tlsKey: pair.key, tlsClientCa: ca.cert });
    expect(await probe({ DUST_PORT: port, DUST_TLS_CERT: pair.cert, DUST_TLS_KEY: pair.key, DUST_TLS_CLIENT_CA: ca.cert })).toBe(0);
    // Without a client certificate the server refuses the check.
    expect(await probe({ DUST_PORT: port, DUST_TLS_CERT: pair.cert, DUST_TLS_KEY: pair.key })).toBe(1);
  });
});
