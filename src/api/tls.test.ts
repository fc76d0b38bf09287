import { describe, expect, it } from 'vitest';
import { certificateValidityProblem, isLoopback } from './tls.js';

describe('isLoopback', () => {
  it('knows the addresses only this machine reaches', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', 'LOCALHOST', '::ffff:127.0.0.1']) expect(isLoopback(h), h).toBe(true);
    for (const h of ['0.0.0.0', '::', '10.0.0.5', 'example.org', '192.168.1.1', '::ffff:10.0.0.1']) expect(isLoopback(h), h).toBe(false);
  });
});

describe('certificateValidityProblem', () => {
  // As node:crypto's X509Certificate writes the dates.
  const cert = { subject: 'CN=dust-serve\nO=lab', validFrom: 'Jan  1 00:00:00 2030 GMT', validTo: 'Apr  1 00:00:00 2030 GMT' };
  const at = (iso: string) => Date.parse(iso);

  it('accepts a certificate from its notBefore to its notAfter, both included', () => {
    for (const now of ['2030-01-01T00:00:00Z', '2030-02-15T12:00:00Z', '2030-04-01T00:00:00Z']) {
      expect(certificateValidityProblem('/etc/tls/tls.crt', cert, at(now)), now).toBeUndefined();
    }
  });

  it('refuses an expired certificate, naming the file, the subject, both dates and what to do', () => {
    const problem = certificateValidityProblem('/etc/tls/tls.crt', cert, at('2030-04-01T00:00:01Z'));
    expect(problem).toContain('/etc/tls/tls.crt (CN=dust-serve, O=lab) has expired');
    expect(problem).toContain('notBefore 2030-01-01T00:00:00.000Z, notAfter 2030-04-01T00:00:00.000Z, now 2030-04-01T00:00:01.000Z');
    expect(problem).toMatch(/renew it and replace the file/);
  });

  it('refuses a certificate that is not valid yet, and points at the clock', () => {
    const problem = certificateValidityProblem('/etc/tls/tls.crt', cert, at('2029-12-31T23:59:59Z'));
    expect(problem).toMatch(/is not valid yet \(notBefore 2030-01-01T00:00:00.000Z, notAfter 2030-04-01T00:00:00.000Z, now 2029-12-31T23:59:59.000Z\)/);
    expect(problem).toMatch(/check this machine's clock/);
  });

  it('refuses dates it cannot read', () => {
    expect(certificateValidityProblem('c.pem', { ...cert, validTo: 'soon' }, at('2030-02-01T00:00:00Z'))).toMatch(/cannot be read/);
  });
});
