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

/** A certificate's validity period; without one, a leaf is valid from now for two days. */
export interface Validity {
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/** openssl's ASN.1 GeneralizedTime, as `openssl ca -startdate/-enddate` take it: YYYYMMDDHHMMSSZ. */
const asn1Time = (d: Date) => `${d.toISOString().replace(/[-:T]/g, '').slice(0, 14)}Z`;

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
    this.openssl(
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      pair.key,
      '-out',
      pair.cert,
      '-days',
      '2',
      '-subj',
      `/CN=${name}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    );
    return pair;
  }

  /**
   * A leaf certificate signed by `ca`: a server one (for 127.0.0.1 and localhost), a client one, or both.
   * With `validity`, any period (expired, not valid yet): `openssl x509` of OpenSSL 3.0 takes only a positive
   * number of days from now, `openssl ca` takes both dates.
   */
  leaf(name: string, ca: KeyPair, usage: 'server' | 'client' | 'server+client', validity?: Validity): KeyPair {
    const pair = { cert: this.file(`${name}.pem`), key: this.file(`${name}.key`) };
    const csr = this.file(`${name}.csr`);
    const ext = this.file(`${name}.ext`);
    this.openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', pair.key, '-out', csr, '-subj', `/CN=${name}`);
    writeFileSync(
      ext,
      usage === 'client'
        ? 'extendedKeyUsage=clientAuth\n'
        : `subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=${usage === 'server' ? 'serverAuth' : 'serverAuth,clientAuth'}\n`,
    );
    if (!validity) {
      this.openssl('x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-out', pair.cert, '-days', '2', '-extfile', ext);
      return pair;
    }
    const config = this.file(`${name}.ca.cnf`);
    const database = this.file(`${name}.index`);
    writeFileSync(database, '');
    writeFileSync(
      config,
      `[ca]\ndefault_ca = test\n[test]\ndatabase = ${database}\nnew_certs_dir = ${this.dir}\ndefault_md = sha256\npolicy = any\nunique_subject = no\nrand_serial = yes\n[any]\ncommonName = supplied\n`,
    );
    this.openssl(
      'ca',
      '-batch',
      '-config',
      config,
      '-cert',
      ca.cert,
      '-keyfile',
      ca.key,
      '-in',
      csr,
      '-out',
      pair.cert,
      '-notext',
      '-extfile',
      ext,
      '-startdate',
      asn1Time(validity.notBefore),
      '-enddate',
      asn1Time(validity.notAfter),
    );
    return pair;
  }

  read(file: string): Buffer {
    return readFileSync(file);
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
