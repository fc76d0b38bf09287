/**
 * The least a gRPC health check can cost here: a grpc-js server with nothing but grpc.health.v1 (the same
 * library and transport as dust-serve), for bench/health-floor.ts. Prints its port on stdout once bound.
 */
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';

const server = new grpc.Server();
new HealthImplementation({ '': 'SERVING' }).addToServer(server);
server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) throw err;
  process.stdout.write(`${port}\n`);
});
