/**
 * The one place that knows where the serving protos live and how they are loaded, shared by the server
 * (src/api/proto.ts, through this package's `./protos` export) and the client (protos.ts). It imports only
 * @grpc/proto-loader, so the client stays free of the server's import graph (engine, registry, sharp, pino).
 *
 * The loader options are the contract with the generated types in ./gen (scripts/gen-proto.mjs uses the same
 * flags): keepCase, longs and enums as strings, defaults, oneofs.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as protoLoader from '@grpc/proto-loader';

export const LOADER_OPTIONS: Readonly<protoLoader.Options> = Object.freeze({
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
});

export const POLICY_PROTO = 'dust/serving/v1/policy.proto';
export const ADMIN_PROTO = 'dust/serving/v1/admin.proto';
export const POLICY_SERVICE_NAME = 'dust.serving.v1.PolicyService';
export const ADMIN_SERVICE_NAME = 'dust.serving.v1.AdminService';
export const HEALTH_SERVICE_NAME = 'grpc.health.v1.Health';
/** grpc-health-check's health.proto, kept beside ours so that the client needs no health-check library. */
export const HEALTH_PROTO = 'grpc/health/v1/health.proto';

/**
 * The proto/ folder nearest above this file: the package's own copy (clients/typescript/proto, made by its build
 * and shipped in its tarball) from dist/, or the repository's proto/ from src/ when that copy is absent.
 */
function protoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = path.join(dir, 'proto');
    if (existsSync(path.join(candidate, POLICY_PROTO)) && existsSync(path.join(candidate, HEALTH_PROTO))) return candidate;
    dir = path.dirname(dir);
  }
  throw new Error(`${POLICY_PROTO} not found above ${fileURLToPath(import.meta.url)}`);
}

export const PROTO_ROOT = protoRoot();

/**
 * PolicyService, AdminService and grpc.health.v1.Health, freshly loaded: callers may wrap the method
 * definitions (the server does) without affecting each other.
 */
export function loadServingDefinition(): protoLoader.PackageDefinition {
  return protoLoader.loadSync([POLICY_PROTO, ADMIN_PROTO, HEALTH_PROTO], { ...LOADER_OPTIONS, includeDirs: [PROTO_ROOT] });
}
