/**
 * Loads the serving protos at run time with the same options the type generator used (scripts/gen-proto.mjs),
 * so the generated types in src/gen describe exactly the objects handlers see.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import type { ProtoGrpcType } from '../gen/policy.js';

export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

/** proto/ at the package root, from src/api (tsx, vitest) or dist/src/api (the build). */
function protoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = path.join(dir, 'proto');
    if (existsSync(path.join(candidate, 'dust/serving/v1/policy.proto'))) return candidate;
    dir = path.dirname(dir);
  }
  throw new Error('proto/dust/serving/v1/policy.proto not found above ' + fileURLToPath(import.meta.url));
}

export const PROTO_ROOT = protoRoot();
export const POLICY_PROTO = 'dust/serving/v1/policy.proto';
export const POLICY_SERVICE_NAME = 'dust.serving.v1.PolicyService';

export interface LoadedProtos {
  readonly packageDefinition: protoLoader.PackageDefinition;
  readonly policy: ProtoGrpcType['dust']['serving']['v1'];
}

export function loadProtos(): LoadedProtos {
  const packageDefinition = protoLoader.loadSync([POLICY_PROTO, healthProtoPath], {
    ...LOADER_OPTIONS,
    includeDirs: [PROTO_ROOT, path.dirname(healthProtoPath)],
  });
  const loaded = grpc.loadPackageDefinition(packageDefinition) as unknown as ProtoGrpcType;
  return { packageDefinition, policy: loaded.dust.serving.v1 };
}
