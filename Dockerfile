# dust-serve container image.
#
# The FROM images are built on the machine that builds this one, from its own Node.js 20, by
# deploy/docker/build-base.sh (no container registry is needed):
#   dust-serve-base:node20-build  node, npm, /bin/sh, CA bundle
#   dust-serve-base:node20        node and the shared libraries it and the native modules need; no shell
#
#   deploy/docker/build-base.sh && docker build -t dust-serve .
#   docker run --rm -p 50051:50051 dust-serve
FROM dust-serve-base:node20-build AS build
WORKDIR /app
# onnxruntime-node's install script would fetch CUDA binaries from NuGet; the CPU (and WebGPU) binaries ship in
# the npm package.
ENV ONNXRUNTIME_NODE_INSTALL=skip
# Dependencies first: this layer is rebuilt only when the lockfile changes.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY proto ./proto
COPY src ./src
RUN npm run build
COPY deploy/docker/prune-native-binaries.mjs /tmp/
RUN npm prune --omit=dev --no-audit --no-fund && node /tmp/prune-native-binaries.mjs

FROM dust-serve-base:node20
WORKDIR /app
ENV NODE_ENV=production
# onnxruntime-node 1.30 would otherwise try to upload usage telemetry over HTTPS and persist a device id (warnings
# on a read-only root filesystem with no CA bundle); a fleet server has no business calling out.
ENV ORT_DISABLE_TELEMETRY=1
# Files stay root-owned and read-only to the server's user; it writes nothing to disk.
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
COPY proto ./proto
COPY models/dust-tiny ./models/dust-tiny
COPY deploy/docker/healthcheck.mjs ./deploy/docker/
USER 10001:10001
EXPOSE 50051 9464
# serve drains on SIGTERM (health NOT_SERVING, in-flight work finishes within shutdownGraceSeconds) and exits 0.
STOPSIGNAL SIGTERM
# Models load before the port opens, so the start period covers loading and warm-up. Checks DUST_PORT (default
# 50051): set it, not --port, when serving on another port.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 CMD ["node", "deploy/docker/healthcheck.mjs"]
ENTRYPOINT ["node", "dist/src/cli/main.js"]
CMD ["serve"]
