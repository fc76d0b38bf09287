/**
 * Reading a file a manifest names without leaving the package folder (docs/model-package.md, "Confinement"):
 * the path is resolved (links included) and must land inside the folder; only a regular file within its size
 * limit is opened; every disk operation is async (libuv's threadpool, never the event loop) and bounded in time.
 * Refusals are ModelPackageErrors that name the manifest field and never anything read from, or learnt
 * about, a file outside the package.
 */
import { createHash } from 'node:crypto';
import { constants, type Stats } from 'node:fs';
import { open, realpath, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { ModelPackageError } from '../errors/index.js';

/** Bytes read per call: large enough that hashing a graph costs few event-loop turns, small enough to stay responsive. */
const CHUNK_BYTES = 1024 * 1024;

/** Runs disk operations, each refused when it takes longer than `stallMs`. */
export type StallGuard = <T>(op: Promise<T>, what: string) => Promise<T>;

/**
 * A guard whose refusals say which operation stalled. The operation itself cannot be cancelled (a hung
 * read holds its threadpool thread); the load is refused and returns all the same, and what the operation
 * yields late is released.
 */
export function stallGuard(stallMs: number, where: string): StallGuard {
  return <T>(op: Promise<T>, what: string) => {
    let timer: NodeJS.Timeout | undefined;
    let stalled = false;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        stalled = true;
        reject(new ModelPackageError(`${where}: ${what} made no progress in ${stallMs} ms; the disk or mount is not answering`));
      }, stallMs);
    });
    void op.then(
      (late) => {
        if (stalled && isFileHandle(late)) void late.close().catch(() => undefined);
      },
      () => undefined,
    );
    return Promise.race([op, timeout]).finally(() => clearTimeout(timer));
  };
}

function isFileHandle(v: unknown): v is FileHandle {
  return typeof v === 'object' && v !== null && typeof (v as FileHandle).close === 'function' && typeof (v as FileHandle).fd === 'number';
}

/**
 * A catch handler for a disk operation: a stall's refusal passes through; any other error becomes a refusal
 * that carries its code alone (a message could carry the path a link points at).
 */
function refusedWith(message: (code: string) => string): (err: unknown) => never {
  return (err) => {
    if (err instanceof ModelPackageError) throw err;
    throw new ModelPackageError(message((err as NodeJS.ErrnoException).code ?? 'error'));
  };
}

/** True when `real` (a resolved path) is strictly inside the resolved folder `realDir`. */
export function isInside(realDir: string, real: string): boolean {
  return real.startsWith(realDir.endsWith(path.sep) ? realDir : `${realDir}${path.sep}`);
}

function kindOf(s: Stats): string {
  if (s.isDirectory()) return 'a folder';
  if (s.isFIFO()) return 'a FIFO';
  if (s.isSocket()) return 'a socket';
  if (s.isCharacterDevice()) return 'a character device';
  if (s.isBlockDevice()) return 'a block device';
  return 'not a regular file';
}

/** A regular file inside a package folder, opened for reading. */
interface ConfinedFile {
  /** The resolved path (no links left). */
  readonly path: string;
  readonly size: number;
  readonly handle: FileHandle;
}

export interface ConfinedFileSpec {
  /** The package folder as resolved (realpath). */
  readonly realDir: string;
  /** The path the manifest names, relative to the package folder. */
  readonly name: string;
  /** How the manifest names it, for messages: `text.tokenizer`, `files["vlm.onnx"]`. */
  readonly field: string;
  /** Largest accepted size in bytes. */
  readonly limit: number;
}

/** Resolves `spec.name` inside the package folder, as regular-file checks will need it. */
export async function resolveConfined(spec: ConfinedFileSpec, guard: StallGuard, where: string): Promise<string> {
  const real = await guard(realpath(path.join(spec.realDir, spec.name)), `resolving ${spec.field}`).catch(
    refusedWith((code) => `${where}: ${spec.field} cannot be resolved (${code}): missing, a dangling link or a link loop`),
  );
  if (!isInside(spec.realDir, real)) {
    throw new ModelPackageError(`${where}: ${spec.field} resolves outside the package folder; a package may name only files inside its own folder`);
  }
  return real;
}

/** Opens a resolved file inside the package when it is a regular file within the limit. */
async function openConfined(spec: ConfinedFileSpec, real: string, guard: StallGuard, where: string): Promise<ConfinedFile> {
  const checked = await guard(stat(real), `checking ${spec.field}`).catch(refusedWith((code) => `${where}: ${spec.field} cannot be read (${code})`));
  // Checked before opening: opening a device or a FIFO can block or have effects of its own.
  if (!checked.isFile()) throw new ModelPackageError(`${where}: ${spec.field} is ${kindOf(checked)}; only regular files are read`);
  if (checked.size > spec.limit) throw new ModelPackageError(`${where}: ${spec.field} is ${checked.size} bytes, more than the limit of ${spec.limit}`);
  // O_NOFOLLOW and O_NONBLOCK: should the path change into a link or a FIFO after the check, opening neither
  // follows it nor waits for a writer; the identity check below then refuses it.
  const flags = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
  const handle = await guard(open(real, flags), `opening ${spec.field}`).catch(refusedWith((code) => `${where}: ${spec.field} cannot be opened (${code})`));
  try {
    const opened = await guard(handle.stat(), `checking ${spec.field}`);
    if (!opened.isFile() || opened.ino !== checked.ino || opened.dev !== checked.dev) {
      throw new ModelPackageError(`${where}: ${spec.field} changed while it was being opened; load the package again once it is in place`);
    }
    return { path: real, size: opened.size, handle };
  } catch (err) {
    await handle.close();
    throw err;
  }
}

/**
 * Opens the resolved file `real` and reads it to its end in chunks, each handed to `onChunk`; refused when it
 * is no regular file within its limit, grows past the limit while being read, or a read stalls. Closes the file.
 */
async function readChunks(real: string, spec: ConfinedFileSpec, guard: StallGuard, where: string, onChunk: (chunk: Buffer) => void): Promise<number> {
  const file = await openConfined(spec, real, guard, where);
  const buffer = Buffer.allocUnsafe(Math.min(CHUNK_BYTES, Math.max(1, spec.limit + 1)));
  let total = 0;
  try {
    for (;;) {
      const { bytesRead } = await guard(file.handle.read(buffer, 0, buffer.length, total), `reading ${spec.field}`).catch(
        refusedWith((code) => `${where}: ${spec.field} cannot be read (${code})`),
      );
      if (bytesRead === 0) return total;
      total += bytesRead;
      if (total > spec.limit) throw new ModelPackageError(`${where}: ${spec.field} grew past the limit of ${spec.limit} bytes while being read`);
      onChunk(buffer.subarray(0, bytesRead));
    }
  } finally {
    await file.handle.close().catch(() => undefined);
  }
}

/** The whole bytes of the resolved file `real` (resolveConfined). */
export async function readConfined(real: string, spec: ConfinedFileSpec, guard: StallGuard, where: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  await readChunks(real, spec, guard, where, (c) => chunks.push(Buffer.from(c)));
  return Buffer.concat(chunks);
}

/** The sha256, hex, of the resolved file `real` (resolveConfined). */
export async function hashConfined(real: string, spec: ConfinedFileSpec, guard: StallGuard, where: string): Promise<string> {
  const hash = createHash('sha256');
  await readChunks(real, spec, guard, where, (c) => hash.update(c));
  return hash.digest('hex');
}
