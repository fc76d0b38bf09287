#!/usr/bin/env bash
# The Python test suites, on the Debian Python that .ci/run provisions:
# - the model toolchain's (models/toolchain/tests): needs torch, onnx and pytest;
# - the Python client's (clients/python/tests): needs grpcio, protobuf, numpy, pytest, venv, setuptools, wheel and protoc; the client is
#   installed from clients/python into a throw-away virtual environment (pip, offline, as docs/python-client.md
#   says) and tested against the built server (dist/) on loopback.
# A suite whose dependencies are missing is skipped with the reason, except with CI=true, where .ci/run has
# installed them and a missing one fails: the rule test/support/requires.ts applies to the TypeScript tests.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=/usr/bin/python3
failed=0

is_ci() { [ "${CI:-}" = true ] || [ "${CI:-}" = 1 ]; }

# unmet SUITE REASON: fails the run under CI, else reports the suite as skipped.
unmet() {
  if is_ci; then
    echo "FAILED: $1 cannot run with CI=true: $2" >&2
    failed=1
  else
    echo "SKIPPED $1: $2" >&2
  fi
}

# missing MODULES...: why $PYTHON cannot import them, or nothing.
missing() {
  local problem
  if ! problem=$("$PYTHON" -c "import $(IFS=,; echo "$*")" 2>&1); then
    echo "$PYTHON cannot import $* ($(tail -n 1 <<<"${problem:-$PYTHON not found}"))"
  fi
}

toolchain_suite() {
  local why
  why=$(missing torch onnx pytest)
  if [ -n "$why" ]; then
    unmet "the toolchain's pytest suite" "$why; apt-get install python3-torch python3-onnx python3-pytest (.ci/run does)"
    return
  fi
  "$PYTHON" -m pytest -q models/toolchain/tests || failed=1
}

client_suite() {
  local why apt="apt-get install python3-grpcio python3-protobuf python3-numpy python3-pytest python3-venv python3-setuptools python3-wheel protobuf-compiler (.ci/run does)"
  why=$(missing grpc google.protobuf numpy pytest venv ensurepip setuptools wheel)
  if [ -z "$why" ] && ! command -v protoc >/dev/null 2>&1; then why="protoc is not installed"; fi
  if [ -n "$why" ]; then
    unmet "the Python client's pytest suite" "$why; $apt"
    return
  fi
  if [ ! -f dist/src/cli/main.js ]; then npm run build --silent; fi
  local tmp
  tmp=$(mktemp -d)
  # pip builds in the source tree: start from no build folder, leave none behind.
  rm -rf clients/python/build
  if "$PYTHON" -m venv --system-site-packages "$tmp/venv" &&
    "$tmp/venv/bin/python" -m pip install -q --no-index --no-build-isolation --no-deps ./clients/python; then
    (cd clients/python && "$tmp/venv/bin/python" -m pytest -q -p no:cacheprovider tests) || failed=1
  else
    echo "FAILED: the Python client did not install (see above)" >&2
    failed=1
  fi
  rm -rf "$tmp" clients/python/build clients/python/src/*.egg-info
}

toolchain_suite
client_suite
exit "$failed"
