export { startServer, DEFAULT_KEEPALIVE_TIME_MS } from './server.js';
export type { RunningServer, ServerDeps } from './server.js';
export { loadProtos, LOADER_OPTIONS, PROTO_ROOT, POLICY_PROTO, POLICY_SERVICE_NAME, ADMIN_SERVICE_NAME } from './proto.js';
export { mapError, toServiceError } from './status.js';
