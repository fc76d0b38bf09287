/**
 * `dust-serve serve` as a child process, as an operator runs it: the built CLI (`npm run build` first), JSON log
 * lines on stdout, real signals. For tests that need a replica to drain on SIGTERM or die on SIGKILL.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { TEST_REPOSITORY } from './harness.js';

const BIN = path.resolve('dist/src/cli/main.js');

export interface ServeProcess {
  readonly child: ChildProcessByStdio<null, Readable, Readable>;
  readonly port: number;
  /** `127.0.0.1:<port>`. */
  readonly address: string;
  /** The JSON log lines so far. */
  readonly lines: Array<Record<string, unknown>>;
  /** Resolves with the exit code (null when a signal killed it). */
  readonly exited: Promise<number | null>;
}

/**
 * Starts `serve` on a free loopback port (flags and DUST_* environment on top of one inference thread, no
 * warm-up, no metrics endpoint, experiments in memory and the test repository) and resolves once it logs that
 * it listens.
 */
export async function spawnServe(args: readonly string[] = [], env: Record<string, string> = {}): Promise<ServeProcess> {
  const child = spawn(
    process.execPath,
    [BIN, 'serve', '--port', '0', '--metrics-port', '0', '--host', '127.0.0.1', '--threads', '1', '--warmup', 'false', ...args],
    {
      env: { ...process.env, DUST_MODEL_REPOSITORY: TEST_REPOSITORY, DUST_EXPERIMENT_DB: ':memory:', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const lines: Array<Record<string, unknown>> = [];
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let buffered = '';
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const parts = buffered.split('\n');
      buffered = parts.pop()!;
      for (const line of parts) {
        const entry = JSON.parse(line) as Record<string, unknown>;
        lines.push(entry);
        if (entry.msg === 'dust-serve listening') resolve(entry.port as number);
      }
    });
    void exited.then((code) => reject(new Error(`dust-serve exited with ${code} before listening:\n${stderr}`)));
  });
  return { child, port, address: `127.0.0.1:${port}`, lines, exited };
}
