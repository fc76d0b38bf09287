import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { compileRetryPolicy, DEFAULT_SERVICE_CONFIG, serviceConfig } from './service-config.js';

/** grpc-js validates 'grpc.service_config' when a channel is made and throws on a config it would not use. */
function channelAccepts(config: unknown): void {
  new grpc.Client('127.0.0.1:1', grpc.credentials.createInsecure(), { 'grpc.service_config': JSON.stringify(config) }).close();
}

describe('serviceConfig', () => {
  it('round-robins and retries PolicyService calls on UNAVAILABLE and RESOURCE_EXHAUSTED', () => {
    const { loadBalancingConfig, methodConfig } = DEFAULT_SERVICE_CONFIG;
    expect(loadBalancingConfig).toEqual([{ round_robin: {} }]);
    expect(methodConfig).toEqual([
      {
        name: [{ service: 'dust.serving.v1.PolicyService' }],
        retryPolicy: {
          maxAttempts: 5,
          initialBackoff: '0.05s',
          maxBackoff: '1s',
          backoffMultiplier: 2,
          retryableStatusCodes: ['UNAVAILABLE', 'RESOURCE_EXHAUSTED'],
        },
      },
    ]);
    channelAccepts(DEFAULT_SERVICE_CONFIG);
    expect(() => channelAccepts({ methodConfig: [{ name: [{}], retryPolicy: { maxAttempts: 1 } }] })).toThrow();
  });

  it('writes gRPC durations and takes other policies', () => {
    const config = serviceConfig(
      'pick_first',
      compileRetryPolicy({ initialBackoffMs: 12.5, maxBackoffMs: 30_000, maxAttempts: 2, retryableStatusCodes: ['UNAVAILABLE'] }),
    );
    expect(config.loadBalancingConfig).toEqual([{ pick_first: {} }]);
    expect(config.methodConfig[0]!.retryPolicy).toMatchObject({
      initialBackoff: '0.0125s',
      maxBackoff: '30s',
      maxAttempts: 2,
      retryableStatusCodes: ['UNAVAILABLE'],
    });
    channelAccepts(config);
    expect(serviceConfig('round_robin', false).methodConfig).toEqual([]);
    channelAccepts(serviceConfig('round_robin', false));
  });

  it('is what deploy/client/service-config.json documents for clients in other languages', () => {
    const file = JSON.parse(readFileSync(path.resolve('deploy/client/service-config.json'), 'utf8')) as unknown;
    expect(file).toEqual(DEFAULT_SERVICE_CONFIG);
  });
});

describe('compileRetryPolicy', () => {
  it.each([
    [{ maxAttempts: 1 }, /maxAttempts/],
    [{ maxAttempts: 6 }, /maxAttempts .* \[2, 5\]/],
    [{ initialBackoffMs: 0 }, /initialBackoffMs/],
    [{ maxBackoffMs: Infinity }, /maxBackoffMs/],
    [{ initialBackoffMs: 500, maxBackoffMs: 100 }, /at least retry\.initialBackoffMs/],
    [{ backoffMultiplier: 0.5 }, /backoffMultiplier/],
    [{ retryableStatusCodes: [] }, /at least one/],
    [{ retryableStatusCodes: ['OK'] }, /"OK" is not a gRPC error status/],
    [{ retryableStatusCodes: ['UNAVAILBLE'] }, /"UNAVAILBLE"/],
  ] as const)('refuses %j', (init, message) => {
    expect(() => compileRetryPolicy(init as never)).toThrow(message);
  });
});
