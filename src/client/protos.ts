/**
 * The serving protos as the client sees them: the method definitions (path, serializer, deserializer) of
 * PolicyService, AdminService and grpc.health.v1.Health, loaded once per process.
 *
 * The loader options are the contract with the generated types in src/gen (scripts/gen-proto.mjs) and with
 * src/api/proto.ts; a unit test checks they stay equal to the server's LOADER_OPTIONS. The client loads the
 * files itself rather than through `../api/index.js` because that index also exports the server, whose import
 * graph (engine, model registry, preprocessing with sharp, pino) a robot program embedding the client should
 * not pay for.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import type { AdminServiceDefinition } from '../gen/dust/serving/v1/AdminService.js';
import type { PolicyServiceDefinition } from '../gen/dust/serving/v1/PolicyService.js';

export const CLIENT_LOADER_OPTIONS: Readonly<protoLoader.Options> = Object.freeze({
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
});

const POLICY_PROTO = 'dust/serving/v1/policy.proto';
const ADMIN_PROTO = 'dust/serving/v1/admin.proto';
const POLICY_SERVICE = 'dust.serving.v1.PolicyService';
const ADMIN_SERVICE = 'dust.serving.v1.AdminService';
const HEALTH_SERVICE = 'grpc.health.v1.Health';

export interface HealthCheckRequest {
  service: string;
}
export interface HealthCheckResponse {
  /** UNKNOWN | SERVING | NOT_SERVING | SERVICE_UNKNOWN, or the number of a status this proto does not know. */
  status: string | number;
}
export interface HealthServiceDefinition {
  Check: protoLoader.MethodDefinition<HealthCheckRequest, HealthCheckResponse, HealthCheckRequest, HealthCheckResponse>;
}

export interface ClientProtos {
  readonly policy: PolicyServiceDefinition;
  readonly admin: AdminServiceDefinition;
  readonly health: HealthServiceDefinition;
}

/** proto/ at the package root, from src/client (tsx, vitest) or dist/src/client (the build). */
function protoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = path.join(dir, 'proto');
    if (existsSync(path.join(candidate, POLICY_PROTO))) return candidate;
    dir = path.dirname(dir);
  }
  throw new Error(`${POLICY_PROTO} not found above ${fileURLToPath(import.meta.url)}`);
}

let cached: ClientProtos | undefined;

export function clientProtos(): ClientProtos {
  if (cached) return cached;
  const definition = protoLoader.loadSync([POLICY_PROTO, ADMIN_PROTO, healthProtoPath], {
    ...CLIENT_LOADER_OPTIONS,
    includeDirs: [protoRoot(), path.dirname(healthProtoPath)],
  });
  cached = {
    policy: definition[POLICY_SERVICE] as unknown as PolicyServiceDefinition,
    admin: definition[ADMIN_SERVICE] as unknown as AdminServiceDefinition,
    health: definition[HEALTH_SERVICE] as unknown as HealthServiceDefinition,
  };
  return cached;
}
