/**
 * TLS and mutual TLS on the real server, with certificates made by openssl: plaintext clients are refused
 * on a TLS port, mutual TLS refuses clients without a certificate from the configured CA, and a replaced
 * certificate is picked up for new connections while open ones keep working; files that do not form a
 * usable certificate are refused and the previous one stays; an expired or not-yet-valid certificate stops the
 * start, and is refused on reload (SIGHUP or a file change) with an error log while the previous one stays.
 */
import { copyFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadProtos } from '../src/api/index.js';
import type { PolicyServiceClient } from '@dust-serve/client/gen/dust/serving/v1/PolicyService';
import { CertFactory, type KeyPair } from './support/certs.js';
import { predict, predictError, startTestServer, validRequest, type TestServer } from './support/harness.js';
import { eventually } from './support/eventually.js';
import { WITH_OPENSSL } from './support/tools.js';

const { policy } = loadProtos();
const clients: PolicyServiceClient[] = [];

/** A client with its own connection (no subchannel shared with other test clients). */
function client(t: TestServer, credentials: grpc.ChannelCredentials): PolicyServiceClient {
  const c = new policy.PolicyService(t.address, credentials, { 'grpc.use_local_subchannel_pool': 1 }) as unknown as PolicyServiceClient;
  clients.push(c);
  return c;
}

const certs = new CertFactory();
let caA: KeyPair;
let caB: KeyPair;
let clientCa: KeyPair;
beforeAll(() => {
  if (!WITH_OPENSSL.available) return;
  caA = certs.ca('ca-a');
  caB = certs.ca('ca-b');
  clientCa = certs.ca('client-ca');
});
afterAll(() => {
  for (const c of clients) c.close();
  certs.remove();
});

WITH_OPENSSL.describe('TLS', () => {
  let t: TestServer;
  beforeAll(async () => {
    const server = certs.leaf('server-tls', caA, 'server');
    t = await startTestServer({ tlsCert: server.cert, tlsKey: server.key }, { credentials: grpc.credentials.createSsl(certs.read(caA.cert)) });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('serves clients that trust the server certificate', async () => {
    const res = await predict(t.client, await validRequest());
    expect(res.model_name).toBe('dust-tiny');
  });

  it('refuses plaintext clients and clients that do not trust the certificate', async () => {
    expect((await predictError(client(t, grpc.credentials.createInsecure()), await validRequest(), 5_000)).code).toBe(grpc.status.UNAVAILABLE);
    expect((await predictError(client(t, grpc.credentials.createSsl(certs.read(caB.cert))), await validRequest(), 5_000)).code).toBe(grpc.status.UNAVAILABLE);
  });
});

WITH_OPENSSL.describe('mutual TLS', () => {
  let t: TestServer;
  beforeAll(async () => {
    const server = certs.leaf('server-mtls', caA, 'server');
    const robot = certs.leaf('robot-1', clientCa, 'client');
    t = await startTestServer(
      { tlsCert: server.cert, tlsKey: server.key, tlsClientCa: clientCa.cert },
      { credentials: grpc.credentials.createSsl(certs.read(caA.cert), certs.read(robot.key), certs.read(robot.cert)) },
    );
  });
  afterAll(async () => {
    await t?.close();
  });

  it('serves a client with a certificate from the client CA', async () => {
    expect((await predict(t.client, await validRequest())).model_name).toBe('dust-tiny');
  });

  it('refuses a client without a certificate, and one whose certificate another CA signed', async () => {
    const anonymous = client(t, grpc.credentials.createSsl(certs.read(caA.cert)));
    expect((await predictError(anonymous, await validRequest(), 5_000)).code).toBe(grpc.status.UNAVAILABLE);
    const stranger = certs.leaf('stranger', caB, 'client');
    const foreign = client(t, grpc.credentials.createSsl(certs.read(caA.cert), certs.read(stranger.key), certs.read(stranger.cert)));
    expect((await predictError(foreign, await validRequest(), 5_000)).code).toBe(grpc.status.UNAVAILABLE);
  });
});

WITH_OPENSSL.describe('certificate reload', () => {
  let t: TestServer;
  let live: KeyPair;
  beforeAll(async () => {
    const first = certs.leaf('server-first', caA, 'server');
    // The server reads these paths; the test replaces their contents like a certificate manager would.
    live = { cert: path.join(certs.dir, 'live.pem'), key: path.join(certs.dir, 'live.key') };
    copyFileSync(first.cert, live.cert);
    copyFileSync(first.key, live.key);
    t = await startTestServer({ tlsCert: live.cert, tlsKey: live.key }, { credentials: grpc.credentials.createSsl(certs.read(caA.cert)) });
  });
  afterAll(async () => {
    await t?.close();
  });

  const install = (pair: KeyPair) => installOver(live, pair);

  it('picks up a replaced certificate for new connections, without dropping open ones', async () => {
    await predict(t.client, await validRequest()); // t.client's connection is open on the first certificate
    expect(await t.server.reloadCertificates()).toBe(false); // nothing changed yet

    install(certs.leaf('server-second', caB, 'server'));
    // The file watcher reloads; new clients that trust only CA B get through.
    await eventually(
      async () => {
        const c = client(t, grpc.credentials.createSsl(certs.read(caB.cert)));
        return predict(c, await validRequest(), 3_000).then(
          () => true,
          () => false,
        );
      },
      { what: 'a client trusting only CA B to be served', timeoutMs: 15_000, intervalMs: 200 },
    );
    const trustsOnlyA = client(t, grpc.credentials.createSsl(certs.read(caA.cert)));
    expect((await predictError(trustsOnlyA, await validRequest(), 5_000)).code).toBe(grpc.status.UNAVAILABLE);
    // The connection opened before the reload still serves.
    expect((await predict(t.client, await validRequest())).model_name).toBe('dust-tiny');
  });

  it('refuses files that do not form a certificate and key pair, and keeps serving the previous one', async () => {
    const other = certs.leaf('server-other', caB, 'server');
    // A key that does not belong to the certificate (as when only one of the two files was updated).
    copyFileSync(other.key, `${live.key}.tmp`);
    renameSync(`${live.key}.tmp`, live.key);
    expect(await t.server.reloadCertificates()).toBe(false);
    writeFileSync(live.cert, 'half-written');
    expect(await t.server.reloadCertificates()).toBe(false);
    const c = client(t, grpc.credentials.createSsl(certs.read(caB.cert)));
    expect((await predict(c, await validRequest(), 5_000)).model_name).toBe('dust-tiny');
  });
});

/** Puts `pair` in the place of `live` by atomic replacement (write aside, rename over), as cert-manager and kubelet secret updates do. */
function installOver(live: KeyPair, pair: KeyPair): void {
  for (const [from, to] of [
    [pair.key, live.key],
    [pair.cert, live.cert],
  ] as const) {
    copyFileSync(from, `${to}.tmp`);
    renameSync(`${to}.tmp`, to);
  }
}

describe('plaintext on the network', () => {
  async function warnings(host: string): Promise<string[]> {
    const lines: Array<{ level: number; msg: string }> = [];
    const { pino } = await import('pino');
    const log = pino({ level: 'warn' }, { write: (line: string) => lines.push(JSON.parse(line) as { level: number; msg: string }) });
    const t = await startTestServer({ host, warmup: false }, { log });
    await t.close();
    return lines.filter((l) => l.level === 40).map((l) => l.msg);
  }

  it('warns when listening without TLS on a non-loopback address, not on loopback', async () => {
    expect((await warnings('0.0.0.0')).some((m) => m.startsWith('listening without TLS on a non-loopback address'))).toBe(true);
    expect((await warnings('127.0.0.1')).some((m) => m.startsWith('listening without TLS'))).toBe(false);
  });
});

WITH_OPENSSL.describe('certificates that are not valid now', () => {
  const day = 86_400_000;
  const expired = () => ({ notBefore: new Date(Date.now() - 3 * day), notAfter: new Date(Date.now() - day) });
  const notYet = () => ({ notBefore: new Date(Date.now() + day), notAfter: new Date(Date.now() + 3 * day) });

  it.each([
    ['expired', expired, /has expired \(notBefore \S+Z, notAfter \S+Z, now \S+Z\).*renew it/],
    ['not valid yet', notYet, /is not valid yet \(notBefore \S+Z, notAfter \S+Z, now \S+Z\).*clock/],
  ])('a certificate that is %s stops the start with an error naming the file and its dates', async (what, validity, message) => {
    const pair = certs.leaf(`server-${what.replace(/ /g, '-')}`, caA, 'server', validity());
    const started = startTestServer({ tlsCert: pair.cert, tlsKey: pair.key, warmup: false });
    await expect(started).rejects.toThrow(message);
    await expect(started).rejects.toThrow(`the TLS certificate in ${pair.cert} (CN=server-${what.replace(/ /g, '-')})`);
  });

  describe('on reload', () => {
    let t: TestServer;
    let live: KeyPair;
    const errors: Array<{ msg: string; err?: string; reason?: string }> = [];
    const waiters: Array<() => void> = [];
    beforeAll(async () => {
      const first = certs.leaf('server-valid', caA, 'server');
      live = { cert: path.join(certs.dir, 'reload-live.pem'), key: path.join(certs.dir, 'reload-live.key') };
      copyFileSync(first.cert, live.cert);
      copyFileSync(first.key, live.key);
      const { pino } = await import('pino');
      const log = pino(
        { level: 'error' },
        {
          write: (line: string) => {
            const entry = JSON.parse(line) as { level: number; msg: string; err?: string; reason?: string };
            if (entry.level !== 50) return;
            errors.push(entry);
            for (const wake of waiters.splice(0)) wake();
          },
        },
      );
      t = await startTestServer(
        { tlsCert: live.cert, tlsKey: live.key, warmup: false },
        { credentials: grpc.credentials.createSsl(certs.read(caA.cert)), log },
      );
    });
    afterAll(async () => {
      await t?.close();
    });

    /** Resolves when an error line matching `test` has been logged (the file watcher reloads on its own time). */
    async function errorLogged(test: (e: (typeof errors)[number]) => boolean): Promise<(typeof errors)[number]> {
      for (;;) {
        const found = errors.find(test);
        if (found) return found;
        await new Promise<void>((resolve) => waiters.push(resolve));
      }
    }

    const install = (pair: KeyPair) => installOver(live, pair);

    // Each bad certificate comes from CA B: a client trusting only CA A that still gets through is served the
    // first certificate.
    it('an expired certificate is refused on SIGHUP with an error log; the serving certificate stays', async () => {
      install(certs.leaf('reload-expired', caB, 'server', expired()));
      expect(await t.server.reloadCertificates()).toBe(false);
      const logged = await errorLogged((e) => e.reason === 'reload requested' && /has expired/.test(e.err ?? ''));
      expect(logged.msg).toMatch(/TLS certificate reload refused; the previous one stays in use/);
      expect(logged.err).toContain(live.cert);
      const trustsA = client(t, grpc.credentials.createSsl(certs.read(caA.cert)));
      expect((await predict(trustsA, await validRequest(), 5_000)).model_name).toBe('dust-tiny');
    });

    it('a not-yet-valid certificate written over the files is refused by the file watcher with an error log; the serving certificate stays', async () => {
      install(certs.leaf('reload-not-yet', caB, 'server', notYet()));
      const logged = await errorLogged((e) => e.reason === 'files changed' && /is not valid yet/.test(e.err ?? ''));
      expect(logged.msg).toMatch(/TLS certificate reload refused/);
      const trustsA = client(t, grpc.credentials.createSsl(certs.read(caA.cert)));
      expect((await predict(trustsA, await validRequest(), 5_000)).model_name).toBe('dust-tiny');
    });
  });
});
