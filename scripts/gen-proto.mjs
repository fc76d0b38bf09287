// Generates TypeScript types for the protos into src/gen/ (never edited by hand).
// proto-loader-gen-types ships with @grpc/proto-loader; the same loader options are used at run time
// (src/api/proto.ts), so the generated types describe exactly the objects the server sees.
import { execFileSync } from 'node:child_process';
import { rmSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);
const bin = path.join(path.dirname(require.resolve('@grpc/proto-loader/package.json')), 'build/bin/proto-loader-gen-types.js');
const out = 'src/gen';
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
execFileSync(process.execPath, [
  bin,
  'dust/serving/v1/policy.proto',
  'dust/serving/v1/admin.proto',
  '--keepCase', '--longs=String', '--enums=String', '--defaults', '--oneofs', '--bytes=Buffer',
  '--grpcLib=@grpc/grpc-js', '--importFileExtension=.js', '--outDir', out, '--includeDirs', 'proto',
], { stdio: 'inherit' });
