"""Half-precision variants of exported graphs: weights and computation in float16, inputs and outputs float32.

docs/model-package.md fixes every graph input and output as float32, so the server never converts large tensors on
the CPU; the graph casts its float inputs to float16 on the device right after they arrive and its outputs back
to float32 before they leave. Everything between runs in float16 (on ONNX Runtime's CUDA provider: tensor-core
GEMMs with float32 accumulation, LayerNorm and Softmax statistics in float32).

Two kinds of subgraph keep float32, found from the graph rather than from names:
- the sinusoidal timestep features. 1000 * tau reaches 1000, where float16's spacing is 0.5, so sin/cos of it
  would be noise; every float input of a Sin or Cos, back to the graph inputs, stays float32 (the features
  themselves are in [-1, 1] and are cast to float16 afterwards);
- arithmetic on constants outside float16's range (the VLM's -1e9 attention-mask bias: in float16 it becomes
  -inf, and (1 - mask) * -inf is NaN where the mask is 1). The product is computed in float32 and cast at the
  boundary, where -1e9 saturates to -inf and 0 stays 0, which Softmax handles.

The walk back from those nodes follows float tensors only (it stops at Shape and other integer outputs), so a
shape taken from the vision tower does not pull the tower into float32.
"""

from __future__ import annotations

from typing import Dict, Iterable, List, Set

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

FLOAT, FLOAT16 = TensorProto.FLOAT, TensorProto.FLOAT16
FP16_MAX = float(np.finfo(np.float16).max)
# Ops whose float inputs must stay float32: sin/cos of large arguments lose all precision in float16.
FP32_OPS = frozenset({"Sin", "Cos"})


def tensor_types(model: onnx.ModelProto) -> Dict[str, int]:
    """Element type of every named tensor, by ONNX shape inference on a copy without weight data."""
    # Shape inference needs the weights' dims and types only; leaving large data out keeps the proto under 2 GiB
    # (the paper-size denoiser holds 5.6 GB) and avoids copying it.
    meta = onnx.ModelProto(ir_version=model.ir_version)
    meta.opset_import.extend(model.opset_import)
    for field in ("node", "input", "output", "value_info"):
        getattr(meta.graph, field).extend(getattr(model.graph, field))
    for init in model.graph.initializer:
        small = init.data_location != TensorProto.EXTERNAL and init.ByteSize() < 4096
        meta.graph.initializer.append(init if small else TensorProto(name=init.name, data_type=init.data_type, dims=init.dims))
    inferred = onnx.shape_inference.infer_shapes(meta, strict_mode=True)
    g = inferred.graph
    types = {i.name: i.data_type for i in model.graph.initializer}
    for vi in list(g.input) + list(g.output) + list(g.value_info):
        types[vi.name] = vi.type.tensor_type.elem_type
    for node in g.node:
        if node.op_type == "Constant":
            types[node.output[0]] = node.attribute[0].t.data_type if node.attribute[0].HasField("t") else types.get(node.output[0], 0)
    missing = [o for n in g.node for o in n.output if o and o not in types]
    if missing:
        raise ValueError(f"shape inference left {len(missing)} tensors untyped (e.g. {missing[:3]}); cannot convert")
    return types


def _constant_values(model: onnx.ModelProto) -> Dict[str, np.ndarray]:
    """Float constants (initializers and Constant nodes) by tensor name."""
    out = {}
    for init in model.graph.initializer:
        if init.data_type == FLOAT:
            out[init.name] = numpy_helper.to_array(init)
    for node in model.graph.node:
        if node.op_type == "Constant" and node.attribute[0].HasField("t") and node.attribute[0].t.data_type == FLOAT:
            out[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return out


def float32_island(model: onnx.ModelProto, types: Dict[str, int]) -> Set[int]:
    """Indices of the nodes that must compute in float32 (see the module docstring)."""
    nodes = list(model.graph.node)
    producer = {o: i for i, n in enumerate(nodes) for o in n.output}
    constants = _constant_values(model)
    seeds = [i for i, n in enumerate(nodes) if n.op_type in FP32_OPS]
    for i, n in enumerate(nodes):
        if n.op_type == "Constant":
            continue
        if any(name in constants and constants[name].size and float(np.abs(constants[name]).max()) > FP16_MAX for name in n.input):
            seeds.append(i)
    island: Set[int] = set()
    stack = list(seeds)
    while stack:
        i = stack.pop()
        if i in island:
            continue
        island.add(i)
        for name in nodes[i].input:
            if name in producer and types.get(name) == FLOAT and nodes[producer[name]].op_type != "Constant":
                stack.append(producer[name])
    return island


def home_init16(g: onnx.GraphProto, home: Dict[str, int]) -> Set[str]:
    """Initializers that are float16 in the converted graph."""
    return {init.name for init in g.initializer if home.get(init.name) == FLOAT16 or init.data_type == FLOAT16}


def _has_float_output(node: onnx.NodeProto, types: Dict[str, int]) -> bool:
    return any(types.get(o) == FLOAT for o in node.output)


def convert_to_float16(model: onnx.ModelProto) -> onnx.ModelProto:
    """Rewrites `model` in place (and returns it) to compute in float16 with float32 graph inputs/outputs. It must
    hold its weights (load with external data); initializers keep their names, so the package still loads back
    into PyTorch."""
    types = tensor_types(model)
    island = float32_island(model, types)
    g = model.graph
    nodes = list(g.node)
    consumers: Dict[str, List[int]] = {}
    for i, n in enumerate(nodes):
        for name in n.input:
            consumers.setdefault(name, []).append(i)
    island_consts = {name for i in island for name in nodes[i].input}

    # Precision each float tensor is produced in ("home"), and each node computes in (None: no float output,
    # so it takes whatever it is given: Shape, Equal on ids, ...).
    home: Dict[str, int] = {}
    for vi in g.input:
        if vi.type.tensor_type.elem_type == FLOAT:
            home[vi.name] = FLOAT
    new_inits = []
    for init in g.initializer:
        if init.data_type == FLOAT and init.name not in island_consts:
            new_inits.append(numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), init.name))
            home[init.name] = FLOAT16
        else:
            new_inits.append(init)
            if init.data_type == FLOAT:
                home[init.name] = FLOAT
    precision: Dict[int, int] = {}
    for i, n in enumerate(nodes):
        p = FLOAT if i in island else FLOAT16
        if n.op_type == "Constant" and n.attribute[0].HasField("t") and n.attribute[0].t.data_type == FLOAT:
            p = FLOAT if n.output[0] in island_consts else FLOAT16
            if p == FLOAT16:
                value = numpy_helper.to_array(n.attribute[0].t).astype(np.float16)
                n.attribute[0].t.CopyFrom(numpy_helper.from_array(value, n.attribute[0].t.name))
        elif p == FLOAT16:
            for attr in n.attribute:
                if n.op_type == "Cast" and attr.name == "to" and attr.i == FLOAT:
                    attr.i = FLOAT16
                elif attr.name == "value" and attr.HasField("t") and attr.t.data_type == FLOAT:  # ConstantOfShape
                    attr.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(attr.t).astype(np.float16), attr.t.name))
        if _has_float_output(n, types):
            precision[i] = p
            for o in n.output:
                if types.get(o) == FLOAT:
                    home[o] = p

    # Weights stored as float16 behind a Cast to float32 (export --weights-dtype float16) need no Cast any more.
    rename: Dict[str, str] = {}
    graph_outputs = {vi.name for vi in g.output}
    for i, n in enumerate(nodes):
        if (n.op_type == "Cast" and precision.get(i) == FLOAT16 and n.input[0] in home_init16(g, home)
                and n.output[0] not in graph_outputs):
            rename[n.output[0]] = n.input[0]
    if rename:
        for n in nodes:
            for k, name in enumerate(n.input):
                n.input[k] = rename.get(name, name)
        keep = [i for i, n in enumerate(nodes) if not (n.op_type == "Cast" and n.output[0] in rename)]
        nodes = [nodes[i] for i in keep]
        precision = {j: precision[i] for j, i in enumerate(keep) if i in precision}

    # Casts where a float tensor meets a node of the other precision, one per (tensor, target type).
    casts: Dict[tuple, str] = {}
    cast_nodes_after: Dict[str, List[onnx.NodeProto]] = {}

    def cast_of(name: str, to: int) -> str:
        key = (name, to)
        if key not in casts:
            out = f"{name}::{'fp16' if to == FLOAT16 else 'fp32'}"
            casts[key] = out
            cast_nodes_after.setdefault(name, []).append(helper.make_node("Cast", [name], [out], to=to, name=out))
        return casts[key]

    for i, n in enumerate(nodes):
        want = precision.get(i)
        if want is None:
            continue
        for k, name in enumerate(n.input):
            if name in home and home[name] != want:
                n.input[k] = cast_of(name, want)

    # Graph outputs are float32 whatever produced them.
    for vi in g.output:
        if vi.type.tensor_type.elem_type == FLOAT and home.get(vi.name) == FLOAT16:
            src = vi.name + "::fp16"
            for n in nodes:
                for k, o in enumerate(n.output):
                    if o == vi.name:
                        n.output[k] = src
                for k, name in enumerate(n.input):
                    if name == vi.name:
                        n.input[k] = src
            for (name, to), out in list(casts.items()):
                if name == vi.name:
                    raise ValueError(f"output {vi.name} is also read inside the graph in another precision")
            cast_nodes_after.setdefault(src, []).append(helper.make_node("Cast", [src], [vi.name], to=FLOAT, name=vi.name + "::out"))

    ordered: List[onnx.NodeProto] = []
    for name in [vi.name for vi in g.input] + [init.name for init in g.initializer]:
        ordered.extend(cast_nodes_after.pop(name, []))
    for n in nodes:
        ordered.append(n)
        for o in n.output:
            ordered.extend(cast_nodes_after.pop(o, []))
    if cast_nodes_after:
        raise ValueError(f"casts of unknown tensors: {sorted(cast_nodes_after)[:3]}")

    del g.node[:]
    g.node.extend(ordered)
    del g.initializer[:]
    g.initializer.extend(new_inits)
    del g.value_info[:]  # stale element types; ONNX Runtime infers them again
    return model


def float16_share(model: onnx.ModelProto) -> float:
    """Fraction of the weights' elements stored as float16 (for reports and tests)."""
    total = half = 0
    for init in model.graph.initializer:
        n = int(np.prod(init.dims)) if len(init.dims) else 1
        if init.data_type in (FLOAT, FLOAT16):
            total += n
            half += n if init.data_type == FLOAT16 else 0
    return half / total if total else 0.0


def op_counts(nodes: Iterable[onnx.NodeProto]) -> Dict[str, int]:
    counts: Dict[str, int] = {}
    for n in nodes:
        counts[n.op_type] = counts.get(n.op_type, 0) + 1
    return counts
