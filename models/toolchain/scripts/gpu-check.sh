#!/bin/bash
# torch 2.x + CUDA check of the toolchain (run on the device machine from the repo root).
set -o pipefail
export PYTHONUNBUFFERED=1
cd "$(dirname "$0")/../../.."
python3 -c "import torch, onnx, onnxruntime, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '-', 'onnx', onnx.__version__, 'ort', onnxruntime.__version__)"
echo "== pytest (torch 2.x, with Python onnxruntime: parity tests run)"
time python3 -m pytest -q -p no:cacheprovider models/toolchain/tests 2>&1 | tail -n 25
echo "== train on CUDA"
time python3 -m models.toolchain train --device cuda --steps 200 --batch-size 64 --lr 1e-3 --episodes 16 --log-every 50 --out /tmp/gpu/ckpt.pt 2>&1 | tail -n 8
echo "== export + validate + golden from the CUDA-trained checkpoint"
python3 -m models.toolchain export --checkpoint /tmp/gpu/ckpt.pt --out /tmp/gpu/pkg/1 --weights-dtype float16 2>&1 | tail -n 3
python3 -m models.toolchain validate /tmp/gpu/pkg/1
python3 -m models.toolchain golden --package /tmp/gpu/pkg/1 --out /tmp/gpu/fx 2>&1 | tail -n 2
python3 - <<'PY'
import json, numpy as np, onnxruntime as ort
from models.toolchain.golden import decode_tensor
cases = json.load(open('/tmp/gpu/fx/parity.json'))['cases']
for c in cases:
    s = ort.InferenceSession(f"/tmp/gpu/pkg/1/{c['graph']}.onnx", providers=['CPUExecutionProvider'])
    names = list(c['outputs'])
    got = s.run(names, {k: decode_tensor(v) for k, v in c['inputs'].items()})
    print(c['graph'], c['batch'], {n: float(np.abs(g - decode_tensor(c['outputs'][n])).max()) for n, g in zip(names, got)})
PY
echo "== CUDA forward of the tiny preset matches CPU"
python3 - <<'PY'
import torch
from models.toolchain.package import load_package
p = load_package('models/dust-tiny/1')['policy']
g = torch.Generator().manual_seed(0)
x = (torch.randn(4, 48, 128, generator=g), torch.randn(4, 64, generator=g), torch.randn(4, 16, 32, generator=g), torch.randn(4, 16, 32, generator=g), torch.rand(4, generator=g), torch.rand(4, generator=g), torch.tensor([0, 1, 1, 0]))
with torch.no_grad():
    cpu = p.denoiser(*x)
    gpu = p.denoiser.cuda()(*[t.cuda() for t in x])
print('max |cuda - cpu|', max(float((a - b.cpu()).abs().max()) for a, b in zip(cpu, gpu)))
PY
