// Generates TypeScript types for the protos into clients/typescript/src/gen/ (never edited by hand). They belong
// to the client package, whose public types use them; the server imports them as @dust-serve/client/gen/....
// proto-loader-gen-types ships with @grpc/proto-loader; the same loader options are used at run time
// (clients/typescript/src/serving-protos.ts), so the generated types describe exactly the objects the server sees.
import { execFileSync } from 'node:child_process';
import { rmSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const bin = path.join(path.dirname(require.resolve('@grpc/proto-loader/package.json')), 'build/bin/proto-loader-gen-types.js');
const out = path.join(root, 'clients/typescript/src/gen');
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
execFileSync(process.execPath, [
  bin,
  'dust/serving/v1/policy.proto',
  'dust/serving/v1/admin.proto',
  '--keepCase', '--longs=String', '--enums=String', '--defaults', '--oneofs', '--bytes=Buffer',
  '--grpcLib=@grpc/grpc-js', '--importFileExtension=.js', '--outDir', out, '--includeDirs', path.join(root, 'proto'),
], { stdio: 'inherit' });
