// Docker HEALTHCHECK and Kubernetes exec probe without extra binaries (the runtime image has no shell, curl or
// grpc_health_probe): grpc.health.v1.Health/Check for the server (service "") on this container's port. Exit 0
// when SERVING, 1 otherwise, as Docker and the kubelet expect. The server reports SERVING once a model version
// is READY and NOT_SERVING while it drains.
//
// With TLS on (DUST_TLS_CERT), the check speaks TLS to its own server over loopback without verifying the
// certificate (it names the pod's Service, not 127.0.0.1); Kubernetes' native gRPC probes cannot speak TLS at all.
// With mutual TLS (DUST_TLS_CLIENT_CA) it presents the server's own certificate and key, so that CA must also
// have issued the server's certificate.
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { service } from 'grpc-health-check';

const DEFAULT_PORT = '50051';
const DEADLINE_MS = 3000;

function credentials() {
  const { DUST_TLS_CERT: cert, DUST_TLS_KEY: key, DUST_TLS_CLIENT_CA: clientCa } = process.env;
  if (!cert) return grpc.credentials.createInsecure();
  const identity = clientCa ? [readFileSync(key), readFileSync(cert)] : [null, null];
  return grpc.credentials.createSsl(null, ...identity, { rejectUnauthorized: false });
}

const Health = grpc.makeGenericClientConstructor(service, 'Health');
const client = new Health(`127.0.0.1:${process.env.DUST_PORT || DEFAULT_PORT}`, credentials());
client.Check({ service: '' }, { deadline: Date.now() + DEADLINE_MS }, (err, res) => {
  const status = err ? `error: ${err.details || err.message}` : res.status;
  if (status !== 'SERVING') console.error(`dust-serve health: ${status}`);
  client.close();
  process.exit(status === 'SERVING' ? 0 : 1);
});
