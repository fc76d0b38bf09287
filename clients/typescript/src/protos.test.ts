import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { clientProtos } from './protos.js';

describe('client protos', () => {
  it('expose PolicyService, AdminService and Health methods by their wire paths', () => {
    const { policy, admin, health } = clientProtos();
    expect(policy.Predict.path).toBe('/dust.serving.v1.PolicyService/Predict');
    expect(policy.StreamPredict.requestStream && policy.StreamPredict.responseStream).toBe(true);
    expect(admin.GetExperiment.path).toBe('/dust.serving.v1.AdminService/GetExperiment');
    expect(health.Check.path).toBe('/grpc.health.v1.Health/Check');
  });

  it('import nothing of the server (api, engine, model, preprocess, telemetry)', () => {
    // The client is its own package: a robot program embedding it must not load sharp, ONNX Runtime or pino.
    const seen = new Set<string>();
    const visit = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      const source = readFileSync(file, 'utf8');
      for (const [, spec] of source.matchAll(/^(?:import|export)\s+(?!type\b)[^'"]*from\s+'(\.[^']+)'/gm)) {
        visit(path.resolve(path.dirname(file), spec.replace(/\.js$/, '.ts')));
      }
    };
    const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
    visit(path.join(packageRoot, 'src/index.ts'));
    const outside = [...seen].filter((f) => path.relative(path.join(packageRoot, 'src'), f).startsWith('..'));
    expect(outside).toEqual([]);
    const manifest = JSON.parse(readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    expect(Object.keys(manifest.dependencies).sort()).toEqual(['@grpc/grpc-js', '@grpc/proto-loader']);
  });
});
