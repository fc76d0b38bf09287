#!/usr/bin/env bash
# Builds the base images that the Dockerfile's FROM lines name, from this machine's own Node.js 20, so that no
# container registry is needed:
#
#   dust-serve-base:node20        runtime base: node, the shared libraries that node and the project's native
#                                 modules (onnxruntime-node, sharp/libvips, tokenizers) link against, /etc/passwd
#                                 with an unprivileged user "dust" (uid 10001). No shell, no package manager.
#   dust-serve-base:node20-build  build base: the above plus npm, /bin/sh and /usr/bin/env (npm runs lifecycle
#                                 and run-scripts through them), this machine's CA bundle (npm ci reaches the
#                                 registry through whatever TLS setup this machine has), and this machine's
#                                 better-sqlite3 binary as a local prebuild (see below).
#
# Why a rootfs of host files through `docker import` rather than debootstrap: it takes seconds instead of minutes,
# needs nothing but the node binary and its libraries that the tests already run on, and the glibc inside the
# image is by construction the one the native modules were just tested against on this machine.
#
# Idempotent: images that already exist are left alone (--force rebuilds both), unless the build base carries
# another better-sqlite3 version's binary than node_modules has.
# Usage: deploy/docker/build-base.sh [--force]
set -euo pipefail
cd "$(dirname "$0")/../.."

RUNTIME_TAG=dust-serve-base:node20
BUILD_TAG=dust-serve-base:node20-build
UID_DUST=10001
force=0
[ "${1:-}" = "--force" ] && force=1

# shellcheck source=deploy/docker/rootfs.sh
. deploy/docker/rootfs.sh

# better-sqlite3 (the experiment store) is a native module whose install script downloads a prebuilt binary from
# GitHub or compiles one; the build image reaches neither GitHub nor a compiler. So the build base carries this
# machine's binary (built by `npm ci`, for the same Node ABI and glibc) as a local prebuild that its installer
# picks up offline (npm_config_better_sqlite3_local_prebuilds). The label records which version it is for.
SQLITE_PKG=node_modules/better-sqlite3
[ -f "$SQLITE_PKG/build/Release/better_sqlite3.node" ] || { echo "build-base.sh: $SQLITE_PKG is not built; run npm ci first" >&2; exit 1; }
sqlite_version=$(node -p "require('./$SQLITE_PKG/package.json').version")
SQLITE_PREBUILD="better-sqlite3-v${sqlite_version}-node-v$(node -p 'process.versions.modules')-linux-$(node -p 'process.arch').tar.gz"
PREBUILDS_DIR=/opt/prebuilds

build_base_current() { [ "$(docker image inspect -f '{{ index .Config.Labels "dust.sqlite-prebuild" }}' "$BUILD_TAG" 2>/dev/null)" = "$SQLITE_PREBUILD" ]; }
if [ "$force" = 0 ] && have_image "$RUNTIME_TAG" && have_image "$BUILD_TAG" && build_base_current; then
  echo "base images present: $RUNTIME_TAG $BUILD_TAG"
  exit 0
fi

NODE=$(command -v node)
NODE=$(readlink -f "$NODE")
node_version=$("$NODE" -p 'process.versions.node')
case "$node_version" in
  20.*) ;;
  *) echo "build-base.sh: node $node_version on PATH; the base images are tagged node20 and need Node.js 20" >&2; exit 1 ;;
esac
NPM_DIR=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")   # .../lib/node_modules/npm
[ -f "$NPM_DIR/package.json" ] || { echo "build-base.sh: cannot find npm's install folder (got $NPM_DIR)" >&2; exit 1; }
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
[ -f "$CA_BUNDLE" ] || { echo "build-base.sh: $CA_BUNDLE missing (apt-get install ca-certificates)" >&2; exit 1; }

work=$(mktemp -d /tmp/dust-base.XXXXXX)
trap 'rm -rf "$work"' EXIT

make_root() {
  local root=$1
  make_skeleton "$root" dust "$UID_DUST"
  mkdir -p "$root"/app
  copy_with_libs "$root" "$NODE"
  [ "$NODE" = /usr/bin/node ] || ln -sf "$NODE" "$root/usr/bin/node"
  # Libraries the native modules load: ldd on them where node_modules is installed, plus a fixed list so that the
  # base also builds before `npm ci` (onnxruntime and tokenizers need libstdc++/libgcc_s/librt, libvips needs
  # libresolv). glibc's loader finds them in the multiarch folder without an ld.so.cache.
  local mod lib libdir
  for mod in $(find node_modules/ -path '*linux*x64*' \( -name '*.node' -o -name '*.so*' \) 2>/dev/null); do
    case "$mod" in *musl*) continue ;; esac
    for lib in $(libs_of "$mod"); do
      case "$lib" in */node_modules/*) ;; *) copy_into "$root" "$lib" ;; esac   # bundled ones ship in node_modules
    done
  done
  libdir=$(dirname "$(libs_of "$NODE" | grep '/libc\.so\.6$')")
  for lib in libstdc++.so.6 libgcc_s.so.1 libm.so.6 libdl.so.2 librt.so.1 libpthread.so.0 libresolv.so.2; do
    copy_into "$root" "$libdir/$lib"
  done
}

import_base() {
  local root=$1 tag=$2
  shift 2
  import_rootfs "$root" "$tag" "dust-serve base from the host's node $node_version" "$@" \
    --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
    --change 'WORKDIR /app'
}

echo "== runtime base $RUNTIME_TAG (node $node_version from $NODE)"
make_root "$work/runtime"
import_base "$work/runtime" "$RUNTIME_TAG" --change "USER $UID_DUST" --change 'CMD ["node"]'

echo "== build base $BUILD_TAG"
make_root "$work/build"
mkdir -p "$work/build/usr/lib/node_modules"
cp -a "$NPM_DIR" "$work/build/usr/lib/node_modules/npm"
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$work/build/usr/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$work/build/usr/bin/npx"
copy_with_libs "$work/build" "$(readlink -f /bin/sh)"
[ -e "$work/build/bin/sh" ] || ln -s "$(basename "$(readlink -f /bin/sh)")" "$work/build/usr/bin/sh"
copy_with_libs "$work/build" /usr/bin/env
mkdir -p "$work/build/etc/ssl/certs"
cp -L "$CA_BUNDLE" "$work/build/etc/ssl/certs/ca-certificates.crt"
mkdir -p "$work/build$PREBUILDS_DIR"
tar -C "$SQLITE_PKG" -czf "$work/build$PREBUILDS_DIR/$SQLITE_PREBUILD" build/Release/better_sqlite3.node
import_base "$work/build" "$BUILD_TAG" \
  --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' \
  --change 'ENV npm_config_cafile=/etc/ssl/certs/ca-certificates.crt' \
  --change "ENV npm_config_better_sqlite3_local_prebuilds=$PREBUILDS_DIR" \
  --change "LABEL dust.sqlite-prebuild=$SQLITE_PREBUILD" \
  --change 'CMD ["node"]'
