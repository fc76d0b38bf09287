"""ONNX export of both graphs exactly as docs/model-package.md states, and the way back (package -> PyTorch).

Graphs are traced with `torch.onnx.export` (TorchScript exporter) at opset 17 with a dynamic axis named `batch`
on every input and output. Constant folding is off so that every initializer keeps its PyTorch parameter name:
that is what lets `load_policy_from_package` rebuild the PyTorch modules from a package alone (golden vectors,
round-trip tests). ONNX Runtime folds the remaining weight transposes itself when it loads the session, so this
costs nothing at inference time.
"""

from __future__ import annotations

import inspect
import tempfile
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

from .config import ModelConfig
from .model import DustPolicy

OPSET = 17
ONNX_PROTOBUF_LIMIT = 2 * 1024**3  # a single protobuf cannot exceed 2 GiB; larger models use external data

VLM_INPUTS = ["pixel_values", "input_ids", "attention_mask"]
# Element types the VLM's pixel_values input may have (docs/model-package.md): float32 takes rows normalised on the
# host; uint8 takes the resized pixels and normalises in the graph (`take_uint8_pixels`), a quarter of the bytes.
PIXEL_DTYPES = ("float32", "uint8")


def graph_signature(cfg: ModelConfig) -> Dict[str, Dict[str, Dict[str, Tuple[str, List]]]]:
    """The contract of docs/model-package.md for this config: {graph: {"inputs"|"outputs": {name: (dtype, shape)}}}.

    "B" marks the dynamic batch axis. The manifest records every other number, and tests check the exported
    graphs' declared inputs/outputs against this table.
    """
    v, d = cfg.vlm, cfg.denoiser
    n_views = len(v.cameras)
    # An action-only policy's graphs have none of the future stream's inputs and outputs.
    future = d.future_stream
    return {
        "vlm": {
            "inputs": {
                "pixel_values": ("float32", ["B", n_views, 3, v.image_size, v.image_size]),
                "input_ids": ("int64", ["B", v.max_tokens]),
                "attention_mask": ("int64", ["B", v.max_tokens]),
            },
            "outputs": {
                "vl_embs": ("float32", ["B", v.cond_tokens, v.width]),
                **({"obs_embedding": ("float32", ["B", v.future_tokens, v.future_dim])} if future else {}),
            },
        },
        "denoiser": {
            "inputs": {
                "vl_embs": ("float32", ["B", d.cond_tokens, d.cond_dim]),
                "state": ("float32", ["B", d.state_dim]),
                "actions": ("float32", ["B", d.action_horizon, d.action_dim]),
                **({"future": ("float32", ["B", d.future_tokens, d.future_dim])} if future else {}),
                "tau_a": ("float32", ["B"]),
                **({"tau_o": ("float32", ["B"])} if future else {}),
                "embodiment_id": ("int64", ["B"]),
                # Prefix conditioning only: the flow time of every action position (committed ones at 1).
                **({"action_times": ("float32", ["B", d.action_horizon])} if d.prefix_conditioning else {}),
            },
            "outputs": {
                "v_actions": ("float32", ["B", d.action_horizon, d.action_dim]),
                **({"v_future": ("float32", ["B", d.future_tokens, d.future_dim])} if future else {}),
            },
        },
    }


def example_inputs(cfg: ModelConfig, graph: str, batch: int = 2) -> Tuple[torch.Tensor, ...]:
    """Tracing inputs with the right dtypes and shapes (values are irrelevant to the traced graph)."""
    g = torch.Generator().manual_seed(0)
    out = []
    for name, (dtype, shape) in graph_signature(cfg)[graph]["inputs"].items():
        dims = [batch if s == "B" else s for s in shape]
        if dtype == "int64":
            high = cfg.vlm.vocab_size if name == "input_ids" else (2 if name == "attention_mask" else cfg.denoiser.num_embodiments)
            out.append(torch.randint(0, high, dims, generator=g, dtype=torch.int64))
        elif name in ("tau_a", "tau_o", "action_times"):
            out.append(torch.rand(dims, generator=g))
        else:
            out.append(torch.randn(dims, generator=g))
    return tuple(out)


def _export_kwargs() -> Dict[str, object]:
    # torch >= 2.5 grew a `dynamo` switch whose default flipped to True in 2.9; the TorchScript exporter is the
    # one whose output this toolchain is tested against on torch 1.13, so ask for it explicitly where possible.
    params = inspect.signature(torch.onnx.export).parameters
    return {"dynamo": False} if "dynamo" in params else {}


def declare_shapes(model: onnx.ModelProto, signature: Dict[str, Dict[str, Tuple[str, List]]]) -> None:
    """Write the contract's shapes into the graph's declared inputs/outputs.

    The tracer's shape inference leaves some output axes symbolic (e.g. a token axis produced by slicing); the
    contract fixes every axis but the batch, and the server's loader compares the declared shapes with the
    manifest, so they are stated exactly. ONNX Runtime checks the real output shapes against these at run time.
    """
    for values, table in ((model.graph.input, signature["inputs"]), (model.graph.output, signature["outputs"])):
        for vi in values:
            _, shape = table[vi.name]
            dims = vi.type.tensor_type.shape.dim
            if len(dims) != len(shape):
                raise ValueError(f"{vi.name}: traced rank {len(dims)} differs from the contract's {len(shape)}")
            for dim, want in zip(dims, shape):
                if want == "B":
                    dim.Clear()
                    dim.dim_param = "batch"
                else:
                    dim.Clear()
                    dim.dim_value = int(want)


def export_graph(module: nn.Module, inputs: Tuple[torch.Tensor, ...], path: Path, input_names: List[str],
                 output_names: List[str], signature: Dict[str, Dict[str, Tuple[str, List]]],
                 external_data: bool = False) -> None:
    """Export one graph to `path`; graphs over the 2 GiB protobuf limit (or all, with external_data=True) get
    their weights in one `<name>.data` file beside the graph."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    dynamic = {n: {0: "batch"} for n in input_names + output_names}
    size = sum(p.numel() * p.element_size() for p in module.parameters())
    module.train(False)
    with torch.no_grad():
        if size < ONNX_PROTOBUF_LIMIT - 64 * 1024**2 and not external_data:
            torch.onnx.export(
                module, inputs, str(path), opset_version=OPSET, input_names=input_names,
                output_names=output_names, dynamic_axes=dynamic, do_constant_folding=False, **_export_kwargs(),
            )
            model = onnx.load(str(path))
            declare_shapes(model, signature)
            onnx.checker.check_model(model)
            onnx.save_model(model, str(path))
            return
        # Large model: the exporter writes one file per tensor next to the graph; gather them into a single
        # `<name>.data` so that a package stays a handful of files. Streamed tensor by tensor, so the weights are
        # never held twice in memory.
        with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
            tmp_path = Path(tmp) / path.name
            torch.onnx.export(
                module, inputs, str(tmp_path), opset_version=OPSET, input_names=input_names,
                output_names=output_names, dynamic_axes=dynamic, do_constant_folding=False, **_export_kwargs(),
            )
            model = onnx.load(str(tmp_path), load_external_data=False)
            declare_shapes(model, signature)
            save_with_external_data(model, path, Path(tmp))
        onnx.checker.check_model(str(path))  # the path form handles models beyond 2 GiB


def save_with_external_data(model: onnx.ModelProto, path: Path, workdir: Path) -> None:
    """Save `model` to `path` with every weight in one aligned `<name>.data` beside it. Weights already stored
    externally are read from `workdir` (where the exporter wrote them); embedded ones are moved out through it."""
    if not any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer):
        onnx.external_data_helper.convert_model_to_external_data(model, all_tensors_to_one_file=False, size_threshold=1024)
        onnx.external_data_helper.write_external_data_tensors(model, str(workdir))
    consolidate_external_data(model, Path(workdir), path.parent / (path.name + ".data"))
    onnx.save_model(model, str(path))


def weight_bytes(model: onnx.ModelProto) -> int:
    """Bytes of the weights a model holds in memory (ByteSize() cannot count past 2 GiB)."""
    return sum(len(t.raw_data) + 4 * len(t.float_data) for t in model.graph.initializer)


def _all_tensors(graph: onnx.GraphProto):
    """Initializers and tensors held in node attributes (the exporter stores large Constant values externally
    too), including those of subgraphs."""
    yield from graph.initializer
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("g"):
                yield from _all_tensors(attr.g)
            for g in attr.graphs:
                yield from _all_tensors(g)


def consolidate_external_data(model: onnx.ModelProto, src_dir: Path, data_path: Path, align: int = 4096) -> None:
    """Copy every externally stored initializer of `model` (files under src_dir) into one file, data_path,
    and point the initializers at it (offsets aligned to 4 KiB so runtimes may memory-map them)."""
    with open(data_path, "wb") as out:
        for tensor in _all_tensors(model.graph):
            if tensor.data_location != onnx.TensorProto.EXTERNAL:
                continue
            info = {e.key: e.value for e in tensor.external_data}
            with open(src_dir / info["location"], "rb") as src:
                src.seek(int(info.get("offset", 0)))
                data = src.read(int(info["length"])) if "length" in info else src.read()
            pad = (-out.tell()) % align
            out.write(b"\0" * pad)
            offset = out.tell()
            out.write(data)
            del tensor.external_data[:]
            for key, value in (("location", data_path.name), ("offset", str(offset)), ("length", str(len(data)))):
                entry = tensor.external_data.add()
                entry.key, entry.value = key, value


class _GraphWrapper(nn.Module):
    """Top-level module handed to the exporter.

    The TorchScript exporter merges initializers with equal VALUES unless the exported module reports
    `training=True` (torch/onnx/utils.py, `_jit_pass_onnx_deduplicate_initializers`): in a freshly initialised
    model every zero bias would collapse into one initializer and lose its parameter name. This wrapper keeps
    its own flag at True while every submodule is in eval mode; nothing in these graphs behaves differently in
    training mode (no dropout, no batch norm), so the traced computation is the inference one.
    """

    def train(self, mode: bool = True) -> "_GraphWrapper":
        for child in self.children():
            child.train(False)
        self.training = True
        return self


class _VLMGraph(_GraphWrapper):
    def __init__(self, policy: DustPolicy) -> None:
        super().__init__()
        self.vlm = policy.vlm
        self.future_stream = policy.cfg.denoiser.future_stream

    def forward(self, pixel_values, input_ids, attention_mask):  # noqa: D401 - ONNX signature
        vl_embs, obs = self.vlm(pixel_values, input_ids, attention_mask)
        return (vl_embs, obs) if self.future_stream else vl_embs


class _DenoiserGraph(_GraphWrapper):
    def __init__(self, policy: DustPolicy) -> None:
        super().__init__()
        self.denoiser = policy.denoiser

    def forward(self, vl_embs, state, actions, future, tau_a, tau_o, embodiment_id, action_times=None):
        return self.denoiser(vl_embs, state, actions, future, tau_a, tau_o, embodiment_id, action_times)


class _ActionOnlyDenoiserGraph(_GraphWrapper):
    """The denoiser of a policy without a future stream: no future or tau_o input, v_actions only."""

    def __init__(self, policy: DustPolicy) -> None:
        super().__init__()
        self.denoiser = policy.denoiser

    def forward(self, vl_embs, state, actions, tau_a, embodiment_id, action_times=None):
        return self.denoiser(vl_embs, state, actions, None, tau_a, None, embodiment_id, action_times)[0]


def export_graphs(policy: DustPolicy, out_dir: Path, external_data: bool = False) -> Dict[str, Path]:
    """Write vlm.onnx and denoiser.onnx; returns the files written (external data included)."""
    out_dir = Path(out_dir)
    policy = policy.to("cpu").eval()
    cfg = policy.cfg
    sig = graph_signature(cfg)
    export_graph(_VLMGraph(policy), example_inputs(cfg, "vlm"), out_dir / "vlm.onnx", VLM_INPUTS,
                 list(sig["vlm"]["outputs"]), sig["vlm"], external_data)
    denoiser = _DenoiserGraph(policy) if cfg.denoiser.future_stream else _ActionOnlyDenoiserGraph(policy)
    export_graph(denoiser, example_inputs(cfg, "denoiser"), out_dir / "denoiser.onnx",
                 list(sig["denoiser"]["inputs"]), list(sig["denoiser"]["outputs"]), sig["denoiser"], external_data)
    files = {}
    for name in ("vlm.onnx", "vlm.onnx.data", "denoiser.onnx", "denoiser.onnx.data"):
        if (out_dir / name).exists():
            files[name] = out_dir / name
    return files


def declared_signature(path: Path) -> Dict[str, Dict[str, Tuple[str, List]]]:
    """The inputs/outputs an ONNX file declares, in `graph_signature`'s format (symbolic dims as their name)."""
    model = onnx.load(str(path), load_external_data=False)
    names = {onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.INT64: "int64", onnx.TensorProto.UINT8: "uint8"}

    def describe(values) -> Dict[str, Tuple[str, List]]:
        out = {}
        for vi in values:
            t = vi.type.tensor_type
            dims = [d.dim_param if d.dim_param else d.dim_value for d in t.shape.dim]
            out[vi.name] = (names.get(t.elem_type, str(t.elem_type)), dims)
        return out

    return {"inputs": describe(model.graph.input), "outputs": describe(model.graph.output)}


def pixel_dtype(path: Path) -> str:
    """The element type of a VLM file's declared `pixel_values` input ("float32" or "uint8"): the one place the fact
    lives; the manifest's image.pixel_dtype is read from here when a package is written."""
    return declared_signature(path)["inputs"]["pixel_values"][0]


# Names of what `take_uint8_pixels` adds to a VLM graph; validate_package reads the constants back by these names.
PIXELS_FLOAT = "pixel_values::float"
PIXELS_SCALED = "pixel_values::scaled"
PIXELS_NORMALIZED = "pixel_values::normalized"
PIXEL_SCALE = "pixel_values::scale"
PIXEL_SHIFT = "pixel_values::shift"


def pixel_affine(mean, std) -> Tuple[np.ndarray, np.ndarray]:
    """(scale, shift), float32 [1, 1, 3, 1, 1]: (x / 255 - mean[c]) / std[c] = x * scale[c] + shift[c] (docs/model-package.md,
    "Images"), each constant computed in float64 and rounded once."""
    mean64, std64 = np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64)
    if mean64.shape != (3,) or std64.shape != (3,) or not np.all(np.isfinite(mean64)) or not np.all(std64 > 0):
        raise ValueError(f"image mean/std must be 3 finite values each, std > 0; got {list(mean)} / {list(std)}")
    scale = (1.0 / (255.0 * std64)).astype(np.float32).reshape(1, 1, 3, 1, 1)
    shift = (-mean64 / std64).astype(np.float32).reshape(1, 1, 3, 1, 1)
    return scale, shift


def take_uint8_pixels(model: onnx.ModelProto, mean, std) -> None:
    """Rewrite a float32-pixel VLM graph in place so that `pixel_values` is uint8 [B, V, 3, H, W] (the resized pixels,
    0..255) and the graph normalises them: Cast to float32, one Mul and one Add by per-channel constants
    (`pixel_affine`), into what the graph used to take as its input. Everything after is unchanged, so a float32 and
    a uint8 package of the same weights compute the same outputs. Cast, Mul and Add read nothing from the host, so a
    CUDA graph replays them (cuda_graph_hazards)."""
    graph = model.graph
    inputs = {vi.name: vi for vi in graph.input}
    vi = inputs.get("pixel_values")
    if vi is None:
        raise ValueError("the graph has no pixel_values input")
    if vi.type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
        raise ValueError(f"pixel_values is {onnx.TensorProto.DataType.Name(vi.type.tensor_type.elem_type)}, not FLOAT: already converted?")
    for node in graph.node:
        if any(a.HasField("g") or len(a.graphs) > 0 for a in node.attribute):
            raise ValueError(f"{node.op_type} {node.name}: subgraphs are not rewritten")
        for i, name in enumerate(node.input):
            if name == "pixel_values":
                node.input[i] = PIXELS_NORMALIZED
    scale, shift = pixel_affine(mean, std)
    graph.initializer.extend([numpy_helper.from_array(scale, PIXEL_SCALE), numpy_helper.from_array(shift, PIXEL_SHIFT)])
    prefix = [
        onnx.helper.make_node("Cast", ["pixel_values"], [PIXELS_FLOAT], to=onnx.TensorProto.FLOAT, name="pixel_values::cast"),
        onnx.helper.make_node("Mul", [PIXELS_FLOAT, PIXEL_SCALE], [PIXELS_SCALED], name="pixel_values::mul"),
        onnx.helper.make_node("Add", [PIXELS_SCALED, PIXEL_SHIFT], [PIXELS_NORMALIZED], name="pixel_values::add"),
    ]
    nodes = prefix + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    vi.type.tensor_type.elem_type = onnx.TensorProto.UINT8


def load_initializers(path: Path) -> Dict[str, np.ndarray]:
    model = onnx.load(str(path), load_external_data=True)
    return {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}


def load_policy_weights(policy: DustPolicy, package_dir: Path) -> None:
    """Fill `policy` from a package's ONNX initializers (names are the PyTorch parameter names)."""
    package_dir = Path(package_dir)
    # An action-only package's VLM exports no obs_embedding, so the exporter drops the weights only it reads.
    unexported = () if policy.cfg.denoiser.future_stream else ("vlm.obs_proj.",)
    for graph, module in (("vlm", policy.vlm), ("denoiser", policy.denoiser)):
        inits = load_initializers(package_dir / f"{graph}.onnx")
        state = module.state_dict()
        prefix = f"{graph}."
        missing = []
        for key, value in state.items():
            name = prefix + key
            if name not in inits:
                if not name.startswith(unexported):
                    missing.append(name)
                continue
            arr = inits[name]
            if tuple(arr.shape) != tuple(value.shape):
                raise ValueError(f"{name}: package has shape {arr.shape}, model expects {tuple(value.shape)}")
            # float16-stored weights (package.store_initializers_fp16) widen exactly to float32.
            value.copy_(torch.from_numpy(np.array(arr, dtype=np.float32)))
        if missing:
            raise ValueError(f"{graph}.onnx lacks initializers for {missing[:5]} (+{max(0, len(missing) - 5)} more)")


# Host-staging ONNX Runtime CUDA kernels (onnxruntime/core/providers/cuda, CudaAsyncBuffer users in 1.29): they copy
# per-call metadata from pinned host memory that goes back to a pool when the run ends, while a captured CUDA graph
# keeps the host address and re-reads it on every replay.
ALWAYS_HOST_STAGED = {"ScatterND", "NonMaxSuppression", "LSTM", "GRU", "RNN"}
# Concat and Split pass up to 32 equal inputs (outputs) by value.
MAX_BY_VALUE = 32


def cuda_graph_hazards(model: onnx.ModelProto) -> List[str]:
    """Nodes of `model` that a CUDA graph would replay with stale host metadata, as readable lines (none: [] ).

    A node counts when it runs per call (some input depends on a graph input: nodes over constants alone are folded
    by ONNX Runtime at load) and it is one of: a Shape (the arithmetic after it runs on the CPU); a Concat or Split whose pieces along the axis are unequal, unknown or
    more than 32; a MatMul whose operands both have batch axes and disagree on them (pointer arrays instead of one
    strided batched GEMM); or an op in ALWAYS_HOST_STAGED. The exporter avoids them (model/layers.py cat_tokens,
    equal_split, and model/denoiser.py's joint attention); the test suite keeps it so.
    """
    # No data propagation: onnx's shape inference crashes with it on graphs that hold ONNX Runtime's contrib ops.
    inferred = onnx.shape_inference.infer_shapes(model)
    shapes: Dict[str, List] = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        if vi.type.tensor_type.HasField("shape"):  # no shape: the rank is unknown too
            # A named axis ("batch") equals itself; an axis with neither a size nor a name is unknown (None).
            shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in vi.type.tensor_type.shape.dim]
    # Tensors, read only where a value is needed (a Split's sizes): a large model's weights may be left unloaded.
    constants: Dict[str, onnx.TensorProto] = {t.name: t for t in model.graph.initializer}
    dynamic = {i.name for i in model.graph.input} - set(constants)
    hazards = []
    for node in model.graph.node:
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    constants[node.output[0]] = a.t
            continue
        if not any(i in dynamic for i in node.input if i):
            continue
        dynamic.update(o for o in node.output if o)
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        where = f"{node.op_type} {node.name or node.output[0]}"
        if node.op_type == "Shape":
            # ONNX Runtime's CUDA provider leaves the shape arithmetic after a per-call Shape to the CPU, and a CUDA
            # graph replays none of it (the executor refuses such a session: session.disable_cpu_ep_fallback).
            hazards.append(f"{where}: shape arithmetic on the CPU")
        elif node.op_type in ALWAYS_HOST_STAGED:
            hazards.append(f"{where}: stages its metadata in host memory")
        elif node.op_type in ("Concat", "Split"):
            pieces = node.input if node.op_type == "Concat" else node.output
            ref = shapes.get(node.input[0] if node.op_type == "Split" else node.output[0])
            axis = attrs.get("axis", 0)
            if node.op_type == "Split" and len(node.input) > 1 and node.input[1] in constants:
                sizes = [int(s) for s in numpy_helper.to_array(constants[node.input[1]])]
            elif node.op_type == "Split" and "split" in attrs:
                sizes = [int(s) for s in attrs["split"]]
            elif node.op_type == "Split":
                sizes = [None] * len(pieces) if len(node.input) > 1 and node.input[1] else [0] * len(pieces)
            else:
                sizes = []
                for p in pieces:
                    s = shapes.get(p)
                    sizes.append(None if not s or not ref else s[axis % len(ref)])
            if len(pieces) > MAX_BY_VALUE or None in sizes or len(set(sizes)) > 1:
                hazards.append(f"{where}: {len(pieces)} pieces of sizes {sizes} along axis {axis}")
        elif node.op_type == "MatMul":
            # Shape inference leaves some operands without a rank; those are not judged (the model's batched
            # products are attention's and the per-embodiment weights', both of one batch shape).
            # Axes the tracer's reshapes leave symbolic (unk__N) are not judged either.
            a, b = (shapes.get(i) for i in node.input[:2])
            if a and b and len(a) > 2 and len(b) > 2:
                clash = len(a) != len(b) or any(isinstance(x, int) and isinstance(y, int) and x != y for x, y in zip(a[:-2], b[:-2]))
                if clash:
                    hazards.append(f"{where}: batch axes {a[:-2]} and {b[:-2]}")
    return hazards
