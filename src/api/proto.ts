/**
 * The serving protos on the server, loaded through src/proto: the loader the client shares, with the options the
 * type generator used (scripts/gen-proto.mjs), so the generated types in src/gen describe exactly the objects
 * handlers see.
 */
import * as grpc from '@grpc/grpc-js';
import type * as protoLoader from '@grpc/proto-loader';
import type { ProtoGrpcType as AdminProtos } from '../gen/admin.js';
import { loadServingDefinition } from '../proto/index.js';

export { LOADER_OPTIONS, PROTO_ROOT, POLICY_PROTO, POLICY_SERVICE_NAME, ADMIN_SERVICE_NAME } from '../proto/index.js';

export interface LoadedProtos {
  readonly packageDefinition: protoLoader.PackageDefinition;
  /** The package dust.serving.v1: PolicyService, AdminService and every message (admin.proto imports policy.proto). */
  readonly policy: AdminProtos['dust']['serving']['v1'];
}

export function loadProtos(): LoadedProtos {
  const packageDefinition = loadServingDefinition();
  const loaded = grpc.loadPackageDefinition(packageDefinition) as unknown as AdminProtos;
  return { packageDefinition, policy: loaded.dust.serving.v1 };
}
