"""Where a package's VLM spends its time on a GPU: writes models that a timer (vlm-parts.mjs) runs at several batch
sizes on ONNX Runtime's CUDA provider.

- `prefix-<k>-<name>.onnx`: the VLM cut after its k-th checkpoint (the patch embedding's Conv, then every other
  LayerNormalization, i.e. each half of each transformer layer, then the outputs), so consecutive differences of
  their times are the cost of each part;
- `conv-as-matmul.onnx`: the whole VLM with its patch-embedding Conv (kernel = stride, no padding) rewritten as the
  same arithmetic on patches: Reshape/Transpose of the pixels into [N, g*g, 3*p*p] and a MatMul with the Conv's
  weight, which runs as a cuBLAS GEMM instead of a cuDNN convolution of 3 input channels.

    python3 scripts/gpu/vlm_parts.py --package /tmp/gpu8/repo16/dust-paper/1 --out /tmp/gpu8/vlm-parts
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper, utils


def checkpoints(graph: onnx.GraphProto) -> list:
    """(name, tensor) after the Conv, after every other LayerNormalization, and the graph outputs."""
    out = []
    conv = next(n for n in graph.node if n.op_type == "Conv")
    out.append(("conv", conv.output[0]))
    norms = [n for n in graph.node if n.op_type == "LayerNormalization"]
    for i, n in enumerate(norms):
        if i % 2 == 1:
            out.append((f"ln{i + 1}", n.output[0]))
    return out


def conv_as_matmul(model: onnx.ModelProto) -> onnx.ModelProto:
    """The patch-embedding Conv [N,3,H,W] -> [N,C,g,g] as patches @ W^T + b, reshaped back to [N,C,g,g]."""
    g = model.graph
    conv = next(n for n in g.node if n.op_type == "Conv")
    attrs = {a.name: helper.get_attribute_value(a) for a in conv.attribute}
    kernel = list(attrs.get("kernel_shape", []))
    strides = list(attrs.get("strides", kernel))
    pads = list(attrs.get("pads", [0, 0, 0, 0]))
    if kernel != strides or any(pads) or kernel[0] != kernel[1]:
        raise SystemExit(f"the Conv is not a patch embedding (kernel {kernel}, strides {strides}, pads {pads})")
    p = kernel[0]
    inits = {i.name: i for i in g.initializer}
    w = numpy_helper.to_array(inits[conv.input[1]])  # [C, 3, p, p]
    c_out, c_in = w.shape[0], w.shape[1]
    image = next((vi for vi in list(g.value_info) + list(g.input) if vi.name == conv.input[0]), None)
    side = None
    if image is not None and image.type.tensor_type.shape.dim[-1].dim_value:
        side = image.type.tensor_type.shape.dim[-1].dim_value
    if side is None:
        raise SystemExit("the Conv input's spatial size is not known in the graph")
    grid = side // p
    wt = w.reshape(c_out, c_in * p * p).T.copy()  # [3*p*p, C]
    names = {k: f"conv_as_matmul_{k}" for k in ("shape6", "patches6", "patches", "shape3", "wt", "mm", "bias", "biased", "shape4", "t")}
    new_inits = [
        numpy_helper.from_array(np.array([-1, c_in, grid, p, grid, p], dtype=np.int64), names["shape6"]),
        numpy_helper.from_array(np.array([-1, grid * grid, c_in * p * p], dtype=np.int64), names["shape3"]),
        numpy_helper.from_array(wt, names["wt"]),
        numpy_helper.from_array(np.array([-1, grid, grid, c_out], dtype=np.int64), names["shape4"]),
    ]
    nodes = [
        helper.make_node("Reshape", [conv.input[0], names["shape6"]], [names["patches6"]]),
        # [N, 3, g, p, g, p] -> [N, g, g, 3, p, p]: each patch's values in the Conv weight's (c, y, x) order.
        helper.make_node("Transpose", [names["patches6"]], [names["t"]], perm=[0, 2, 4, 1, 3, 5]),
        helper.make_node("Reshape", [names["t"], names["shape3"]], [names["patches"]]),
        helper.make_node("MatMul", [names["patches"], names["wt"]], [names["mm"]]),
    ]
    last = names["mm"]
    if len(conv.input) > 2 and conv.input[2]:
        nodes.append(helper.make_node("Add", [last, conv.input[2]], [names["biased"]]))
        last = names["biased"]
    nodes += [
        helper.make_node("Reshape", [last, names["shape4"]], [names["bias"]]),
        helper.make_node("Transpose", [names["bias"]], [conv.output[0]], perm=[0, 3, 1, 2]),
    ]
    at = list(g.node).index(conv)
    kept = [n for n in g.node if n is not conv]
    del g.node[:]
    g.node.extend(kept[:at] + nodes + kept[at:])
    g.initializer.extend(new_inits)
    if not any(n.input[1] == conv.input[1] for n in g.node if len(n.input) > 1):
        g.initializer.remove(inits[conv.input[1]])
    return model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--package", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    src = Path(a.package) / "vlm.onnx"
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    model = onnx.shape_inference.infer_shapes(onnx.load(str(src)))
    inputs = [i.name for i in model.graph.input]
    written = []
    for k, (name, tensor) in enumerate(checkpoints(model.graph)):
        f = out / f"prefix-{k}-{name}.onnx"
        sub = utils.Extractor(model).extract_model(inputs, [tensor])
        onnx.save(sub, str(f))
        written.append({"file": f.name, "cut_after": name, "tensor": tensor, "nodes": len(sub.graph.node)})
    onnx.save(conv_as_matmul(onnx.shape_inference.infer_shapes(onnx.load(str(src)))), str(out / "conv-as-matmul.onnx"))
    written.append({"file": "conv-as-matmul.onnx", "nodes": None})
    (out / "parts.json").write_text(json.dumps(written, indent=1))
    print(json.dumps(written))


if __name__ == "__main__":
    main()
