// Docker HEALTHCHECK without extra binaries (the runtime image has no shell, curl or grpc_health_probe):
// grpc.health.v1.Health/Check for the server (service "") on this container's port. Exit 0 when SERVING,
// 1 otherwise, as Docker expects. The server reports SERVING once a model version is READY and NOT_SERVING
// while it drains.
import * as grpc from '@grpc/grpc-js';
import { service } from 'grpc-health-check';

const DEFAULT_PORT = '50051';
const DEADLINE_MS = 3000;

const Health = grpc.makeGenericClientConstructor(service, 'Health');
const client = new Health(`127.0.0.1:${process.env.DUST_PORT || DEFAULT_PORT}`, grpc.credentials.createInsecure());
client.Check({ service: '' }, { deadline: Date.now() + DEADLINE_MS }, (err, res) => {
  const status = err ? `error: ${err.details || err.message}` : res.status;
  if (status !== 'SERVING') console.error(`dust-serve health: ${status}`);
  client.close();
  process.exit(status === 'SERVING' ? 0 : 1);
});
