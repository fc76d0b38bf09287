export { startServer } from './server.js';
export type { RunningServer, ServerDeps } from './server.js';
export { loadProtos, POLICY_SERVICE_NAME } from './proto.js';
