/**
 * Hostile model packages (docs/model-package.md, "Confinement"), each a copy of a good package (`template`,
 * dust-tiny in the tests and benches) with one way out of its folder: for tests that put them beside a good
 * package in a repository, and for the abuse and soak benches that load them into a serving server.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, readFileSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DEFAULT_PACKAGE_LIMITS } from '../../../src/model/index.js';

/** What must never show: the first line of /etc/passwd, and its sha256. */
export const OUTSIDE_FILE = '/etc/passwd';
export const OUTSIDE_TEXT = readFileSync(OUTSIDE_FILE, 'utf8').split('\n')[0];
export const OUTSIDE_SHA256 = createHash('sha256').update(readFileSync(OUTSIDE_FILE)).digest('hex');

export interface HostilePackage {
  /** The model's name (its folder in the repository); version 1. */
  readonly name: string;
  /** What the refusal must say. */
  readonly reason: RegExp;
}

type Manifest = Record<string, any>;

/** `template` copied to `<root>/<name>/<version>`, its manifest naming that place and edited. */
export function addPackage(template: string, root: string, name: string, edit: (m: Manifest, dir: string) => void = () => undefined, version = 1): string {
  const dir = path.join(root, name, String(version));
  rmSync(dir, { recursive: true, force: true });
  cpSync(template, dir, { recursive: true });
  const file = path.join(dir, 'manifest.json');
  const m = JSON.parse(readFileSync(file, 'utf8')) as Manifest;
  m.name = name;
  m.version = version;
  edit(m, dir);
  writeFileSync(file, JSON.stringify(m));
  return dir;
}

export const replaceWithLink = (dir: string, file: string, target: string) => {
  rmSync(path.join(dir, file));
  symlinkSync(target, path.join(dir, file));
};

/** Adds one package per way out, copies of `template`, to the repository at `root`. */
export function addHostilePackages(template: string, root: string): HostilePackage[] {
  const out: HostilePackage[] = [];
  const add = (name: string, reason: RegExp, edit: (m: Manifest, dir: string) => void) => {
    addPackage(template, root, name, edit);
    out.push({ name, reason });
  };
  add('escape-dotdot', /files\["\.\.\/\.\.\/\.\.\/\.\.\/\.\.\/\.\.\/etc\/passwd"\]: the name must stay inside the package folder/, (m) => {
    m.files['../../../../../../etc/passwd'] = `sha256:${OUTSIDE_SHA256}`;
  });
  add('escape-absolute', /files\["\/etc\/passwd"\]: the name must be relative to the package folder/, (m) => {
    m.files[OUTSIDE_FILE] = `sha256:${'0'.repeat(64)}`;
  });
  add('link-passwd', /files\["denoiser\.onnx"\] resolves outside the package folder/, (_, dir) => replaceWithLink(dir, 'denoiser.onnx', OUTSIDE_FILE));
  add('link-zero', /files\["vlm\.onnx"\] resolves outside the package folder/, (_, dir) => replaceWithLink(dir, 'vlm.onnx', '/dev/zero'));
  add('fifo', /files\["weights\.bin"\] is a FIFO; only regular files are read/, (m, dir) => {
    execFileSync('mkfifo', [path.join(dir, 'weights.bin')]);
    m.files['weights.bin'] = `sha256:${'0'.repeat(64)}`;
  });
  add('tokenizer-outside', /text\.tokenizer resolves outside the package folder/, (m, dir) => {
    symlinkSync(OUTSIDE_FILE, path.join(dir, 'passwd.json'));
    m.text.tokenizer = 'passwd.json';
  });
  add('tokenizer-dotdot', /text\.tokenizer must stay inside the package folder/, (m) => {
    m.text.tokenizer = '../../../../../../etc/passwd';
  });
  add('manifest-link', /manifest\.json resolves outside the package folder/, () => undefined);
  // After the copy wrote its manifest: the manifest itself becomes the link.
  replaceWithLink(path.join(root, 'manifest-link', '1'), 'manifest.json', OUTSIDE_FILE);
  // A sparse file: its size is over the limit without the disk space.
  add('oversize', /text\.tokenizer is \d+ bytes, more than the limit of \d+/, (_, dir) => {
    truncateSync(path.join(dir, 'tokenizer.json'), DEFAULT_PACKAGE_LIMITS.tokenizerBytes + 1);
  });
  return out;
}

/** A package outside `root` and a model folder in it that links there: refused unless links out are allowed. */
export function addLinkedOutModel(template: string, root: string, outside: string, name: string, edit?: (m: Manifest, dir: string) => void): void {
  addPackage(template, outside, name, edit);
  symlinkSync(path.join(outside, name), path.join(root, name));
}

/** A repository entry that points nowhere. */
export function addDanglingEntry(root: string, name: string): void {
  mkdirSync(root, { recursive: true });
  symlinkSync(path.join(root, 'nothing-here'), path.join(root, name));
}
