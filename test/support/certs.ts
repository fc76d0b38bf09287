/**
 * Throw-away certificates for the TLS tests, made by the openssl command-line tool: CAs, server certificates
 * for 127.0.0.1/localhost, client certificates. EC P-256 keys keep generation fast.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface KeyPair {
  readonly cert: string;
  readonly key: string;
}

export class CertFactory {
  readonly dir = mkdtempSync(path.join(os.tmpdir(), 'dust-certs-'));

  private openssl(...args: string[]): void {
    execFileSync('openssl', args, { cwd: this.dir, stdio: ['ignore', 'ignore', 'pipe'] });
  }

  private file(name: string): string {
    return path.join(this.dir, name);
  }

  /** A self-signed CA. */
  ca(name: string): KeyPair {
    const pair = { cert: this.file(`${name}.pem`), key: this.file(`${name}.key`) };
    this.openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', pair.key, '-out', pair.cert, '-days', '2', '-subj', `/CN=${name}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
    return pair;
  }

  /** A leaf certificate signed by `ca`: a server one (for 127.0.0.1 and localhost) or a client one. */
  leaf(name: string, ca: KeyPair, usage: 'server' | 'client'): KeyPair {
    const pair = { cert: this.file(`${name}.pem`), key: this.file(`${name}.key`) };
    const csr = this.file(`${name}.csr`);
    const ext = this.file(`${name}.ext`);
    this.openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', pair.key, '-out', csr, '-subj', `/CN=${name}`);
    writeFileSync(
      ext,
      usage === 'server'
        ? 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n'
        : 'extendedKeyUsage=clientAuth\n',
    );
    this.openssl('x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-out', pair.cert, '-days', '2', '-extfile', ext);
    return pair;
  }

  read(file: string): Buffer {
    return readFileSync(file);
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
