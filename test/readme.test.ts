/**
 * The README's examples, run as written on this checkout (docs/testing.md, "The README's examples"): every fenced
 * block after a `<!-- runnable -->` comment runs from the repository root against servers started from the built
 * CLI, each where the README says it is (the addresses are replaced by the servers' free ports), and fails the
 * test on a non-zero exit.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnServe, type ServeProcess } from './support/serve-process.js';
import { PYTHON, WITH_OPENPI_PYTHON, WITH_PYTHON_CLIENT } from './support/tools.js';
import type { Requirement } from './support/requires.js';

const ROOT = path.resolve('.');
const README = readFileSync(path.join(ROOT, 'README.md'), 'utf8');

interface Example {
  /** What the block needs beyond the servers: '' (nothing), 'node', 'python-client', 'openpi'. */
  readonly kind: string;
  readonly lang: string;
  readonly code: string;
  /** 1-based line of the block's opening fence, for the test's name. */
  readonly line: number;
}

/** The runnable blocks: a `<!-- runnable -->` or `<!-- runnable: kind -->` line, then a fenced block. */
function runnableExamples(markdown: string): Example[] {
  const found: Example[] = [];
  for (const m of markdown.matchAll(/^<!-- runnable(?::\s*([a-z-]+))? -->\n```(\w+)\n([\s\S]*?)^```$/gm)) {
    const line = markdown.slice(0, m.index).split('\n').length + 1;
    found.push({ kind: m[1] ?? '', lang: m[2], code: m[3], line });
  }
  return found;
}

const EXAMPLES = runnableExamples(README);

const REQUIREMENTS: Record<string, Requirement | undefined> = { 'python-client': WITH_PYTHON_CLIENT, openpi: WITH_OPENPI_PYTHON };

interface Run {
  code: number | null;
  output: string;
}

function run(command: string, args: string[], env: Record<string, string>): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, output }));
  });
}

describe("the README's runnable examples", () => {
  let tiny: ServeProcess;
  let push: ServeProcess;
  let openpiPort: number;
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'dust-readme-'));

  beforeAll(async () => {
    // The servers the tour asks for: `npm start` (models/, with the openpi door for its openpi part) and
    // `npm start -- --model-repository models/push-repo --port 50052`.
    [tiny, push] = await Promise.all([
      spawnServe(['--openpi-port', '0'], { DUST_MODEL_REPOSITORY: path.join(ROOT, 'models') }),
      spawnServe([], { DUST_MODEL_REPOSITORY: path.join(ROOT, 'models/push-repo') }),
    ]);
    openpiPort = tiny.lines.find((l) => l.msg === 'openpi door listening')!.port as number;
  });

  afterAll(() => {
    tiny?.child.kill('SIGKILL');
    push?.child.kill('SIGKILL');
    rmSync(scratch, { recursive: true, force: true });
  });

  /** The block as a user would run it, pointed at this test's servers instead of the README's ports. */
  function localized(code: string): string {
    return (
      code
        .replaceAll('ws://localhost:8000', `ws://127.0.0.1:${openpiPort}`)
        .replaceAll('localhost:50051', tiny.address)
        .replaceAll('localhost:50052', push.address)
        .replace(/(^|\s)\.venv\b/g, `$1${path.join(scratch, 'venv')}`)
        // The Debian Python the requirements were checked on, whatever else is first on the PATH.
        .replace(/(^|\s)python3\b/g, `$1${PYTHON}`)
    );
  }

  async function runExample(example: Example): Promise<void> {
    const code = localized(example.code);
    // The default address of the client commands is the first server, as `npm start` makes it.
    const env = { DUST_ADDRESS: tiny.address };
    let result: Run;
    if (example.lang === 'sh') {
      result = await run('bash', ['-euo', 'pipefail', '-c', code], env);
    } else if (example.lang === 'js') {
      // Saved in the checkout, as the README says, so that '@dust-serve/client' resolves as it does for a user.
      const file = path.join(ROOT, `.readme-example-${process.pid}-${example.line}.mjs`);
      writeFileSync(file, code);
      try {
        result = await run(process.execPath, [file], env);
      } finally {
        rmSync(file, { force: true });
      }
    } else {
      throw new Error(`README.md:${example.line}: a runnable block must be sh or js, not ${example.lang}`);
    }
    expect(result.code, `README.md:${example.line} exited with ${result.code}:\n${result.output}`).toBe(0);
  }

  it('marks the tour runnable, and every block that calls dust-serve', () => {
    expect(EXAMPLES.map((e) => e.kind)).toEqual(expect.arrayContaining(['', 'node', 'python-client', 'openpi']));
    const unmarked = [...README.matchAll(/^(?!<!-- runnable)(.*)\n```(\w+)\n([\s\S]*?)^```$/gm)].filter(([, , , code]) =>
      /\bdust-serve (?!serve)\w/.test(code),
    );
    expect(unmarked.map(([, , , code]) => code)).toEqual([]);
  });

  for (const example of EXAMPLES) {
    const title = `README.md:${example.line} (${example.lang}${example.kind ? `, ${example.kind}` : ''}) runs as written`;
    const requirement = REQUIREMENTS[example.kind];
    if (requirement) {
      requirement.it(
        title,
        async () => {
          try {
            await runExample(example);
          } finally {
            // pip builds in the source tree (scripts/test-py.sh cleans up the same way).
            rmSync(path.join(ROOT, 'clients/python/build'), { recursive: true, force: true });
            for (const entry of readdirSync(path.join(ROOT, 'clients/python/src'))) {
              if (entry.endsWith('.egg-info')) rmSync(path.join(ROOT, 'clients/python/src', entry), { recursive: true, force: true });
            }
          }
        },
        300_000,
      );
    } else {
      it(title, () => runExample(example), 120_000);
    }
  }
});
