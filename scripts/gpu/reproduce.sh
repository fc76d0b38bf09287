#!/usr/bin/env bash
# The GPU run (BENCHMARKS.md "CUDA on one H200"), in stages, on a GPU host that has PyTorch with CUDA
# but no Node.js and no network. What it needs travels with it (scripts/gpu/README.md says how):
#   .devbundle/  node, production node_modules, dist/ (shared/device/bundle.sh, run after `npm ci && npm run build:bench`)
#   .gl/         Vulkan/EGL loader packages (WebGPU)
#   .cudaprov/   the CUDA 13 provider, xz-compressed in parts (one part per device call), + libonnxruntime_providers_shared.so;
#                scripts/gpu/prune_fatbin.py --keep-sm 90 first makes it two parts for H100/H200 (BENCHMARKS.md says how)
#   $SRC         a folder with models/toolchain, scripts/gpu and scripts/setup-cuda.mjs (default: this repository)
#
#   bash scripts/gpu/reproduce.sh part .cudaprov/part.aa   copy one provider part to /tmp/cudaprov
#   bash scripts/gpu/reproduce.sh torch-bg                 start the PyTorch stage in the background: export the
#                                                          paper-size packages (fp32, fp16) and time PyTorch
#   bash scripts/gpu/reproduce.sh status                   the background stage's last lines
#   bash scripts/gpu/reproduce.sh ort                      app + CUDA provider, preprocessing costs, wait for the
#                                                          PyTorch stage, then ONNX Runtime timings
#   bash scripts/gpu/reproduce.sh serve                    the served model through `npm run bench` (dist/bench/fleet.js)
#   bash scripts/gpu/reproduce.sh native                   the native executor (scripts/gpu/native-check.mjs) on the
#                                                          paper-size float16 package: node placement, CUDA-graph
#                                                          capture, parity, a step per bucket with and without graphs
#   bash scripts/gpu/reproduce.sh native-tiny            the same check on dust-tiny, with parity against the CPU
#   bash scripts/gpu/reproduce.sh native-narrow          the same check, with parity against the CPU, on a package of
#                                                          the paper's structure at a fraction of its width, exported
#                                                          here by the current toolchain (dust-tiny's older export
#                                                          cannot run as a CUDA graph)
#   bash scripts/gpu/reproduce.sh profile                device time per op type of the paper-size VLM and denoiser
#                                                          (ONNX Runtime's profiler, blocking launches)
#   bash scripts/gpu/reproduce.sh vlm-parts              the VLM's time per part, and with its Conv as a MatMul
#   SERVE_SET=native-fleet|native-short|native-strict      parts of SERVE_SET=native (stage_serve says which)
#   SERVE_SET=native bash scripts/gpu/reproduce.sh serve   the served targets on the native executor: 1 robot at
#                                                          4:4 and 4:16, 64 robots (step, max-batch-1, offline), 256
#                                                          robots with a strict 100 ms budget (step, max-batch-1)
#   bash scripts/gpu/reproduce.sh peer                     the PyTorch peer (torch_peer.py): one request at a time,
#                                                          bf16, one CUDA graph per request; 1, 16 and 64 robots
#   bash scripts/gpu/reproduce.sh pixel-copy               float32 against uint8 pixel rows: the host-to-device copy
#                                                          and the on-device normalisation (scripts/gpu/pixel_copy.py)
#   bash scripts/gpu/reproduce.sh collect                  results so far into $OUT (8 files at most): end every call
#                                                          with it, since a machine given back takes /tmp with it
#
# DRY=1 runs every stage on a CPU machine with paper-shaped but narrow models (the whole pipeline in minutes).
set -euo pipefail

SRC=$(cd "${SRC:-$(dirname "${BASH_SOURCE[0]}")/../..}" && pwd)
ROOT=$(pwd)
WORK=${WORK:-/tmp/gpu8}
APP=${APP:-/tmp/app}
OUT=${OUT:-$WORK/out}
CALL_START=$(date +%s)
# Seconds a call may use before stages stop starting new work (a device call ends at 600 s).
CALL_BUDGET_S=${CALL_BUDGET_S:-540}
mkdir -p "$WORK" "$OUT"
export PYTHONUNBUFFERED=1

# The paper's structure at a fraction of its width (DRY=1 runs everything on it; native-narrow checks parity on it).
NARROW="--set vlm.vision_width=64 --set vlm.vision_layers=1 --set vlm.vision_heads=2 --set vlm.width=64 --set vlm.layers=1
       --set vlm.heads=2 --set denoiser.hidden=64 --set denoiser.heads=2 --set denoiser.timestep_dim=64 --set denoiser.cond_dim=64"
if [ "${DRY:-0}" = 1 ]; then
  DEVICE=cpu
  PY=${PY:-/usr/bin/python3}
  SET=$NARROW
  BATCHES=${BATCHES:-1,8}
  CONFIGS=${CONFIGS:-cpu-fp32,cpu-fp16}
  ROBOTS_MANY=${ROBOTS_MANY:-8}
  ROBOTS_MOST=${ROBOTS_MOST:-16}
  DURATION=${DURATION:-3}
else
  DEVICE=cuda
  PY=${PY:-python3}
  SET=""
  BATCHES=${BATCHES:-1,8,32,64,128}
  CONFIGS=${CONFIGS:-cuda-fp32,cuda-fp16,webgpu-fp32}
  ROBOTS_MANY=${ROBOTS_MANY:-64}
  ROBOTS_MOST=${ROBOTS_MOST:-256}
  DURATION=${DURATION:-8}
fi

log() { echo "[reproduce $(date +%H:%M:%S)] $*" >&2; }
left() { echo $((CALL_BUDGET_S - ($(date +%s) - CALL_START))); }

# node, the app, the loaders and (for CUDA) the provider; idempotent, so every call can run it.
app_env() {
  if [ ! -x "$APP/.node/node" ]; then
    if [ "${DRY:-0}" = 1 ]; then
      mkdir -p "$APP/.node" && ln -sf "$(command -v node)" "$APP/.node/node"
      for f in dist package.json; do ln -sfn "$ROOT/$f" "$APP/$f"; done
      ln -sfn "$ROOT/node_modules" "$APP/node_modules"
    else
      # shellcheck disable=SC1091
      source .devbundle/setup.sh >/dev/null
    fi
  fi
  export PATH="$APP/.node:$PATH"
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
  [ "$DEVICE" = cuda ] || return 0
  # The CUDA 13 libraries the provider links come with the host's PyTorch (pip nvidia-* packages).
  local nv
  nv=$($PY -c 'import nvidia, os; print(os.path.dirname(nvidia.__path__[0]))' 2>/dev/null)/nvidia
  export LD_LIBRARY_PATH="$(find "$nv" -name 'lib*.so*' -printf '%h\n' 2>/dev/null | sort -u | tr '\n' ':')${LD_LIBRARY_PATH:-}"
  local bin="$APP/node_modules/onnxruntime-node/bin/napi-v6/linux/x64"
  if [ ! -f "$bin/libonnxruntime_providers_cuda.so" ]; then
    mkdir -p /tmp/cudaprov/so
    cat /tmp/cudaprov/part.* | xz -dc > /tmp/cudaprov/so/libonnxruntime_providers_cuda.so
    cp .cudaprov/libonnxruntime_providers_shared.so /tmp/cudaprov/so/ 2>/dev/null || cp /tmp/cudaprov/libonnxruntime_providers_shared.so /tmp/cudaprov/so/
    mkdir -p "$APP/scripts" && cp "$SRC/scripts/setup-cuda.mjs" "$APP/scripts/"
    (cd "$APP" && node scripts/setup-cuda.mjs --from /tmp/cudaprov/so) >&2
  fi
}

stage_part() {
  mkdir -p /tmp/cudaprov && cp "$1" /tmp/cudaprov/
  # The small shared library may ride with any part; app_env installs it with the provider in a later call.
  if [ -f .cudaprov/libonnxruntime_providers_shared.so ]; then cp .cudaprov/libonnxruntime_providers_shared.so /tmp/cudaprov/; fi
  ls -la /tmp/cudaprov >&2
}

stage_torch() {
  # EXPORT_ONLY=1: the packages and the reference outputs, no PyTorch timings (a second run on a fresh machine).
  # PIXELS=float32 exports the packages as before uint8 pixel_values (docs/model-package.md, "Images").
  cd "$SRC" && PYTHONPATH="$SRC" $PY scripts/gpu/torch_bench.py --out "$WORK" --batches "$BATCHES" --budget-s 0.5 \
    --pixels "${PIXELS:-uint8}" ${EXPORT_ONLY:+--export-only} $SET
}

stage_torch_bg() {
  rm -f "$WORK/export.done" "$WORK/torch.done" "$WORK/torch.failed"
  # A new session (setsid): the device keeps it running after this call returns, while it stays warm.
  setsid bash -c "cd '$ROOT' && { SRC='$SRC' WORK='$WORK' DRY='${DRY:-0}' BATCHES='$BATCHES' EXPORT_ONLY='${EXPORT_ONLY:-}' bash '$SRC/scripts/gpu/reproduce.sh' torch || touch '$WORK/torch.failed'; }" \
    > "$WORK/torch.log" 2>&1 < /dev/null &
  sleep 5
  tail -n 5 "$WORK/torch.log" >&2 || true
}

stage_status() {
  nvidia-smi --query-gpu=name,memory.used,utilization.gpu --format=csv,noheader 2>/dev/null >&2 || true
  ls "$WORK" >&2
  tail -n 8 "$WORK/torch.log" >&2 || true
}

# Waits for a marker of the PyTorch stage; fails when that stage failed before writing it or time runs out.
wait_for() {
  local marker=$1
  while [ ! -f "$marker" ]; do
    if [ -f "$WORK/torch.failed" ]; then log "the PyTorch stage failed before $marker:"; tail -n 30 "$WORK/torch.log" >&2; return 1; fi
    if [ "$(left)" -lt 60 ]; then log "gave up waiting for $marker"; return 1; fi
    sleep 3
  done
}

stage_ort() {
  app_env
  if [ "$DEVICE" = cuda ]; then
    # The device selection as the server does it (it then stops: there is no repository there).
    for d in cuda auto; do
      node "$APP/dist/src/cli/main.js" serve --device $d --port 0 --model-repository /nonexistent 2>&1 | grep -E 'execution provider chosen|dust-serve:' | cut -c1-700 >&2 || true
    done
  fi
  wait_for "$WORK/export.done"
  node "$SRC/scripts/gpu/prep-bench.mjs" --app "$APP" --package "$WORK/repo32/dust-paper/1" --out "$WORK/prep.json" >&2
  # ONNX Runtime's timings wait for PyTorch's to end (one GPU); a failure there does not stop them.
  wait_for "$WORK/torch.done" || log "continuing without the PyTorch timings"
  node "$SRC/scripts/gpu/ort-bench.mjs" --app "$APP" --work "$WORK" --configs "$CONFIGS" --batches "$BATCHES" \
    --budget-s 0.6 --deadline-s "$(( $(left) - 30 ))" ${PROFILE_BATCH:+--profile-batch $PROFILE_BATCH} --out "$WORK/ort.json"
}

# One `npm run bench` invocation (the built dist/bench/fleet.js); its JSON goes to $WORK/serve-<name>.json.
bench() {
  local name=$1 repo=$2
  shift 2
  if [ "$(left)" -lt "${NEED_S:-120}" ]; then log "skipping $name: $(left) s left"; return 0; fi
  log "bench $name: $*"
  node "$APP/dist/bench/fleet.js" --model-repository "$repo" --threads 1 --quiet --server-args "--device $DEVICE${SERVER_EXTRA:+ $SERVER_EXTRA}" \
    --out "$WORK/serve-$name.json" "$@" > /dev/null 2> "$WORK/serve-$name.log" || { log "bench $name failed:"; tail -n 20 "$WORK/serve-$name.log" >&2; }
}

stage_serve() {
  app_env
  # The precision served to the fleets: the faster of the two at batch 64 in the ONNX Runtime timings.
  local best=repo16
  if [ -f "$WORK/ort.json" ]; then
    best=$(node -e '
      const r = require(process.argv[1]).configs; const step = (c) => r[c]?.denoiser?.batches?.["64"]?.p50_ms ?? Infinity;
      console.log(step(process.argv[2] + "-fp32") < step(process.argv[2] + "-fp16") ? "repo32" : "repo16")' "$WORK/ort.json" "$DEVICE")
  fi
  log "fleet runs use $best"
  case "${SERVE_SET:-full}" in
    native | native-fleet | native-strict | native-short)
      # The native executor's targets (--device cuda picks it). CUDA graphs on (each replay is checked at load; the
      # server serves without them when one differs); robots send views at the model's size, as openpi clients do.
      # native: batch-1 latency at 4:4 and 4:16, then the fleets. native-fleet: the 64- and 256-robot runs only;
      # native-short: the 64-robot run; native-strict: the 256-robot run (for a session with little device time).
      export SERVER_EXTRA=${SERVER_EXTRA---cuda-graphs true}
      set -- --view-side model
      wait_for "$WORK/export.done"
      local set=${SERVE_SET}
      if [ "$set" = native ]; then
        NEED_S=60 bench "native-1robot-4x4-${best#repo}" "$WORK/$best" --robots 1 --mix 4:4 --modes step --warmup 2 --duration "$DURATION" "$@"
        NEED_S=60 bench "native-1robot-4x16-${best#repo}" "$WORK/$best" --robots 1 --mix 4:16 --modes step --warmup 2 --duration "$DURATION" "$@"
      fi
      if [ "$set" != native-strict ]; then
        # 64 robots against max-batch-1 and the offline limit: three servers with their graph captures, about 4 min on
        # the fourth H100 run.
        NEED_S=250 bench "native-robots${ROBOTS_MANY}-${best#repo}" "$WORK/$best" --robots "$ROBOTS_MANY" --modes step,max-batch-1,offline --warmup 3 --duration "$DURATION" "$@"
      fi
      if [ "$set" != native-short ]; then
        # Goodput within the budget needs shedding past saturation: strict budgets, unary calls, and a refused robot
        # asking again at its next chunk request (50 ms, a 20 Hz loop) rather than at once. STRICT_CHANNELS: the
        # gRPC connections the robots share, one bench each (the fourth H100 run saw 380 ms between 256 robots on
        # one connection and the server's clock; the bench raises 1 to the connections the robots need, 3 for 256).
        local ch
        for ch in ${STRICT_CHANNELS:-1 64}; do
          NEED_S=100 bench "native-robots${ROBOTS_MOST}-budget100-strict-ch${ch}-${best#repo}" "$WORK/$best" --robots "$ROBOTS_MOST" --budget-ms 100 --strict-budget \
            --rpc predict --retry-delay-ms 50 --channels "$ch" --modes step,max-batch-1 --warmup 3 --duration "$DURATION" "$@"
        done
      fi
      return 0
      ;;
  esac
  if [ "${SERVE_SET:-full}" = short ]; then
    # A second run after a change: batch-1 latency and the 64-robot comparison only.
    NEED_S=60 bench "1robot-4x4-${best#repo}" "$WORK/$best" --robots 1 --mix 4:4 --modes step --warmup 2 --duration "$DURATION"
    NEED_S=120 bench "robots${ROBOTS_MANY}-${best#repo}" "$WORK/$best" --robots "$ROBOTS_MANY" --modes step,max-batch-1 --warmup 3 --duration "$DURATION"
    return 0
  fi
  NEED_S=60 bench 1robot-4x4-fp32 "$WORK/repo32" --robots 1 --mix 4:4 --modes step --warmup 2 --duration "$DURATION"
  NEED_S=60 bench 1robot-4x4-fp16 "$WORK/repo16" --robots 1 --mix 4:4 --modes step --warmup 2 --duration "$DURATION"
  NEED_S=60 bench "1robot-4x16-${best#repo}" "$WORK/$best" --robots 1 --mix 4:16 --modes step --warmup 2 --duration "$DURATION"
  NEED_S=120 bench "robots${ROBOTS_MANY}-${best#repo}" "$WORK/$best" --robots "$ROBOTS_MANY" --modes step,max-batch-1 --warmup 3 --duration "$DURATION"
  # Profiled (main thread and inference worker): where the event loop's time goes under saturation.
  NEED_S=120 bench "robots${ROBOTS_MOST}-${best#repo}" "$WORK/$best" --robots "$ROBOTS_MOST" --modes step,max-batch-1 --warmup 3 --duration "$DURATION" \
    --server-node-args "--cpu-prof --cpu-prof-dir=$WORK/prof"
  if [ "$DEVICE" = cuda ]; then
    DEVICE=webgpu NEED_S=90 bench 1robot-4x4-webgpu-fp32 "$WORK/repo32" --robots 1 --mix 4:4 --modes step --warmup 2 --duration "$DURATION"
  fi
}

# The native executor on dust-tiny: node placement, each graph's check, and parity against the CPU with and without
# CUDA graphs (the paper-size CPU reference would take minutes). Seconds; needs no PyTorch stage.
stage_native_tiny() {
  app_env
  node "$SRC/scripts/gpu/native-check.mjs" --app "$APP" --package "$SRC/models/dust-tiny/1" --device "$DEVICE" \
    --max-batch 64 --runs 10 --skip-baseline --deadline-s "$(( $(left) - 20 ))" --out "$WORK/native-tiny.json" > "$WORK/native-tiny.log" 2>&1 ||
    log "native-check (dust-tiny) exited $?: see native-tiny.log"
  tail -n 3 "$WORK/native-tiny.log" >&2
}

# The native executor's CUDA graphs against the CPU on the paper's structure (the scripted sequence: rows joining,
# scattered and padded steps, rows finishing; each replay checked at load, and unchecked variants), on a narrow
# package the current exporter writes here in seconds. No step timings: stage_native times the paper-size package.
stage_native_narrow() {
  app_env
  local dir="$WORK/narrow"
  if [ ! -f "$dir/export.done" ]; then
    (cd "$SRC" && PYTHONPATH="$SRC" $PY scripts/gpu/torch_bench.py --out "$dir" --batches 1 --export-only --pixels "${PIXELS:-uint8}" $NARROW) > "$WORK/narrow-export.log" 2>&1 ||
      { log "the narrow export failed:"; tail -n 20 "$WORK/narrow-export.log" >&2; return 1; }
  fi
  node "$SRC/scripts/gpu/native-check.mjs" --app "$APP" --package "$dir/repo16/dust-paper/1" --device "$DEVICE" \
    --max-batch 64 --runs 5 --skip-baseline --timings none --deadline-s "$(( $(left) - 20 ))" --out "$WORK/native-narrow.json" > "$WORK/native-narrow.log" 2>&1 ||
    log "native-check (narrow) exited $?: see native-narrow.log"
  tail -n 3 "$WORK/native-narrow.log" >&2
}

# Device time per op type and the slowest nodes of the paper-size VLM and denoiser (float16, onnxruntime-node's CUDA
# session), from ONNX Runtime's profiler with blocking launches (scripts/gpu/op-profile.mjs says why).
stage_profile() {
  app_env
  wait_for "$WORK/export.done"
  local pkg="$WORK/${NATIVE_REPO:-repo16}/dust-paper/1" g
  for g in vlm denoiser; do
    CUDA_LAUNCH_BLOCKING=1 node "$SRC/scripts/gpu/op-profile.mjs" --app "$APP" --package "$pkg" --graph "$g" --device "$DEVICE" \
      --batches "${PROFILE_BATCHES:-1,64}" --runs 3 --out "$WORK/op-profile-$g.json" 2>&1 | tail -n 3 >&2 || log "op-profile ($g) failed"
  done
}

# Where the VLM's time goes: the package's VLM cut after each part and with its patch-embedding Conv as a MatMul
# (scripts/gpu/vlm_parts.py), timed at batch 1, 8 and 64 next to the whole graph (scripts/gpu/vlm-parts.mjs).
stage_vlm_parts() {
  app_env
  wait_for "$WORK/export.done"
  local pkg="$WORK/${NATIVE_REPO:-repo16}/dust-paper/1"
  (cd "$SRC" && $PY scripts/gpu/vlm_parts.py --package "$pkg" --out "$WORK/vlm-parts") >&2
  node "$SRC/scripts/gpu/vlm-parts.mjs" --app "$APP" --package "$pkg" --parts "$WORK/vlm-parts" --device "$DEVICE" \
    --batches "${VLM_BATCHES:-1,8,64}" --out "$WORK/vlm-parts.json"
}

# The native executor on the paper-size package, in two processes with their whole logs kept (collect packs them):
# first with CUDA graphs (capture, each replay's check, steps), then node by node (steps per bucket), since a capture
# that goes wrong can take its process down (BENCHMARKS.md, "Second H100 run") and must not take the other with it.
# The CPU reference of the parity stage takes minutes at this size: parity is checked on the narrow package
# (native-narrow).
stage_native() {
  app_env
  wait_for "$WORK/export.done"
  # With EXPORT_ONLY=1 the PyTorch stage ends after the export; its timings would share the GPU with these.
  wait_for "$WORK/torch.done" || log "the PyTorch stage did not finish; the native check runs anyway"
  local pkg="$WORK/${NATIVE_REPO:-repo16}/dust-paper/1" variant
  for variant in cudaGraphs noGraphs; do
    node "$SRC/scripts/gpu/native-check.mjs" --app "$APP" --package "$pkg" --device "$DEVICE" --skip-parity --timings "$variant" \
      --max-batch "${NATIVE_MAX_BATCH:-64}" --runs "${NATIVE_RUNS:-20}" --deadline-s "$(( $(left) / 2 ))" ${NATIVE_ARGS:-} \
      --out "$WORK/native-$variant.json" > "$WORK/native-$variant.log" 2>&1 || log "native-check ($variant) exited $?: see native-$variant.log"
    tail -n 3 "$WORK/native-$variant.log" >&2
  done
}

# What uint8 pixel rows save in the host-to-device copy, and what normalising on the device costs (PyTorch only: a
# call too short for the server's run can still measure it).
stage_pixel_copy() {
  cd "$SRC" && $PY scripts/gpu/pixel_copy.py --out "$WORK/pixel-copy.json"
}

stage_peer() {
  wait_for "$WORK/torch.done" || log "the PyTorch timings did not finish; the peer runs anyway"
  cd "$SRC" && PYTHONPATH="$SRC" $PY scripts/gpu/torch_peer.py --out "$WORK/peer.json" --robots "${PEER_ROBOTS:-1,16,$ROBOTS_MANY}" \
    --mix "${PEER_MIX:-4:4}" --duration-s "$DURATION" --step-batches "${PEER_STEP_BATCHES:-1,64}" $SET
}

# At most 8 files come back from a call: JSON results as they are, logs in one archive.
stage_collect() {
  export PATH="$APP/.node:$PATH"
  # Each result as bench/results keeps it (bench/results.ts): <benchmark>/<date>-<commit>-<machine>.json, the
  # metadata block first. There is no git here: COMMIT names the build that was bundled (null when unset);
  # DUST_BENCH_MACHINE names the machine (h200 by default); the date is when the stage wrote its file.
  DUST_BENCH_MACHINE=${DUST_BENCH_MACHINE:-h200} node --input-type=module -e '
    import fs from "node:fs";
    import path from "node:path";
    const [app, work, out, device, commit] = process.argv.slice(1);
    const { resultMeta, savedResultPath } = await import(path.join(app, "dist/bench/results.js"));
    const keep = (benchmark, result, writtenAt) => {
      const meta = { ...resultMeta(benchmark, { serverArgs: ["--device", device], startedAt: writtenAt }), commit: commit || null, command: `scripts/gpu/reproduce.sh (${benchmark})` };
      const file = savedResultPath(meta, out);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, JSON.stringify({ meta, ...result }, null, 1) + "\n");
    };
    const read = (f) => JSON.parse(fs.readFileSync(path.join(work, f), "utf8"));
    const mtime = (f) => fs.statSync(path.join(work, f)).mtime;
    for (const [f, benchmark] of [["torch.json", "gpu-torch"], ["ort.json", "gpu-ort"], ["prep.json", "gpu-prep"], ["peer.json", "gpu-peer"], ["native-noGraphs.json", "gpu-native"], ["native-cudaGraphs.json", "gpu-native"], ["native-tiny.json", "gpu-native"], ["native-narrow.json", "gpu-native"], ["op-profile-vlm.json", "gpu-op-profile"], ["op-profile-denoiser.json", "gpu-op-profile"], ["vlm-parts.json", "gpu-vlm-parts"], ["pixel-copy.json", "gpu-pixel-copy"]]) {
      if (fs.existsSync(path.join(work, f))) keep(benchmark, read(f), mtime(f));
    }
    const serve = fs.readdirSync(work).filter((f) => /^serve-.*\.json$/.test(f)).sort();
    if (serve.length > 0) {
      keep("gpu-serve", Object.fromEntries(serve.map((f) => [f.replace(/^serve-|\.json$/g, ""), read(f)])), mtime(serve[0]));
    }' "$APP" "$WORK" "$OUT" "$DEVICE" "${COMMIT:-}"
  tar -C "$WORK" -czf "$OUT/logs.tgz" --exclude='repo*' --exclude='reference.json' --exclude='out' --exclude='*.onnx' --exclude='prof' . 2>/dev/null || true
  if [ -d "$WORK/prof" ]; then
    tar -C "$WORK" -czf "$OUT/prof.tgz" prof
    [ "$(stat -c %s "$OUT/prof.tgz")" -lt 15000000 ] || { log "profiles too large to bring back"; rm -f "$OUT/prof.tgz"; }
  fi
  ls -la "$OUT" >&2
}

cmd=${1:?stage: part|torch|torch-bg|status|ort|native|native-tiny|native-narrow|profile|vlm-parts|serve|peer|pixel-copy|collect}
shift
case "$cmd" in
  part) stage_part "$@" ;;
  torch) stage_torch ;;
  torch-bg) stage_torch_bg ;;
  status) stage_status ;;
  ort) stage_ort ;;
  serve) stage_serve ;;
  peer) stage_peer ;;
  pixel-copy) stage_pixel_copy ;;
  native) stage_native ;;
  native-tiny) stage_native_tiny ;;
  native-narrow) stage_native_narrow ;;
  profile) stage_profile ;;
  vlm-parts) stage_vlm_parts ;;
  collect) stage_collect ;;
  *) echo "unknown stage $cmd" >&2; exit 2 ;;
esac
