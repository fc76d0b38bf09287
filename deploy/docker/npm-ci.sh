#!/bin/sh
# `npm ci`, tolerating one known npm defect and nothing else. npm >= 11.16 leaves an optional dependency that the
# registry does not serve out of the lockfile it writes (here vite's napi-windows-process-start-time), then
# `npm ci` rejects that same lockfile with "Missing: <name>@ from lock file" (empty version; npm/cli#9846, fix in
# npm/cli#9850). Only when every complaint is of that kind does it install from the lockfile with
# `npm install --no-save`, which resolves the locked tree and skips the unavailable optional package.
# POSIX sh with no other tools: it runs in the build base image too (deploy/docker/build-base.sh).
# Usage: deploy/docker/npm-ci.sh [extra npm flags]
set -u
out=$(npm ci --no-audit --no-fund "$@" 2>&1)
rc=$?
printf '%s\n' "$out"
[ "$rc" = 0 ] && exit 0
unavailable_optional=0
while IFS= read -r line; do
  case "$line" in
    *"Missing: "*"@ from lock file") unavailable_optional=1 ;;
    *"Missing: "* | *"Invalid: "*) exit "$rc" ;;
  esac
done <<EOF_OUT
$out
EOF_OUT
[ "$unavailable_optional" = 1 ] || exit "$rc"
echo "npm-ci.sh: npm ci rejected the lockfile only for unavailable optional packages (npm/cli#9846); installing the locked tree with npm install --no-save" >&2
exec npm install --no-save --no-audit --no-fund "$@"
