// Copies the .proto files the client loads (the serving protos and grpc.health.v1) into clients/typescript/proto,
// so the package works when installed from its tarball, away from this repository's proto/.
import { cpSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'clients/typescript/proto');
rmSync(out, { recursive: true, force: true });
for (const dir of ['dust/serving/v1', 'grpc/health/v1']) {
  cpSync(path.join(root, 'proto', dir), path.join(out, dir), { recursive: true });
}
