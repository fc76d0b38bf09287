/**
 * The client package as a robot installs it: its tarball holds the build and the .proto files, and it loads and
 * reaches the protos from outside this repository with nothing but grpc-js and proto-loader beside it.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const ROOT = path.resolve('.');
const PACKAGE = path.join(ROOT, 'clients/typescript');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'dust-client-package-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface PackResult {
  filename: string;
  files: { path: string }[];
}

describe('@dust-serve/client tarball', () => {
  it('ships the build, the types and the protos, and no tests or sources', async () => {
    // The build ran in the global setup; --ignore-scripts packs it as it is.
    const { stdout } = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', tmp], { cwd: PACKAGE });
    const [pack] = JSON.parse(stdout) as PackResult[];
    const files = pack.files.map((f) => f.path);
    for (const f of ['package.json', 'dist/index.js', 'dist/index.d.ts', 'dist/serving-protos.js', 'dist/gen/dust/serving/v1/PredictRequest.d.ts']) {
      expect(files, f).toContain(f);
    }
    for (const f of [
      'proto/dust/serving/v1/policy.proto',
      'proto/dust/serving/v1/admin.proto',
      'proto/dust/serving/v1/types.proto',
      'proto/grpc/health/v1/health.proto',
    ]) {
      expect(files, f).toContain(f);
    }
    expect(files.filter((f) => f.includes('.test.') || f.startsWith('src/'))).toEqual([]);

    // Installed by hand beside grpc-js and proto-loader only (the registry is not needed for that).
    const project = path.join(tmp, 'robot');
    mkdirSync(path.join(project, 'node_modules/@dust-serve'), { recursive: true });
    await run('tar', ['-xzf', path.join(tmp, pack.filename), '-C', path.join(project, 'node_modules/@dust-serve')]);
    await run('mv', [path.join(project, 'node_modules/@dust-serve/package'), path.join(project, 'node_modules/@dust-serve/client')]);
    symlinkSync(path.join(ROOT, 'node_modules/@grpc'), path.join(project, 'node_modules/@grpc'));
    const script = `
      const { DustClient } = await import('@dust-serve/client');
      const { PROTO_ROOT, loadServingDefinition } = await import('@dust-serve/client/protos');
      const services = Object.keys(loadServingDefinition()).filter((k) => k.endsWith('Service') || k.endsWith('.Health'));
      const client = new DustClient('127.0.0.1:1');
      client.close();
      console.log(JSON.stringify({ root: PROTO_ROOT, services, client: typeof DustClient }));`;
    const loaded = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: project });
    const out = JSON.parse(loaded.stdout) as { root: string; services: string[]; client: string };
    expect(out.root).toBe(path.join(realpathSync(project), 'node_modules/@dust-serve/client/proto'));
    expect(out.services.sort()).toEqual(['dust.serving.v1.AdminService', 'dust.serving.v1.PolicyService', 'grpc.health.v1.Health']);
    expect(out.client).toBe('function');
    const manifest = JSON.parse(readFileSync(path.join(project, 'node_modules/@dust-serve/client/package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    expect(Object.keys(manifest.dependencies).sort()).toEqual(['@grpc/grpc-js', '@grpc/proto-loader']);
  });
});
