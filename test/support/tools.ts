/**
 * Every optional tool a test needs, how it is detected, and how to install it (`bash .ci/run` installs all of
 * them). A test takes one of these and wraps its describe/it in it (requires.ts): skipped with the reason on a
 * machine without the tool, failing in CI.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { NO_POSTGRES } from './postgres.js';
import { NO_PROMETHEUS, PROMETHEUS as PROMETHEUS_BIN, PROMTOOL as PROMTOOL_BIN } from './prometheus.js';
import { requireTool } from './requires.js';

/** Whether `command ...args` runs and exits 0. */
function runs(command: string, args: readonly string[]): boolean {
  return spawnSync(command, args, { stdio: 'ignore' }).status === 0;
}

/**
 * A Docker daemon with the base and fleet images (deploy/docker/build-base.sh, build-fleet-images.sh): `.ci/run`
 * starts dockerd, builds them and sets DUST_CONTAINER_TESTS=1; the build takes minutes, so a developer opts in.
 */
export const WITH_DOCKER = requireTool(
  'docker',
  process.env.DUST_CONTAINER_TESTS === '1',
  'DUST_CONTAINER_TESTS is not 1: the container tests need a Docker daemon, the base images (deploy/docker/build-base.sh) ' +
    'and the HAProxy and PostgreSQL images (deploy/docker/build-fleet-images.sh); bash .ci/run provides them and sets the variable',
);

export const WITH_HAPROXY = requireTool('haproxy', () => runs('haproxy', ['-v']), 'haproxy is not installed (Debian: apt-get install haproxy; .ci/run does)');

export const WITH_POSTGRES = requireTool('postgresql', NO_POSTGRES === undefined, NO_POSTGRES ?? '');

export const WITH_PROMETHEUS = requireTool('prometheus', PROMETHEUS_BIN !== undefined, NO_PROMETHEUS);

export const WITH_PROMTOOL = requireTool('promtool', PROMTOOL_BIN !== undefined, NO_PROMETHEUS);

export const WITH_OPENSSL = requireTool(
  'openssl',
  () => runs('openssl', ['version']),
  'the openssl command-line tool is not installed (apt-get install openssl; .ci/run does)',
);

/** The toolchain's Python (models/toolchain), as .ci/run installs its packages. */
export const PYTHON = '/usr/bin/python3';

let toolchainImport: { status: number | null; stderr: string } | undefined;
const importToolchain = () =>
  (toolchainImport ??= spawnSync(PYTHON, ['-c', 'import models.toolchain.data.push'], { cwd: path.resolve('.'), encoding: 'utf8' }));

/** The toolchain's Python with what its dataset reader imports: numpy, and torch through models.toolchain.data. */
export const WITH_NUMPY = requireTool(
  'numpy',
  () => importToolchain().status === 0,
  () =>
    `${PYTHON} cannot import models.toolchain.data.push (${importToolchain().stderr?.trim().split('\n').at(-1) || `${PYTHON} did not run`}): ` +
    'it needs numpy and torch (Debian: apt-get install python3-torch, which brings python3-numpy; .ci/run does)',
);

/** What clients/openpi-check/openpi_check.py imports: Debian's python3-msgpack, python3-websockets and numpy. */
export const WITH_OPENPI_PYTHON = requireTool(
  'python3-msgpack',
  () => runs(PYTHON, ['-c', 'import msgpack, websockets, numpy']),
  `${PYTHON} cannot import msgpack, websockets and numpy (Debian: apt-get install python3-msgpack python3-websockets python3-numpy; .ci/run does)`,
);

/** What installing and running the Python client needs (scripts/test-py.sh checks the same). */
export const WITH_PYTHON_CLIENT = requireTool(
  'python3-grpcio',
  () => runs(PYTHON, ['-c', 'import grpc, google.protobuf, numpy, venv, ensurepip, setuptools, wheel']) && runs('protoc', ['--version']),
  `${PYTHON} cannot import grpc, google.protobuf, numpy, venv, ensurepip, setuptools and wheel, or protoc is missing ` +
    '(Debian: apt-get install python3-grpcio python3-protobuf python3-numpy python3-venv python3-setuptools python3-wheel protobuf-compiler; .ci/run does)',
);

let chromium: { bin: string | undefined } | undefined;

/** The headless Chromium that renders the experiment report (Debian's package is `chromium`), probed on first use. */
export function chromiumBin(): string | undefined {
  chromium ??= { bin: ['chromium', 'chromium-browser', 'google-chrome'].find((c) => runs(c, ['--version'])) };
  return chromium.bin;
}

export const WITH_CHROMIUM = requireTool(
  'chromium',
  () => chromiumBin() !== undefined,
  'no headless Chromium (chromium, chromium-browser or google-chrome) on PATH (Debian: apt-get install chromium; .ci/run does)',
);
