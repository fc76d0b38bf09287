export {
  loadServingDefinition,
  LOADER_OPTIONS,
  PROTO_ROOT,
  POLICY_PROTO,
  POLICY_SERVICE_NAME,
  ADMIN_SERVICE_NAME,
  HEALTH_SERVICE_NAME,
} from './serving-protos.js';
