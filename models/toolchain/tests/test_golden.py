"""The committed fixtures are what the committed package produces (PyTorch, float32)."""

from __future__ import annotations

import json

import numpy as np
import torch

from models.toolchain.data.episodes import BatchBuilder
from models.toolchain.golden import GOLDEN_STEPS, decode_tensor, golden_cases, parity_cases
from models.toolchain.package import load_package
from models.toolchain.sampling import denoiser_field, joint_sample

from .conftest import TINY_FIXTURES, TINY_PACKAGE

# The same machine reproduces the fixtures bit for bit; another CPU's BLAS may differ in the last bits.
TOL = 1e-5


def _max_diff(a, b) -> float:
    return float(np.max(np.abs(decode_tensor(a).astype(np.float64) - decode_tensor(b).astype(np.float64))))


def _loaded():
    loaded = load_package(TINY_PACKAGE)
    builder = BatchBuilder(loaded["config"], loaded["tokenizer"], loaded["stats"])
    return loaded, builder


def test_golden_sampling_reproduces():
    committed = json.loads((TINY_FIXTURES / "golden-sampling.json").read_text())
    assert committed["model"] == "dust-tiny"
    loaded, builder = _loaded()
    fresh = golden_cases(loaded["policy"], loaded["tokenizer"], builder)
    assert len(fresh) == len(committed["cases"]) == len(GOLDEN_STEPS) * 2
    for new, old in zip(fresh, committed["cases"]):
        assert (new["embodiment_id"], new["action_steps"], new["vision_steps"]) == (
            old["embodiment_id"], old["action_steps"], old["vision_steps"])
        for part in ("inputs", "outputs"):
            for name in old[part]:
                assert _max_diff(new[part][name], old[part][name]) <= TOL, (part, name)


def test_golden_outputs_follow_from_their_inputs():
    """Independent of how the inputs were built: the sampler over the package's denoiser maps each case's
    inputs to its outputs."""
    committed = json.loads((TINY_FIXTURES / "golden-sampling.json").read_text())
    loaded, _ = _loaded()
    for case in committed["cases"]:
        inp = {k: torch.from_numpy(decode_tensor(v)) for k, v in case["inputs"].items()}
        f = denoiser_field(loaded["policy"].denoiser, inp["vl_embs"], inp["state"],
                           torch.tensor([case["embodiment_id"]], dtype=torch.int64))
        a, o = joint_sample(f, inp["actions0"], inp["future0"], case["action_steps"], case["vision_steps"])
        np.testing.assert_allclose(a.numpy(), decode_tensor(case["outputs"]["actions"]), atol=TOL)
        np.testing.assert_allclose(o.numpy(), decode_tensor(case["outputs"]["future"]), atol=TOL)


def test_parity_fixture_reproduces():
    committed = json.loads((TINY_FIXTURES / "parity.json").read_text())
    loaded, builder = _loaded()
    fresh = parity_cases(loaded["policy"], loaded["tokenizer"], builder)
    assert [(c["graph"], c["batch"]) for c in fresh] == [(c["graph"], c["batch"]) for c in committed["cases"]]
    assert {c["batch"] for c in fresh} == {1, 7}
    for new, old in zip(fresh, committed["cases"]):
        for part in ("inputs", "outputs"):
            for name in old[part]:
                assert _max_diff(new[part][name], old[part][name]) <= TOL, (new["graph"], new["batch"], name)


def test_committed_parity_in_onnxruntime_when_available():
    """Same check as test/model-parity.test.ts, where a Python onnxruntime exists (e.g. the GPU machine)."""
    ort = __import__("pytest").importorskip("onnxruntime")
    committed = json.loads((TINY_FIXTURES / "parity.json").read_text())
    sessions = {g: ort.InferenceSession(str(TINY_PACKAGE / f"{g}.onnx"), providers=["CPUExecutionProvider"])
                for g in ("vlm", "denoiser")}
    for case in committed["cases"]:
        feeds = {k: decode_tensor(v) for k, v in case["inputs"].items()}
        names = list(case["outputs"])
        got = sessions[case["graph"]].run(names, feeds)
        for name, value in zip(names, got):
            np.testing.assert_allclose(value, decode_tensor(case["outputs"][name]), atol=1e-4, err_msg=name)
