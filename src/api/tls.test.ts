import { describe, expect, it } from 'vitest';
import { isLoopback } from './tls.js';

describe('isLoopback', () => {
  it('knows the addresses only this machine reaches', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', 'LOCALHOST', '::ffff:127.0.0.1']) expect(isLoopback(h), h).toBe(true);
    for (const h of ['0.0.0.0', '::', '10.0.0.5', 'example.org', '192.168.1.1', '::ffff:10.0.0.1']) expect(isLoopback(h), h).toBe(false);
  });
});
