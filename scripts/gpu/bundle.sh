#!/usr/bin/env bash
# Packs what a GPU host with no Node.js and no registry needs to run this project (scripts/gpu/reproduce.sh):
# the node binary, production node_modules with the workspace packages (the client, the push task) in place,
# the build output (dist/, the native addon, the workspaces' dist/ and protos) and the models.
# Run from the project root after `npm ci && npm run build:bench` (which builds the addon too).
# Writes .devbundle/{node,node_modules,app}.tar.xz plus setup.sh and cuda-setup.sh, and .gl/ (Vulkan/EGL loaders
# for WebGPU), all git-excluded; setup.sh on the host unpacks whichever archives a call carried.
#   SHARED=<dir>  where the session's device scripts (setup.sh, cuda-setup.sh) are (default ../shared/device)
#   MODELS=0      leave models/ out of app.tar.xz (the working tree that a device call carries has them, and
#                 reproduce.sh serves the packages it exports there), to keep one call's load under 64 MiB
set -euo pipefail
[ -f package.json ] || { echo "run me from the project root" >&2; exit 2; }
shared=${SHARED:-$(cd .. && pwd)/shared/device}
for p in /.devbundle/ /.gl/; do grep -qxF "$p" .git/info/exclude 2>/dev/null || echo "$p" >> .git/info/exclude; done
[ -f dist/src/cli/main.js ] || { echo "no build: run npm run build:bench first" >&2; exit 1; }
addon=$(ls native/build/Release/*.node 2>/dev/null | head -1 || true)
[ -n "$addon" ] || echo "WARNING: no native addon in native/build/Release: --device cuda will not start on the host" >&2
rm -rf .devbundle && mkdir -p .devbundle .gl
cp "$shared/setup.sh" "$shared/cuda-setup.sh" .devbundle/

step() { echo "[bundle $(date +%H:%M:%S)] $*" >&2; }

step "node binary"
node_bin=$(readlink -f "$(command -v node)")
tar -C "$(dirname "$node_bin")" -cJf .devbundle/node.tar.xz "$(basename "$node_bin")"

step "production node_modules (workspaces linked, one platform's binaries)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp package.json package-lock.json "$tmp/"
[ -f .npmrc ] && cp .npmrc "$tmp/"
# npm ci needs every workspace's package.json to link it; their built files go into app.tar.xz below.
for ws in $(node -p "(require('./package.json').workspaces || []).join(' ')"); do
  mkdir -p "$tmp/$ws" && cp "$ws/package.json" "$tmp/$ws/"
done
(cd "$tmp" && ONNXRUNTIME_NODE_INSTALL=skip npm ci --omit=dev --ignore-scripts --no-audit --no-fund >/dev/null)
# --ignore-scripts leaves native modules that build at install without their binary: the ones built here go along
# (same node, same x86-64 Linux), e.g. better-sqlite3 for the experiment store.
for built in node_modules/*/build/Release/*.node; do
  [ -f "$built" ] && [ -d "$tmp/$(dirname "$(dirname "$(dirname "$built")")")" ] || continue
  mkdir -p "$tmp/$(dirname "$built")" && cp "$built" "$tmp/$built"
done
ort="$tmp/node_modules/onnxruntime-node/bin"
if [ -d "$ort" ]; then
  find "$ort" -mindepth 2 -maxdepth 2 -type d ! -name linux -exec rm -rf {} +
  find "$ort" -path '*linux/arm64' -type d -exec rm -rf {} +
fi
[ -d "$tmp/node_modules/@img" ] && find "$tmp/node_modules/@img" -mindepth 1 -maxdepth 1 -type d -name 'sharp-*' ! -name '*-linux-x64' -exec rm -rf {} +
find "$tmp/node_modules" -name '*.node' \( -name '*darwin*' -o -name '*win32*' -o -name '*android*' -o -name '*arm*' -o -name '*musl*' -o -name '*freebsd*' \) -delete
# Nothing runs typings, source maps, docs or better-sqlite3's C sources (its built binary came above): 3 MiB less
# compressed, which a device call needs once the tree and this archive share its 64 MiB.
rm -rf "$tmp/node_modules/@types" "$tmp/node_modules/better-sqlite3/deps" "$tmp/node_modules/better-sqlite3/src" "$tmp/node_modules/better-sqlite3/build/Release/test_extension.node"
find "$tmp/node_modules" -type f \( -name '*.map' -o -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' -o -name '*.md' -o -name '*.markdown' \) -delete
tar -C "$tmp" -cJf .devbundle/node_modules.tar.xz node_modules

step "build output, addon, workspaces and models"
items=(dist proto package.json)
[ "${MODELS:-1}" = 0 ] || items+=(models)
for ws in $(node -p "(require('./package.json').workspaces || []).join(' ')"); do
  for f in package.json dist proto; do [ -e "$ws/$f" ] && items+=("$ws/$f"); done
done
[ -n "$addon" ] && items+=("$addon")
tar --exclude='models/toolchain' --exclude='__pycache__' -cJf .devbundle/app.tar.xz "${items[@]}"

step "GL/Vulkan loaders"
mkdir -p /tmp/amd64/partial
o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
[ -n "$(ls /tmp/amd64/*Packages* 2>/dev/null)" ] || apt-get $o update -q >/dev/null
(cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 >/dev/null 2>&1) || echo "WARNING: no GL loaders (WebGPU only)" >&2
du -ch .devbundle/* .gl | sed 's/^/  /' >&2
