/**
 * TLS and mutual TLS for the gRPC port, with certificates reloaded while the server runs: on a change of
 * the files, periodically and on request (SIGHUP), see file-watch.ts. grpc-js applies a
 * new secure context to new connections only; connections already open keep theirs, so nothing is dropped.
 * A new set of files that does not form a usable context (half-written, key not matching the certificate)
 * or whose certificate chain is not valid now (expired, or not valid yet) is refused with an error log and the
 * previous one stays in use; at start, such files stop the server with an error saying what to fix. Clients
 * refuse an expired or not-yet-valid certificate at the handshake, so serving one would turn away every new
 * connection while the old certificate may still have been good.
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

/** What the validity check reads of a certificate (node:crypto X509Certificate has these). */
export interface CertificateValidity {
  readonly subject: string;
  /** notBefore, as X509Certificate.validFrom gives it ("Jan  1 00:00:00 2030 GMT"). */
  readonly validFrom: string;
  /** notAfter, as X509Certificate.validTo gives it. */
  readonly validTo: string;
}

const isoOf = (ms: number) => (Number.isFinite(ms) ? new Date(ms).toISOString() : 'unreadable');

/**
 * Why a certificate of the chain in `file` cannot serve at `now` (epoch milliseconds), with its notBefore
 * and notAfter and what to do; undefined while it is valid.
 */
export function certificateValidityProblem(file: string, cert: CertificateValidity, now: number): string | undefined {
  const notBefore = Date.parse(cert.validFrom);
  const notAfter = Date.parse(cert.validTo);
  const dates = `notBefore ${isoOf(notBefore)}, notAfter ${isoOf(notAfter)}, now ${isoOf(now)}`;
  const which = `the TLS certificate in ${file} (${cert.subject.replace(/\n/g, ', ')})`;
  if (!Number.isFinite(notBefore) || !Number.isFinite(notAfter))
    return `${which} has validity dates that cannot be read (${cert.validFrom} to ${cert.validTo}); issue a new certificate`;
  if (now < notBefore) {
    return `${which} is not valid yet (${dates}): clients would refuse it; install a certificate valid now, or check this machine's clock`;
  }
  if (now > notAfter) {
    return `${which} has expired (${dates}): clients would refuse it; renew it and replace the file (a running server re-reads it on change and on SIGHUP)`;
  }
  return undefined;
}

/** The certificates of a PEM chain file, in file order (the server's first). */
function certificatesOf(pem: Buffer): X509Certificate[] {
  return (pem.toString('latin1').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map((block) => new X509Certificate(block));
}

/** Reads the files and checks they make a secure context whose chain is valid at `now`; throws with what is wrong. */
async function readMaterial(files: TlsFiles, now: number): Promise<Material> {
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
    throw new InvalidArgumentError(
      `the TLS files do not form a usable context (${(err as Error).message}): check that ${files.key} is the key of ${files.cert}`,
    );
  }
  for (const x of certificatesOf(cert)) {
    const problem = certificateValidityProblem(files.cert, x, now);
    if (problem) throw new InvalidArgumentError(problem);
  }
  return { cert, key, ca };
}

const same = (a: Material, b: Material) => a.cert.equals(b.cert) && a.key.equals(b.key) && (a.ca === b.ca || (!!a.ca && !!b.ca && a.ca.equals(b.ca)));

function describe(m: Material): { subject: string; validFrom: string; validTo: string; fingerprint256: string } {
  const x = new X509Certificate(m.cert);
  return { subject: x.subject.replace(/\n/g, ', '), validFrom: x.validFrom, validTo: x.validTo, fingerprint256: x.fingerprint256 };
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

export interface ServerTlsOptions extends FileWatchOptions {
  /** Epoch milliseconds, for the certificate validity check. @default Date.now */
  readonly now?: () => number;
}

/** Loads and checks the files (throws when unusable or not valid now) and starts watching them. */
export async function serverTls(files: TlsFiles, log: Logger, options: ServerTlsOptions = {}): Promise<ServerTls> {
  const now = options.now ?? Date.now;
  const provider = new ReloadingCertificates(await readMaterial(files, now()));
  const mutual = !!files.clientCa;
  log.info({ ...describe(provider.material), mutualTls: mutual }, 'TLS certificate loaded');
  const reloader = watchFiles(
    {
      files: [files.cert, files.key, files.clientCa].filter((f): f is string => !!f),
      read: () => readMaterial(files, now()),
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
