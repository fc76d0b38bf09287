/**
 * Integration-test helpers for versions and experiments: a repository with dust-tiny as several versions of
 * one model, a typed client on a test server, and robot requests for it.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DustClient, DustClientError, type PredictRequestInit } from '@dust-serve/client';
import type { Manifest, MinMax } from '../../src/model/index.js';
import { jpeg, startTestServer, tempRepository, TINY_DIR, type TestServer } from './harness.js';

export const MODEL = 'dust-tiny';
const manifest = JSON.parse(readFileSync(path.join(TINY_DIR, 'manifest.json'), 'utf8')) as Manifest;
export const EMBODIMENT = Object.keys(manifest.embodiments)[0];
const stateDim = manifest.embodiments[EMBODIMENT].state_dim;

/** dust-tiny copied as versions `versions` of MODEL. */
export function versionsRepository(versions: readonly number[]): { root: string; remove(): void } {
  return tempRepository(versions.map((version) => ({ from: TINY_DIR, name: MODEL, version })));
}

/** Edits a copied version's manifest in place (its file digests do not cover manifest.json). */
export function editManifest(root: string, version: number, edit: (m: Manifest) => Manifest): void {
  const file = path.join(root, MODEL, String(version), 'manifest.json');
  writeFileSync(file, JSON.stringify(edit(JSON.parse(readFileSync(file, 'utf8')) as Manifest)));
}

/** The manifest with the first embodiment's `state` or `action` statistics replaced. */
export function withStatistics(m: Manifest, which: 'state' | 'action', edit: (stats: MinMax) => MinMax): Manifest {
  const [name, emb] = Object.entries(m.embodiments)[0];
  const normalization = { ...emb.normalization, [which]: edit(emb.normalization[which]) };
  return { ...m, embodiments: { ...m.embodiments, [name]: { ...emb, normalization } } };
}

let images: PredictRequestInit['images'] | undefined;

/** A valid request of `robotId` (small JPEG images, fixed state), with overrides. */
export async function robotRequest(robotId: string, over: Partial<PredictRequestInit> = {}): Promise<PredictRequestInit> {
  images ??= [
    { camera: 'front', encoding: 'jpeg', data: await jpeg(64, 64, [200, 40, 40]) },
    { camera: 'wrist', encoding: 'jpeg', data: await jpeg(64, 64, [40, 40, 200]) },
  ];
  return {
    robotId,
    embodiment: EMBODIMENT,
    images,
    state: Array.from({ length: stateDim }, (_, i) => 0.1 * i),
    instruction: 'push the red block left',
    sampling: { actionSteps: 2, visionSteps: 4 },
    ...over,
  };
}

export function clientOf(address: string, token?: string): DustClient {
  return new DustClient(address, { defaultDeadlineMs: 30_000, token });
}

/** The status name a call fails with (throws if it succeeds or fails with something else than a DustClientError). */
export async function failureCode(call: Promise<unknown>): Promise<string> {
  const err = await call.then(
    () => new Error('the call succeeded but was expected to fail'),
    (e: unknown) => e,
  );
  if (!(err instanceof DustClientError)) throw err;
  return err.codeName;
}

export interface VersionsServer {
  readonly repo: { readonly root: string; remove(): void };
  readonly server: TestServer;
  readonly client: DustClient;
  close(): Promise<void>;
}

/** A test server (no warm-up) on a repository of dust-tiny as `versions`, prepared by `prepare` before it starts. */
export async function serveVersions(versions: readonly number[], prepare: (root: string) => void = () => undefined): Promise<VersionsServer> {
  const repo = versionsRepository(versions);
  prepare(repo.root);
  const server = await startTestServer({ modelRepository: repo.root, warmup: false });
  const client = clientOf(server.address);
  return {
    repo,
    server,
    client,
    async close() {
      client.close();
      await server.close();
      repo.remove();
    },
  };
}
