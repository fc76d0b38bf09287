#!/usr/bin/env bash
# The model toolchain's pytest suite (models/toolchain/tests) on the Debian Python that .ci/run provisions. Without
# torch, onnx or pytest it is skipped with the reason, except with CI=true, where .ci/run has installed them and a
# missing one fails: the rule test/support/requires.ts applies to the TypeScript tests.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=/usr/bin/python3
if ! problem=$("$PYTHON" -c 'import torch, onnx, pytest' 2>&1); then
  reason="$PYTHON cannot import torch, onnx and pytest ($(tail -n 1 <<<"${problem:-$PYTHON not found}")); apt-get install python3-torch python3-onnx python3-pytest (.ci/run does)"
  if [ "${CI:-}" = true ] || [ "${CI:-}" = 1 ]; then
    echo "FAILED: the toolchain's pytest suite cannot run with CI=true: $reason" >&2
    exit 1
  fi
  echo "SKIPPED the toolchain's pytest suite: $reason" >&2
  exit 0
fi
exec "$PYTHON" -m pytest -q models/toolchain/tests
