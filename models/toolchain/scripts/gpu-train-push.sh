#!/usr/bin/env bash
# Trains the push task's two runs (DUST and lambda_WM = 0; the DUST run also leaves the weak snapshot) on a
# CUDA host from a recorded dataset archive, both runs at once on the one GPU. Used when the 2-core machine is
# too slow (build-push there: ~1 step/s). The checkpoints come back; `python -m models.toolchain push-export`
# turns them into the packages anywhere.
#
#   bash models/toolchain/scripts/gpu-train-push.sh <dataset.tar.xz> <runs dir> <steps> <batch> [lr] [push-train flags]
#
# e.g. `... push.tar.xz runs 6000 128 1e-3 --vlm vision_width=128 --vlm vision_layers=2 --vlm patch_size=4`.
# LOADER_WORKERS (default 6) per run; KEEP_SNAPSHOTS=0 deletes the quarter-way snapshots at the end.
#
# The archive holds data/ and heldout/ as `npm run push:record` writes them (build-push records the same).
set -euo pipefail
archive=${1:?dataset archive (data/ and heldout/)}
runs=${2:?directory for checkpoints and logs}
steps=${3:?training steps}
batch=${4:?batch size}
lr=${5:-1e-3}
extra=("${@:6}")
work=$(mktemp -d)
mkdir -p "$runs"
tar -C "$work" -xJf "$archive"
weak=$((steps / 8))
py=${PYTHON:-python3}
"$py" -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")'
pids=()
for variant in dust no-wm; do
  PYTHONUNBUFFERED=1 "$py" -m models.toolchain push-train --variant "$variant" --data "$work/data" \
    --heldout "$work/heldout" --runs "$runs" --steps "$steps" --batch-size "$batch" --lr "$lr" --seed 0 \
    --device cuda --threads 2 --loader-workers "${LOADER_WORKERS:-6}" --weak-step "$weak" "${extra[@]}" > "$runs/$variant.log" 2>&1 &
  pids+=($!)
done
status=0
for p in "${pids[@]}"; do wait "$p" || status=$?; done
tail -n 4 "$runs"/*.log
[ "${KEEP_SNAPSHOTS:-1}" = 0 ] && rm -f "$runs"/*/step-*.pt
rm -rf "$work"
exit $status
