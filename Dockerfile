# dust-serve container image.
#
# The default FROM images are built on the machine that builds this one, from its own Node.js 20, by
# deploy/docker/build-base.sh (no container registry is needed):
#   dust-serve-base:node20-build  node, npm, /bin/sh, CA bundle
#   dust-serve-base:node20        node and the shared libraries it and the native modules need; no shell
#
#   deploy/docker/build-base.sh && docker build -t dust-serve .
#   docker run --rm -p 50051:50051 dust-serve
#
# GPU build (README "GPU serving"): DEVICE=cuda installs ONNX Runtime's CUDA 13 execution provider next to
# onnxruntime-node's native library (`npm run setup:cuda`, from the npm registry at build time) and makes
# --device cuda the image's default; BASE_IMAGE must then hold Node.js 20 and the CUDA 13 libraries the provider
# loads (cuBLAS, cuRAND, cudart, cuDNN 9), e.g. deploy/docker/cuda-base.Dockerfile:
#   docker build -f deploy/docker/cuda-base.Dockerfile -t dust-serve-base:node20-cuda13 .
#   docker build --build-arg DEVICE=cuda --build-arg BASE_IMAGE=dust-serve-base:node20-cuda13 -t dust-serve:cuda .
#   docker run --rm --gpus all -p 50051:50051 dust-serve:cuda
ARG BUILD_IMAGE=dust-serve-base:node20-build
ARG BASE_IMAGE=dust-serve-base:node20

FROM ${BUILD_IMAGE} AS build
ARG DEVICE=cpu
WORKDIR /app
# onnxruntime-node's install script would fetch CUDA binaries from NuGet; the CPU (and WebGPU) binaries ship in
# the npm package.
ENV ONNXRUNTIME_NODE_INSTALL=skip
# Dependencies first: this layer is rebuilt only when the lockfile changes. Of the workspaces, only the client
# package (clients/typescript) is installed and linked: the server imports it; the simulator (sim/push) is for
# benchmarks and tests, and its manifest is here only because the lockfile names it.
COPY package.json package-lock.json ./
COPY clients/typescript/package.json ./clients/typescript/
COPY sim/push/package.json ./sim/push/
RUN npm ci --no-audit --no-fund --include-workspace-root --workspace @dust-serve/client
COPY tsconfig.json tsconfig.build.json ./
COPY clients/typescript/tsconfig.build.json ./clients/typescript/
COPY scripts ./scripts
COPY proto ./proto
COPY clients/typescript/src ./clients/typescript/src
COPY src ./src
# The native executor's addon: compiled by `npm run build` where the build image has a C++ compiler, make and
# python3; the default build base has none, so a binary that build-native.mjs finds current for these sources and
# this Node (built on the host by `npm run build`, which the base images are made from) is taken as it is. Without
# it the image serves --device cpu on onnxruntime-node; a cuda image refuses to build without it.
COPY native ./native
RUN npm run build
RUN if [ "$DEVICE" = cuda ]; then node scripts/build-native.mjs --check; fi; \
    node -e "const fs=require('fs');fs.mkdirSync('/app/native-dist');const f='native/build/Release/dust_ort.node';if(fs.existsSync(f))fs.copyFileSync(f,'/app/native-dist/dust_ort.node')"
COPY deploy/docker/prune-native-binaries.mjs /tmp/
RUN npm prune --omit=dev --no-audit --no-fund --include-workspace-root --workspace @dust-serve/client && node /tmp/prune-native-binaries.mjs
# The CUDA provider must match onnxruntime-node's release (package.json pins 1.29.0); the script checks it.
RUN if [ "$DEVICE" = cuda ]; then node scripts/setup-cuda.mjs; elif [ "$DEVICE" != cpu ]; then echo "DEVICE must be cpu or cuda" >&2; exit 1; fi
# The experiment database's folder, owned by the server's user (the runtime image has no shell to make it).
RUN node -e "require('fs').mkdirSync('/app/state')"

FROM ${BASE_IMAGE}
ARG DEVICE=cpu
WORKDIR /app
ENV NODE_ENV=production
# The image's default device; `serve --device ...` or DUST_DEVICE still override it. With cuda the server refuses
# to start when the GPU or a CUDA library is missing, naming what is missing.
ENV DUST_DEVICE=${DEVICE}
# onnxruntime-node would otherwise try to upload usage telemetry over HTTPS and persist a device id (warnings
# on a read-only root filesystem with no CA bundle); a fleet server has no business calling out.
ENV ORT_DISABLE_TELEMETRY=1
# Files stay root-owned and read-only to the server's user; it writes only its experiment database (below).
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
# The client package, which node_modules/@dust-serve/client links to: its build and its copy of the protos.
COPY --from=build /app/clients/typescript/package.json ./clients/typescript/
COPY --from=build /app/clients/typescript/dist ./clients/typescript/dist
COPY --from=build /app/clients/typescript/proto ./clients/typescript/proto
COPY --from=build /app/native-dist ./native/build/Release
COPY proto ./proto
COPY models/dust-tiny ./models/dust-tiny
COPY deploy/docker/healthcheck.mjs ./deploy/docker/
# Experiments (splits, counters, the episode ledger) persist here, the only place the server writes; a volume,
# so that it stays writable under --read-only and survives container restarts when mounted.
COPY --from=build --chown=10001:10001 /app/state /var/lib/dust-serve
ENV DUST_EXPERIMENT_DB=/var/lib/dust-serve/experiments.sqlite
VOLUME ["/var/lib/dust-serve"]
USER 10001:10001
EXPOSE 50051 9464
# serve drains on SIGTERM (health NOT_SERVING, in-flight work finishes within shutdownGraceSeconds) and exits 0.
STOPSIGNAL SIGTERM
# Models load before the port opens, so the start period covers loading and warm-up. Checks DUST_PORT (default
# 50051): set it, not --port, when serving on another port.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 CMD ["node", "deploy/docker/healthcheck.mjs"]
ENTRYPOINT ["node", "dist/src/cli/main.js"]
CMD ["serve"]
