import { describe, expect, it } from 'vitest';
import { LOADER_OPTIONS } from '../api/proto.js';
import { CLIENT_LOADER_OPTIONS, clientProtos } from './protos.js';

describe('client protos', () => {
  it('load with the options the server and the generated types use', () => {
    // A drift here would make the client read longs, enums or optional fields differently from src/gen.
    expect(CLIENT_LOADER_OPTIONS).toEqual(LOADER_OPTIONS);
  });

  it('expose PolicyService and Health methods by their wire paths', () => {
    const { policy, health } = clientProtos();
    expect(policy.Predict.path).toBe('/dust.serving.v1.PolicyService/Predict');
    expect(policy.StreamPredict.requestStream && policy.StreamPredict.responseStream).toBe(true);
    expect(health.Check.path).toBe('/grpc.health.v1.Health/Check');
  });
});
