/**
 * TLS and mutual TLS for the gRPC port, with certificates reloaded while the server runs: on a change of
 * the files, periodically and on request (SIGHUP), see file-watch.ts. grpc-js applies a
 * new secure context to new connections only; connections already open keep theirs, so nothing is dropped.
 * A new set of files that does not form a usable context (half-written, key not matching the certificate)
 * is refused with an error log and the previous one stays in use.
 */
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { createSecureContext } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { InvalidArgumentError } from '../errors/index.js';
import type { Logger } from '../telemetry/index.js';
import { watchFiles, type FileWatchOptions } from './file-watch.js';

type CertificateProvider = grpc.experimental.CertificateProvider;
type IdentityListener = grpc.experimental.IdentityCertificateUpdateListener;
type CaListener = grpc.experimental.CaCertificateUpdateListener;

export interface TlsFiles {
  /** PEM certificate chain, server first. */
  readonly cert: string;
  /** PEM private key of the certificate. */
  readonly key: string;
  /** PEM CA bundle that client certificates must chain to; set = mutual TLS, a client without one is refused. */
  readonly clientCa?: string;
}

interface Material {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly ca: Buffer | undefined;
}

/** Reads the files and checks they make a secure context; throws with what is wrong. */
async function readMaterial(files: TlsFiles): Promise<Material> {
  const read = (file: string, what: string) =>
    readFile(file).catch((err: NodeJS.ErrnoException) => {
      throw new InvalidArgumentError(`cannot read the TLS ${what} ${file}: ${err.code ?? err.message}`);
    });
  const [cert, key, ca] = await Promise.all([
    read(files.cert, 'certificate'),
    read(files.key, 'private key'),
    files.clientCa ? read(files.clientCa, 'client CA bundle') : undefined,
  ]);
  try {
    createSecureContext({ cert, key, ca });
  } catch (err) {
    throw new InvalidArgumentError(`the TLS files do not form a usable context (${(err as Error).message}): check that ${files.key} is the key of ${files.cert}`);
  }
  return { cert, key, ca };
}

const same = (a: Material, b: Material) => a.cert.equals(b.cert) && a.key.equals(b.key) && (a.ca === b.ca || (!!a.ca && !!b.ca && a.ca.equals(b.ca)));

function describe(m: Material): { subject: string; validTo: string; fingerprint256: string } {
  const x = new X509Certificate(m.cert);
  return { subject: x.subject.replace(/\n/g, ', '), validTo: x.validTo, fingerprint256: x.fingerprint256 };
}

/** A grpc-js certificate provider over the files, for both the server identity and the client CA. */
class ReloadingCertificates implements CertificateProvider {
  private readonly identityListeners = new Set<IdentityListener>();
  private readonly caListeners = new Set<CaListener>();

  constructor(private current: Material) {}

  get material(): Material {
    return this.current;
  }

  update(next: Material): void {
    this.current = next;
    for (const l of this.identityListeners) l({ certificate: next.cert, privateKey: next.key });
    if (next.ca) for (const l of this.caListeners) l({ caCertificate: next.ca });
  }

  // grpc-js registers its watcher after adding these listeners, so the first update must come later.
  addIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.add(listener);
    process.nextTick(() => this.identityListeners.has(listener) && listener({ certificate: this.current.cert, privateKey: this.current.key }));
  }

  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.delete(listener);
  }

  addCaCertificateListener(listener: CaListener): void {
    this.caListeners.add(listener);
    const ca = this.current.ca;
    if (ca) process.nextTick(() => this.caListeners.has(listener) && listener({ caCertificate: ca }));
  }

  removeCaCertificateListener(listener: CaListener): void {
    this.caListeners.delete(listener);
  }
}

export interface ServerTls {
  readonly credentials: grpc.ServerCredentials;
  readonly mutual: boolean;
  /** Re-reads the files now; resolves true when a new certificate set is in use. */
  reload(reason: string): Promise<boolean>;
  close(): void;
}

/** Loads and checks the files (throws when unusable) and starts watching them. */
export async function serverTls(files: TlsFiles, log: Logger, options: FileWatchOptions = {}): Promise<ServerTls> {
  const provider = new ReloadingCertificates(await readMaterial(files));
  const mutual = !!files.clientCa;
  log.info({ ...describe(provider.material), mutualTls: mutual }, 'TLS certificate loaded');
  const reloader = watchFiles(
    {
      files: [files.cert, files.key, files.clientCa].filter((f): f is string => !!f),
      read: () => readMaterial(files),
      same,
      apply(next, reason) {
        provider.update(next);
        log.info({ reason, ...describe(next) }, 'TLS certificate reloaded: new connections use it, open ones keep theirs');
      },
      what: 'TLS certificate',
    },
    provider.material,
    log,
    options,
  );
  return {
    // The provider serves both the identity and, for mutual TLS, the CA that client certificates must chain to.
    credentials: grpc.experimental.createCertificateProviderServerCredentials(provider, mutual ? provider : null, mutual),
    mutual,
    reload: (reason) => reloader.reload(reason),
    close: () => reloader.close(),
  };
}

/** True for addresses only this machine can reach. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || h.startsWith('::ffff:127.');
  return false;
}
