import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ModelPackageError } from '../errors/index.js';
import { DEFAULT_PACKAGE_LIMITS, readPackage } from './index.js';
import type { PackageLocation } from './repository-scan.js';

const TINY = path.resolve('models/dust-tiny/1');
const PASSWD = readFileSync('/etc/passwd');
const PASSWD_LINE = PASSWD.toString('utf8').split('\n')[0];
const PASSWD_SHA = createHash('sha256').update(PASSWD).digest('hex');
const WRONG = `sha256:${'0'.repeat(64)}`;

const roots: string[] = [];
afterEach(() => {
  for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
});

/** dust-tiny copied as m/1 of a fresh repository, its manifest edited. */
function tinyPackage(edit: (m: Record<string, any>, dir: string) => void = () => undefined): PackageLocation {
  const root = mkdtempSync(path.join(os.tmpdir(), 'dust-package-'));
  roots.push(root);
  const dir = path.join(root, 'm', '1');
  cpSync(TINY, dir, { recursive: true });
  const file = path.join(dir, 'manifest.json');
  const m = JSON.parse(readFileSync(file, 'utf8')) as Record<string, any>;
  m.name = 'm';
  m.version = 1;
  edit(m, dir);
  writeFileSync(file, JSON.stringify(m));
  return { name: 'm', version: 1, dir };
}

/** The refusal of a package, checked to be a ModelPackageError that quotes nothing of /etc/passwd. */
async function refusal(loc: PackageLocation, options: Parameters<typeof readPackage>[1] = {}): Promise<string> {
  const err = await readPackage(loc, options).then(
    () => new Error('the package was accepted'),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ModelPackageError);
  const text = JSON.stringify({ message: (err as Error).message, cause: String((err as Error).cause ?? '') });
  expect(text).not.toContain(PASSWD_LINE.slice(0, 10));
  expect(text).not.toContain(PASSWD_SHA);
  expect(text).not.toContain(PASSWD_SHA.slice(0, 12));
  return (err as Error).message;
}

describe('readPackage confinement', () => {
  it('reads a good package; the tokenizer text is the verified bytes, the graph paths are resolved inside the folder', async () => {
    const loc = tinyPackage();
    const pkg = await readPackage(loc);
    expect(pkg.tokenizerJson).toBe(readFileSync(path.join(TINY, 'tokenizer.json'), 'utf8'));
    expect(pkg.vlmPath.endsWith(`${path.sep}vlm.onnx`)).toBe(true);
  });

  it('accepts a link that stays inside the package', async () => {
    const loc = tinyPackage((m, dir) => {
      symlinkSync('tokenizer.json', path.join(dir, 'tok-link.json'));
      m.text.tokenizer = 'tok-link.json';
    });
    await expect(readPackage(loc)).resolves.toMatchObject({ tokenizerPath: expect.stringMatching(/tokenizer\.json$/) });
  });

  it('refuses a files entry with ../ or an absolute path by its field name', async () => {
    const up = tinyPackage((m) => (m.files['../../../../etc/passwd'] = WRONG));
    expect(await refusal(up)).toMatch(/files\["\.\.\/\.\.\/\.\.\/\.\.\/etc\/passwd"\]: the name must stay inside the package folder/);
    const abs = tinyPackage((m) => (m.files['/etc/passwd'] = `sha256:${PASSWD_SHA}`));
    expect(await refusal(abs)).toMatch(/files\["\/etc\/passwd"\]: the name must be relative/);
  });

  it('refuses a files entry that is a link to /etc/passwd, whatever digest it claims', async () => {
    for (const digest of [WRONG, `sha256:${PASSWD_SHA}`]) {
      const loc = tinyPackage((m, dir) => {
        symlinkSync('/etc/passwd', path.join(dir, 'extra.bin'));
        m.files['extra.bin'] = digest;
      });
      expect(await refusal(loc)).toMatch(/files\["extra\.bin"\] resolves outside the package folder/);
    }
  });

  it('refuses a tokenizer outside the package, by path or by link, without reading it', async () => {
    const byPath = tinyPackage((m) => (m.text.tokenizer = '../../../../../../etc/passwd'));
    expect(await refusal(byPath)).toMatch(/text\.tokenizer must stay inside the package folder/);
    const byLink = tinyPackage((m, dir) => {
      symlinkSync('/etc/passwd', path.join(dir, 'evil.json'));
      m.text.tokenizer = 'evil.json';
    });
    expect(await refusal(byLink)).toMatch(/text\.tokenizer resolves outside the package folder/);
  });

  it('refuses a manifest.json that links out', async () => {
    const loc = tinyPackage();
    rmSync(path.join(loc.dir, 'manifest.json'));
    symlinkSync('/etc/passwd', path.join(loc.dir, 'manifest.json'));
    expect(await refusal(loc)).toMatch(/manifest\.json resolves outside the package folder/);
  });

  it('refuses a link to /dev/zero at once', async () => {
    const loc = tinyPackage((m, dir) => {
      rmSync(path.join(dir, 'vlm.onnx'));
      symlinkSync('/dev/zero', path.join(dir, 'vlm.onnx'));
    });
    const t0 = performance.now();
    expect(await refusal(loc)).toMatch(/files\["vlm\.onnx"\] resolves outside the package folder/);
    expect(performance.now() - t0).toBeLessThan(DEFAULT_PACKAGE_LIMITS.stallMs);
  });

  // Creating a device node needs root.
  it.runIf(process.getuid?.() === 0)('refuses a device node inside the folder without opening it', async () => {
    const loc = tinyPackage((m, dir) => {
      execFileSync('mknod', [path.join(dir, 'zero'), 'c', '1', '5']);
      m.files.zero = WRONG;
    });
    expect(await refusal(loc)).toMatch(/files\["zero"\] is a character device; only regular files are read/);
  });

  it('refuses a FIFO without waiting for a writer, and a folder, as not regular files', async () => {
    const fifo = tinyPackage((m, dir) => {
      execFileSync('mkfifo', [path.join(dir, 'pipe')]);
      m.files.pipe = WRONG;
    });
    expect(await refusal(fifo)).toMatch(/files\["pipe"\] is a FIFO; only regular files are read/);
    const dot = tinyPackage((m) => (m.text.tokenizer = 'sub/..'));
    expect(await refusal(dot)).toMatch(/text\.tokenizer must name a file/);
    const folder = tinyPackage((m, dir) => {
      execFileSync('mkdir', [path.join(dir, 'sub')]);
      m.text.tokenizer = 'sub';
    });
    expect(await refusal(folder)).toMatch(/text\.tokenizer is a folder; only regular files are read/);
  });

  it('refuses files over their limit before reading them', async () => {
    const big = tinyPackage();
    expect(await refusal(big, { limits: { ...DEFAULT_PACKAGE_LIMITS, fileBytes: 1000 } })).toMatch(
      /files\["[a-z]+\.onnx"\] is \d+ bytes, more than the limit of 1000/,
    );
    const sparse = tinyPackage((_, dir) => truncateSync(path.join(dir, 'tokenizer.json'), DEFAULT_PACKAGE_LIMITS.tokenizerBytes + 1));
    expect(await refusal(sparse)).toMatch(/text\.tokenizer is \d+ bytes, more than the limit of 67108864/);
    const manifest = tinyPackage((m) => (m.description = 'x'.repeat(DEFAULT_PACKAGE_LIMITS.manifestBytes)));
    expect(await refusal(manifest)).toMatch(/manifest\.json is \d+ bytes, more than the limit/);
  });

  it('says a digest is wrong without the digest of what it read', async () => {
    const loc = tinyPackage((_, dir) => writeFileSync(path.join(dir, 'denoiser.onnx'), PASSWD));
    const message = await refusal(loc);
    expect(message).toMatch(
      /files\["denoiser\.onnx"\]: denoiser\.onnx has sha256 other than the manifest's [0-9a-f]{12}\.\.\.; the file is corrupt or the manifest is stale/,
    );
  });

  it('says a manifest is not JSON without quoting it', async () => {
    const loc = tinyPackage();
    writeFileSync(path.join(loc.dir, 'manifest.json'), PASSWD);
    expect(await refusal(loc)).toMatch(/manifest\.json: not valid JSON$/);
  });

  it('refuses a package folder that links out of the repository unless allowed', async () => {
    const outside = tinyPackage();
    const root = mkdtempSync(path.join(os.tmpdir(), 'dust-package-'));
    roots.push(root);
    execFileSync('mkdir', ['-p', path.join(root, 'm')]);
    symlinkSync(outside.dir, path.join(root, 'm', '1'));
    const loc = { name: 'm', version: 1, dir: path.join(root, 'm', '1') };
    expect(await refusal(loc, { repository: root })).toMatch(
      /the package folder is a link out of the model repository; the operator may allow it with --allow-package-symlinks/,
    );
    await expect(readPackage(loc, { repository: root, allowSymlinks: true })).resolves.toMatchObject({ manifest: { name: 'm' } });
  });
});
