/**
 * Fuzzing package manifests against the loader (docs/model-package.md, "Confinement"): a copy of dust-tiny whose
 * manifest names hostile paths in `files` and `text.tokenizer`, each of which may exist in the package as a link
 * out (to /etc/passwd, /dev/zero, the repository), a link inside, a FIFO, a folder or a regular file. Every load
 * must end, quickly, in a package whose files all lie inside its folder or a ModelPackageError that shows nothing
 * of the outside file. DUST_FUZZ_RUNS multiplies the runs, DUST_FUZZ_SEED changes the seed.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { addPackage, OUTSIDE_SHA256, OUTSIDE_TEXT } from './support/hostile/packages.js';
import { ModelPackageError } from '../src/errors/index.js';
import { readPackage } from '../src/model/index.js';
import { TINY_DIR } from './support/harness.js';

const RUNS = Number(process.env.DUST_FUZZ_RUNS ?? 1);
const SEED = Number(process.env.DUST_FUZZ_SEED ?? 20_260_707);
const REFUSED_WITHIN_MS = 10_000;

const work = mkdtempSync(path.join(os.tmpdir(), 'dust-package-fuzz-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** What a name may be on disk. */
type Planted = 'absent' | 'passwd-link' | 'zero-link' | 'repository-link' | 'inside-link' | 'fifo' | 'folder' | 'file';
const planted = fc.constantFrom<Planted>('absent', 'passwd-link', 'zero-link', 'repository-link', 'inside-link', 'fifo', 'folder', 'file');

/** Names a hostile manifest may give. */
const hostileName = fc.oneof(
  fc.constantFrom(
    '../../../../../../etc/passwd',
    '/etc/passwd',
    '/dev/zero',
    '..',
    '.',
    'a/../../x',
    'sub/../x.bin',
    'x.bin',
    'tokenizer.json',
    'vlm.onnx',
    'a\\b',
    'x\0y',
  ),
  fc.stringMatching(/^[a-z./]{1,12}$/),
  fc.string({ unit: 'binary', maxLength: 20 }),
);

function plant(dir: string, name: string, what: Planted): void {
  const at = path.join(dir, name);
  // Only names that are plain paths inside the folder get something planted.
  if (what === 'absent' || name.includes('\0') || path.isAbsolute(name) || !path.resolve(at).startsWith(`${dir}${path.sep}`)) return;
  try {
    mkdirSync(path.dirname(at), { recursive: true });
    rmSync(at, { recursive: true, force: true });
    if (what === 'passwd-link') symlinkSync('/etc/passwd', at);
    else if (what === 'zero-link') symlinkSync('/dev/zero', at);
    else if (what === 'repository-link') symlinkSync(path.resolve(dir, '..', '..'), at);
    else if (what === 'inside-link') symlinkSync(path.join(dir, 'tokenizer.json'), at);
    else if (what === 'fifo') execFileSync('mkfifo', [at]);
    else if (what === 'folder') mkdirSync(at);
    else writeFileSync(at, 'inside');
  } catch {
    // A name that cannot be made (a component is a file) stays as it is: the loader meets it all the same.
  }
}

let n = 0;

describe('fuzzing package manifests', () => {
  it('hostile files entries and tokenizer names: confined or refused, never a leak, never slow', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(hostileName, planted, fc.boolean()), { maxLength: 4 }),
        fc.option(fc.tuple(hostileName, planted)),
        async (entries, tokenizer) => {
          const root = path.join(work, String(n++));
          const dir = addPackage(TINY_DIR, root, 'm', (m, d) => {
            for (const [name, what, rightDigest] of entries) {
              plant(d, name, what);
              m.files[name] = rightDigest ? `sha256:${OUTSIDE_SHA256}` : `sha256:${'0'.repeat(64)}`;
            }
            if (tokenizer) {
              plant(d, tokenizer[0], tokenizer[1]);
              m.text.tokenizer = tokenizer[0];
            }
          });
          const t0 = performance.now();
          const outcome = await readPackage({ name: 'm', version: 1, dir }).then(
            (pkg) => ({ pkg, err: undefined }),
            (err: unknown) => ({ pkg: undefined, err }),
          );
          const real = realpathSync(dir);
          rmSync(root, { recursive: true, force: true });
          if (outcome.pkg) {
            for (const p of [outcome.pkg.vlmPath, outcome.pkg.denoiserPath, outcome.pkg.tokenizerPath]) expect(p.startsWith(`${real}${path.sep}`)).toBe(true);
            expect(outcome.pkg.tokenizerJson).not.toContain(OUTSIDE_TEXT);
          } else {
            expect(outcome.err).toBeInstanceOf(ModelPackageError);
            const err = outcome.err as Error;
            const shown = `${err.message} ${String(err.cause ?? '')}`;
            expect(shown).not.toContain(OUTSIDE_TEXT.slice(0, 10));
            // No digest in full: not of what a name reached, and the manifest's own claim only cut.
            expect(shown).not.toMatch(/[0-9a-f]{64}/);
          }
          expect(performance.now() - t0).toBeLessThan(REFUSED_WITHIN_MS);
        },
      ),
      { numRuns: Math.max(1, Math.round(60 * RUNS)), seed: SEED },
    );
  });
});
