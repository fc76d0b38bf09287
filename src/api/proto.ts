/**
 * The serving protos on the server, loaded through the client package's `./protos` export: the loader the client
 * uses too, with the options the type generator used (scripts/gen-proto.mjs), so the generated types
 * (@dust-serve/client/gen/...) describe exactly the objects handlers see.
 */
import * as grpc from '@grpc/grpc-js';
import type * as protoLoader from '@grpc/proto-loader';
import type { ProtoGrpcType as AdminProtos } from '@dust-serve/client/gen/admin';
import { loadServingDefinition } from '@dust-serve/client/protos';

export { LOADER_OPTIONS, PROTO_ROOT, POLICY_PROTO, POLICY_SERVICE_NAME, ADMIN_SERVICE_NAME } from '@dust-serve/client/protos';

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
