# Runtime base for the GPU image (Dockerfile, --build-arg DEVICE=cuda): NVIDIA's CUDA 13 runtime with cuDNN 9 (the
# libraries ONNX Runtime's CUDA provider loads) plus the Node.js 20 binary of dust-serve-base:node20, and the
# unprivileged user dust (uid 10001) the image runs as.
#
#   deploy/docker/build-base.sh
#   docker build -f deploy/docker/cuda-base.Dockerfile -t dust-serve-base:node20-cuda13 .
#
# CUDA_IMAGE is any CUDA 13 image with cuDNN 9 on glibc >= Debian 12's (the node binary comes from there); its
# driver libraries come from the host through the NVIDIA container toolkit at run time.
ARG CUDA_IMAGE=nvidia/cuda:13.0.0-cudnn-runtime-ubuntu24.04
FROM dust-serve-base:node20 AS node

FROM ${CUDA_IMAGE}
COPY --from=node /usr/bin/node /usr/bin/node
RUN (getent passwd 10001 >/dev/null || useradd --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin dust) \
    && mkdir -p /app
WORKDIR /app
USER 10001
CMD ["node"]
