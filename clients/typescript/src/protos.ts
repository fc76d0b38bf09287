/**
 * The serving protos as the client sees them: the method definitions (path, serializer, deserializer) of
 * PolicyService, AdminService and grpc.health.v1.Health, loaded once per process through serving-protos.ts, the
 * loader the server uses too (and nothing else of the server's).
 */
import type * as protoLoader from '@grpc/proto-loader';
import type { AdminServiceDefinition } from './gen/dust/serving/v1/AdminService.js';
import type { PolicyServiceDefinition } from './gen/dust/serving/v1/PolicyService.js';
import { ADMIN_SERVICE_NAME, HEALTH_SERVICE_NAME, loadServingDefinition, POLICY_SERVICE_NAME } from './serving-protos.js';

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

let cached: ClientProtos | undefined;

export function clientProtos(): ClientProtos {
  if (cached) return cached;
  const definition = loadServingDefinition();
  cached = {
    policy: definition[POLICY_SERVICE_NAME] as unknown as PolicyServiceDefinition,
    admin: definition[ADMIN_SERVICE_NAME] as unknown as AdminServiceDefinition,
    health: definition[HEALTH_SERVICE_NAME] as unknown as HealthServiceDefinition,
  };
  return cached;
}
