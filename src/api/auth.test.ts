import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { authorize, bearerToken, CredentialSet } from './auth.js';

const creds = new CredentialSet([
  { token: 'robot-token-0123456789', role: 'robot', name: 'arm-7' },
  { token: 'admin-token-0123456789', role: 'admin', name: 'ops' },
]);

function md(authorization?: string): grpc.Metadata {
  const m = new grpc.Metadata();
  if (authorization !== undefined) m.set('authorization', authorization);
  return m;
}

const PREDICT = '/dust.serving.v1.PolicyService/Predict';
const SPLIT = '/dust.serving.v1.AdminService/SetTrafficSplit';
const HEALTH = '/grpc.health.v1.Health/Check';

describe('CredentialSet', () => {
  it('identifies exactly the known tokens', () => {
    expect(creds.identify('admin-token-0123456789')).toMatchObject({ role: 'admin', name: 'ops' });
    expect(creds.identify('admin-token-012345678')).toBeUndefined();
    expect(creds.identify('')).toBeUndefined();
  });

  it('keys a caller by its credential, not its name, and never by the token itself', () => {
    const set = new CredentialSet([
      { token: 'first-token-0123456789', role: 'robot', name: 'same-name' },
      { token: 'other-token-0123456789', role: 'robot', name: 'same-name' },
    ]);
    const a = set.identify('first-token-0123456789')!;
    const b = set.identify('other-token-0123456789')!;
    expect(a.key).not.toBe(b.key);
    expect(a.key).toMatch(/^[0-9a-f]{64}$/);
    expect(set.callerOf(md('Bearer first-token-0123456789'))).toEqual(a);
    expect(set.callerOf(md())).toBeUndefined();
  });

  it('replace: removed credentials stop being held, a changed role is not the same credential', () => {
    const set = new CredentialSet([
      { token: 'robot-token-0123456789', role: 'robot', name: 'arm-7' },
      { token: 'admin-token-0123456789', role: 'admin', name: 'ops' },
    ]);
    const robot = set.identify('robot-token-0123456789')!;
    const admin = set.identify('admin-token-0123456789')!;
    set.replace([{ token: 'admin-token-0123456789', role: 'robot', name: 'ops' }]);
    expect(set.holds(robot)).toBe(false);
    expect(set.identify('robot-token-0123456789')).toBeUndefined();
    expect(set.holds(admin)).toBe(false);
    expect(set.identify('admin-token-0123456789')).toMatchObject({ role: 'robot' });
  });
});

describe('bearerToken', () => {
  it('reads "Bearer <token>" only', () => {
    expect(bearerToken(md('Bearer abc'))).toBe('abc');
    expect(bearerToken(md('bearer abc'))).toBe('abc');
    expect(bearerToken(md('Basic abc'))).toBeUndefined();
    expect(bearerToken(md('abc'))).toBeUndefined();
    expect(bearerToken(md())).toBeUndefined();
  });
});

describe('authorize', () => {
  it('with a tokens file: health is open, others need a known token, AdminService needs the admin role', () => {
    expect(authorize(creds, HEALTH, md(), '10.0.0.1')).toEqual({ ok: true });
    expect(authorize(creds, PREDICT, md(), '127.0.0.1')).toMatchObject({ ok: false, code: grpc.status.UNAUTHENTICATED });
    expect(authorize(creds, PREDICT, md('Bearer wrong-token-0123456789'), '127.0.0.1')).toMatchObject({ ok: false, code: grpc.status.UNAUTHENTICATED });
    expect(authorize(creds, PREDICT, md('Bearer robot-token-0123456789'), '10.0.0.1')).toMatchObject({ ok: true, caller: { role: 'robot', name: 'arm-7' } });
    expect(authorize(creds, SPLIT, md('Bearer robot-token-0123456789'), '127.0.0.1')).toMatchObject({ ok: false, code: grpc.status.PERMISSION_DENIED });
    expect(authorize(creds, SPLIT, md('Bearer admin-token-0123456789'), '10.0.0.1')).toMatchObject({ ok: true, caller: { role: 'admin', name: 'ops' } });
    expect(authorize(creds, PREDICT, md('Bearer admin-token-0123456789'), '10.0.0.1')).toMatchObject({ ok: true });
  });

  it('without a tokens file: PolicyService is open, AdminService only on loopback', () => {
    expect(authorize(undefined, PREDICT, md(), '10.0.0.1')).toEqual({ ok: true });
    expect(authorize(undefined, SPLIT, md(), '127.0.0.1')).toEqual({ ok: true });
    expect(authorize(undefined, SPLIT, md(), '::ffff:127.0.0.1')).toEqual({ ok: true });
    expect(authorize(undefined, SPLIT, md(), '10.0.0.1')).toMatchObject({ ok: false, code: grpc.status.PERMISSION_DENIED });
    expect(authorize(undefined, SPLIT, md(), '::ffff:10.0.0.1')).toMatchObject({ ok: false, code: grpc.status.PERMISSION_DENIED });
    expect(authorize(undefined, SPLIT, md(), undefined)).toMatchObject({ ok: false, code: grpc.status.PERMISSION_DENIED });
  });

  it('never echoes the presented token', () => {
    const verdict = authorize(creds, SPLIT, md('Bearer robot-token-0123456789'), '127.0.0.1');
    expect(JSON.stringify(verdict)).not.toContain('0123456789');
  });
});
