"""Writing and checking model packages (docs/model-package.md, format_version 1).

A package is manifest.json + vlm.onnx + denoiser.onnx + tokenizer.json (+ `<graph>.onnx.data` for graphs over
2 GiB). The manifest's field names and nesting follow src/model/manifest.ts, the server's view of it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper

from .config import DenoiserConfig, EmbodimentConfig, ModelConfig, VLMConfig
from .data.episodes import MinMax
from .model import DustPolicy
from .fp16 import convert_to_float16
from .onnx_export import (
    ONNX_PROTOBUF_LIMIT,
    PIXEL_DTYPES,
    PIXEL_SCALE,
    PIXEL_SHIFT,
    cuda_graph_hazards,
    declared_signature,
    export_graphs,
    graph_signature,
    load_policy_weights,
    pixel_affine,
    pixel_dtype,
    save_with_external_data,
    take_uint8_pixels,
    weight_bytes,
)
from .tokenizer import WordTokenizer

FORMAT_VERSION = 1
WEIGHT_DTYPES = ("float32", "float16")
# Compute precision of the graphs (manifest architecture.precision). Inputs and outputs are float32 either way.
PRECISIONS = ("float32", "float16")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def round_weights_to_fp16(policy: DustPolicy) -> None:
    """Make every parameter exactly representable in float16 (see store_initializers_fp16)."""
    with torch.no_grad():
        for p in policy.parameters():
            p.copy_(p.half().float())


def store_initializers_fp16(path: Path) -> None:
    """Store a graph's float32 weights as float16 initializers, each followed by a Cast back to float32.

    Computation, inputs and outputs stay float32; only the file halves. ONNX Runtime constant-folds the Casts
    when it creates the session, so inference runs on float32 weights identical to the (pre-rounded) PyTorch
    ones: golden vectors and parity are unaffected. The initializers keep their parameter names, so the package
    still loads back into PyTorch.
    """
    model = onnx.load(str(path))
    graph = model.graph
    casts = []
    renamed: Dict[str, str] = {}
    new_inits = []
    for init in graph.initializer:
        if init.data_type != onnx.TensorProto.FLOAT:
            new_inits.append(init)
            continue
        arr = numpy_helper.to_array(init)
        half = arr.astype(np.float16)
        if not np.array_equal(half.astype(np.float32), arr):
            raise ValueError(f"{init.name} is not exactly representable in float16; round the weights first")
        new_inits.append(numpy_helper.from_array(half, init.name))
        out = init.name + "::fp32"
        renamed[init.name] = out
        casts.append(helper.make_node("Cast", [init.name], [out], to=onnx.TensorProto.FLOAT, name=init.name + "::cast"))
    del graph.initializer[:]
    graph.initializer.extend(new_inits)
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name in renamed:
                node.input[i] = renamed[name]
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(model)
    onnx.save_model(model, str(path))


def manifest_for(
    cfg: ModelConfig,
    stats: Dict[str, Dict[str, MinMax]],
    *,
    version: int,
    description: str,
    training: Dict[str, Any],
    weights_dtype: str,
    files: Dict[str, str],
    precision: str = "float32",
    cuda_graph_hazards: Optional[List[str]] = None,
    pixel_dtype: str = "float32",
) -> Dict[str, Any]:
    v, d = cfg.vlm, cfg.denoiser
    embodiments = {}
    for e in sorted(cfg.embodiments, key=lambda e: e.id):
        s = stats[e.name]
        if len(s["state"].min) != e.state_dim or len(s["action"].min) != e.action_dim:
            raise ValueError(f"normalization statistics of {e.name} do not match its state/action widths")
        embodiments[e.name] = {
            "id": e.id,
            "state_dim": e.state_dim,
            "action_dim": e.action_dim,
            "normalization": {"state": s["state"].to_json(), "action": s["action"].to_json()},
        }
    return {
        "format_version": FORMAT_VERSION,
        "name": cfg.name,
        "version": int(version),
        "description": description,
        "architecture": {
            "family": "dust" if d.future_stream else "action-only",
            "mmdit_layers": d.mmdit_layers,
            "dit_layers": d.dit_layers,
            "hidden": d.hidden,
            "heads": d.heads,
            # Everything needed to rebuild the PyTorch modules from this package (toolchain `golden`).
            "denoiser": _plain(d),
            "vlm": _plain(v),
            "weights_dtype": weights_dtype,
            "precision": precision,
            "opset": 17,
            # What in the exported denoiser would break a CUDA-graph replay (onnx_export.cuda_graph_hazards;
            # [] = none): the server captures graphs only for a package that records none.
            **({"cuda_graph_hazards": list(cuda_graph_hazards)} if cuda_graph_hazards is not None else {}),
        },
        # pixel_dtype: the element type of vlm.onnx's pixel_values, read from the graph (write_package); with uint8 the
        # graph applies mean/std itself and the server sends the resized pixels as they are.
        "image": {"height": v.image_size, "width": v.image_size, "mean": list(cfg.image_mean), "std": list(cfg.image_std),
                  "pixel_dtype": pixel_dtype},
        "cameras": list(v.cameras),
        "text": {"max_tokens": v.max_tokens, "tokenizer": "tokenizer.json", "prompt_template": cfg.prompt_template},
        "conditioning": {"tokens": v.cond_tokens, "dim": v.width},
        "action": {"horizon": d.action_horizon, "dim": d.action_dim},
        "state": {"dim": d.state_dim},
        # An action-only policy has no future stream (docs/model-package.md, "Action-only packages"): no `future`,
        # and no vision steps beyond its action steps.
        **({"future": {"tokens": d.future_tokens, "dim": d.future_dim}} if d.future_stream else {}),
        "sampling": {
            "action_steps": cfg.action_steps,
            "vision_steps": cfg.vision_steps if d.future_stream else cfg.action_steps,
            # Without a future stream this bounds the action steps a request may ask for.
            "max_vision_steps": cfg.max_vision_steps,
        },
        "embodiments": embodiments,
        # Absent: the guidance-free methods every package supports. A model trained with prefix conditioning
        # also answers a prefix by conditioning on it (docs/model-package.md, `realtime_chunking`).
        **({"realtime_chunking": ["condition", "inpaint", "naive", "ensemble"]} if d.prefix_conditioning else {}),
        "training": training,
        "files": files,
    }


def _plain(dc) -> Dict[str, Any]:
    from dataclasses import asdict

    out = asdict(dc)
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in out.items()}


def config_from_manifest(manifest: Dict[str, Any]) -> ModelConfig:
    arch = manifest["architecture"]
    vlm = dict(arch["vlm"])
    vlm["cameras"] = tuple(vlm["cameras"])
    embodiments = tuple(
        EmbodimentConfig(name=name, id=e["id"], state_dim=e["state_dim"], action_dim=e["action_dim"])
        for name, e in manifest["embodiments"].items()
    )
    s = manifest["sampling"]
    return ModelConfig(
        name=manifest["name"],
        vlm=VLMConfig(**vlm),
        denoiser=DenoiserConfig(**arch["denoiser"]),
        embodiments=tuple(sorted(embodiments, key=lambda e: e.id)),
        image_mean=tuple(manifest["image"]["mean"]),
        image_std=tuple(manifest["image"]["std"]),
        prompt_template=manifest["text"]["prompt_template"],
        action_steps=s["action_steps"],
        vision_steps=s["vision_steps"],
        max_vision_steps=s["max_vision_steps"],
    )


def stats_from_manifest(manifest: Dict[str, Any]) -> Dict[str, Dict[str, MinMax]]:
    return {
        name: {k: MinMax.from_json(v) for k, v in e["normalization"].items()}
        for name, e in manifest["embodiments"].items()
    }


def write_package(
    policy: DustPolicy,
    tokenizer: WordTokenizer,
    stats: Dict[str, Dict[str, MinMax]],
    out_dir: Path,
    *,
    version: int,
    description: str,
    training: Dict[str, Any],
    weights_dtype: str = "float32",
    external_data: bool = False,
    precision: str = "float32",
    pixels: str = "float32",
) -> Dict[str, Any]:
    """Export both graphs, the tokenizer and the manifest into out_dir. With weights_dtype float16 the policy's
    parameters are rounded in place first, so that the PyTorch module equals what the package holds. Precision
    float16 exports the float32 graphs, then converts them (fp16.py); it implies float16 weights. Pixels uint8 makes
    the VLM take the resized pixels as uint8 and normalise them itself (onnx_export.take_uint8_pixels), last, so that
    the float16 conversion leaves the normalisation in float32."""
    if weights_dtype not in WEIGHT_DTYPES:
        raise ValueError(f"weights_dtype must be one of {WEIGHT_DTYPES}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}")
    if pixels not in PIXEL_DTYPES:
        raise ValueError(f"pixels must be one of {PIXEL_DTYPES}")
    if precision == "float16":
        round_weights_to_fp16(policy)
        weights_dtype = "float16"
    if len(tokenizer) != policy.cfg.vlm.vocab_size:
        raise ValueError(f"tokenizer has {len(tokenizer)} ids, the VLM's embedding table {policy.cfg.vlm.vocab_size}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in ("vlm.onnx.data", "denoiser.onnx.data"):
        if (out_dir / stale).exists():
            (out_dir / stale).unlink()
    if weights_dtype == "float16":
        round_weights_to_fp16(policy)
    written = export_graphs(policy, out_dir, external_data=external_data)
    if precision == "float16":
        for name in ("vlm.onnx", "denoiser.onnx"):
            convert_graph_file(out_dir / name)
        written = present_graph_files(out_dir)
    elif weights_dtype == "float16":
        for name in ("vlm.onnx", "denoiser.onnx"):
            if (out_dir / (name + ".data")).exists():
                raise ValueError("float16 weight storage is not supported for graphs with external data")
            store_initializers_fp16(out_dir / name)
    if pixels == "uint8":
        convert_pixels_file(out_dir / "vlm.onnx", policy.cfg.image_mean, policy.cfg.image_std)
    tokenizer.save(out_dir / "tokenizer.json")
    files = {name: sha256_file(path) for name, path in sorted(written.items())}
    files["tokenizer.json"] = sha256_file(out_dir / "tokenizer.json")
    manifest = manifest_for(policy.cfg, stats, version=version, description=description, training=training,
                            weights_dtype=weights_dtype, files=files, precision=precision,
                            cuda_graph_hazards=denoiser_hazards(out_dir), pixel_dtype=pixel_dtype(out_dir / "vlm.onnx"))
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def denoiser_hazards(package_dir: Path) -> List[str]:
    """cuda_graph_hazards of a package's denoiser.onnx (its graph only: weights stay on disk)."""
    return cuda_graph_hazards(onnx.load(str(Path(package_dir) / "denoiser.onnx"), load_external_data=False))


def present_graph_files(out_dir: Path) -> Dict[str, Path]:
    names = ("vlm.onnx", "vlm.onnx.data", "denoiser.onnx", "denoiser.onnx.data")
    return {name: out_dir / name for name in names if (out_dir / name).exists()}


def convert_graph_file(path: Path, out: Optional[Path] = None) -> None:
    """Rewrite one graph file (and its external data) to compute in float16 (fp16.py), into `out` or in place."""
    path = Path(path)
    out = Path(out) if out is not None else path
    external = (path.parent / (path.name + ".data")).exists()
    model = onnx.load(str(path), load_external_data=True)
    convert_to_float16(model)
    stale = out.parent / (out.name + ".data")
    if stale.exists():
        stale.unlink()
    save_graph(model, out, external=external)


def save_graph(model: onnx.ModelProto, path: Path, external: bool = False) -> None:
    """Save a graph, its weights in one aligned `<name>.data` file when asked or when over the protobuf limit."""
    path = Path(path)
    if not external and weight_bytes(model) < ONNX_PROTOBUF_LIMIT - 64 * 1024**2:
        onnx.checker.check_model(model)
        onnx.save_model(model, str(path))
        return
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        save_with_external_data(model, path, Path(tmp))
    onnx.checker.check_model(str(path))


def convert_pixels_file(path: Path, mean, std, out: Optional[Path] = None) -> None:
    """Rewrite one VLM file to take uint8 pixels (onnx_export.take_uint8_pixels), into `out` or in place. Only the graph
    is rewritten: weights in `<name>.data` are left where they are (copied beside `out` when it is elsewhere)."""
    path = Path(path)
    out = Path(out) if out is not None else path
    model = onnx.load(str(path), load_external_data=False)
    take_uint8_pixels(model, mean, std)
    data = path.parent / (path.name + ".data")
    if out.resolve() != path.resolve() and data.exists():
        if any(e.key == "location" and e.value != data.name for t in model.graph.initializer for e in t.external_data):
            raise ValueError(f"{path}: external data outside {data.name} is not copied")
        shutil.copyfile(data, out.parent / data.name)
    onnx.save_model(model, str(out))
    onnx.checker.check_model(str(out))


def write_pixels_package(src: Path, out: Path, version: Optional[int] = None) -> Dict[str, Any]:
    """A variant of an existing float32-pixel package whose VLM takes uint8 pixels and normalises them in the graph
    with the manifest's mean/std; the denoiser, the tokenizer and every weight are copied unchanged (out may be src:
    then only vlm.onnx and the manifest are rewritten, as for a float16 package that `half` made first)."""
    src, out = Path(src), Path(out)
    manifest = json.loads((src / "manifest.json").read_text())
    if pixel_dtype(src / "vlm.onnx") != "float32":
        raise ValueError(f"{src}: the VLM does not take float32 pixel_values")
    out.mkdir(parents=True, exist_ok=True)
    convert_pixels_file(src / "vlm.onnx", manifest["image"]["mean"], manifest["image"]["std"], out / "vlm.onnx")
    tokenizer = manifest["text"]["tokenizer"]
    in_place = out.resolve() == src.resolve()
    for name in ("denoiser.onnx", "denoiser.onnx.data", tokenizer):
        if not in_place and (src / name).exists():
            shutil.copyfile(src / name, out / name)
    manifest["image"]["pixel_dtype"] = pixel_dtype(out / "vlm.onnx")
    return _write_variant_manifest(out, manifest, version, "uint8 pixels: the VLM normalises them")


def write_half_package(src: Path, out: Path, version: Optional[int] = None) -> Dict[str, Any]:
    """A float16 variant of an existing package: same weights (rounded to float16), same tokenizer and
    contract, computation in float16 (fp16.py); the manifest records `architecture.precision`."""
    src, out = Path(src), Path(out)
    manifest = json.loads((src / "manifest.json").read_text())
    if manifest["architecture"].get("precision") == "float16":
        raise ValueError(f"{src} is already a float16 package")
    if pixel_dtype(src / "vlm.onnx") != "float32":
        # fp16.py would rewrite the pixel normalisation too; convert to float16 first, then to uint8 pixels.
        raise ValueError(f"{src}: convert the float32-pixel package to float16 first, then its pixels (`pixels`)")
    out.mkdir(parents=True, exist_ok=True)
    for name in ("vlm.onnx", "denoiser.onnx"):
        convert_graph_file(src / name, out / name)
    tokenizer = manifest["text"]["tokenizer"]
    shutil.copyfile(src / tokenizer, out / tokenizer)
    manifest["architecture"].update(precision="float16", weights_dtype="float16", cuda_graph_hazards=denoiser_hazards(out))
    return _write_variant_manifest(out, manifest, version, "float16 variant: weights and computation in float16, inputs and outputs float32")


def _write_variant_manifest(out: Path, manifest: Dict[str, Any], version: Optional[int], note: str) -> Dict[str, Any]:
    """The manifest of a package variant written into `out`: the hashes of the files now there, the version if
    given, and `note` appended to the description, which says what the variant changed."""
    files = {name: sha256_file(path) for name, path in sorted(present_graph_files(out).items())}
    tokenizer = manifest["text"]["tokenizer"]
    files[tokenizer] = sha256_file(out / tokenizer)
    manifest["files"] = files
    if version is not None:
        manifest["version"] = int(version)
    manifest["description"] = f"{manifest.get('description', '')} [{note}]".strip()
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def load_package(package_dir: Path) -> Dict[str, Any]:
    """Rebuild PyTorch modules, tokenizer and statistics from a package (no checkpoint needed)."""
    package_dir = Path(package_dir)
    manifest = json.loads((package_dir / "manifest.json").read_text())
    cfg = config_from_manifest(manifest)
    policy = DustPolicy(cfg)
    load_policy_weights(policy, package_dir)
    policy.eval()
    tokenizer = WordTokenizer.load(package_dir / manifest["text"]["tokenizer"])
    return {"manifest": manifest, "config": cfg, "policy": policy, "tokenizer": tokenizer,
            "stats": stats_from_manifest(manifest)}


def validate_package(package_dir: Path) -> List[str]:
    """Problems that would make the server refuse this package; an empty list means valid.

    Checks what the server's loader checks (docs/model-package.md): the manifest's structure, that every shape it
    states matches the graphs' declared inputs/outputs, and the sha256 digests."""
    package_dir = Path(package_dir)
    problems: List[str] = []
    try:
        manifest = json.loads((package_dir / "manifest.json").read_text())
    except (OSError, ValueError) as err:
        return [f"manifest.json unreadable: {err}"]
    required = {
        "format_version": int, "name": str, "version": int, "architecture": dict, "image": dict, "cameras": list,
        "text": dict, "conditioning": dict, "action": dict, "state": dict, "sampling": dict,
        "embodiments": dict, "files": dict,
    }
    for key, typ in required.items():
        if not isinstance(manifest.get(key), typ):
            problems.append(f"manifest.{key} missing or not a {typ.__name__}")
    if problems:
        return problems
    if manifest["format_version"] != FORMAT_VERSION:
        problems.append(f"format_version {manifest['format_version']} != {FORMAT_VERSION}")
    future = manifest.get("future")
    if future is not None and not isinstance(future, dict):
        problems.append("manifest.future must be an object (or absent: an action-only package)")
        future = None
    family = manifest["architecture"].get("family")
    if family != ("dust" if future is not None else "action-only"):
        problems.append(f"architecture.family {family!r}: 'dust' with a future stream, 'action-only' without one")
    img = manifest["image"]
    if len(img.get("mean", [])) != 3 or len(img.get("std", [])) != 3:
        problems.append("image.mean/std must have 3 values")
    # Absent in packages written before the field: their VLMs take float32.
    pixels = img.get("pixel_dtype", "float32")
    if pixels not in PIXEL_DTYPES:
        problems.append(f"image.pixel_dtype must be one of {PIXEL_DTYPES}, got {pixels!r}")
        pixels = "float32"
    for e_name, e in manifest["embodiments"].items():
        for part, width in (("state", e.get("state_dim")), ("action", e.get("action_dim"))):
            mm = e.get("normalization", {}).get(part, {})
            if len(mm.get("min", [])) != width or len(mm.get("max", [])) != width:
                problems.append(f"embodiments.{e_name}.normalization.{part} must have {width} values")
            elif any(hi <= lo for lo, hi in zip(mm["min"], mm["max"])):
                problems.append(f"embodiments.{e_name}.normalization.{part}: max must exceed min")
        if e.get("state_dim", 0) > manifest["state"]["dim"] or e.get("action_dim", 0) > manifest["action"]["dim"]:
            problems.append(f"embodiments.{e_name} is wider than the padded state/action")
    ids = sorted(e.get("id") for e in manifest["embodiments"].values())
    if ids != list(range(len(ids))):
        problems.append("embodiment ids must be 0..E-1")
    s = manifest["sampling"]
    if s["action_steps"] < 1 or s["vision_steps"] % s["action_steps"] or s["vision_steps"] > s["max_vision_steps"]:
        problems.append("sampling steps inconsistent (N_o must be a multiple of N_A and <= max_vision_steps)")
    if future is None and s["vision_steps"] != s["action_steps"]:
        problems.append("sampling: an action-only package's vision_steps must equal action_steps")

    # Shapes the manifest states vs the graphs' declared inputs/outputs.
    n_views = len(manifest["cameras"])
    h, w = img["height"], img["width"]
    L = manifest["text"]["max_tokens"]
    S, Dc = manifest["conditioning"]["tokens"], manifest["conditioning"]["dim"]
    k, dA = manifest["action"]["horizon"], manifest["action"]["dim"]
    dS = manifest["state"]["dim"]
    expected = {
        "vlm": {
            "inputs": {"pixel_values": (pixels, [n_views, 3, h, w]), "input_ids": ("int64", [L]),
                       "attention_mask": ("int64", [L])},
            "outputs": {"vl_embs": ("float32", [S, Dc])},
        },
        "denoiser": {
            "inputs": {"vl_embs": ("float32", [S, Dc]), "state": ("float32", [dS]), "actions": ("float32", [k, dA]),
                       "tau_a": ("float32", []), "embodiment_id": ("int64", [])},
            "outputs": {"v_actions": ("float32", [k, dA])},
        },
    }
    if future is not None:
        To, dO = future.get("tokens"), future.get("dim")
        expected["vlm"]["outputs"]["obs_embedding"] = ("float32", [To, dO])
        expected["denoiser"]["inputs"].update({"future": ("float32", [To, dO]), "tau_o": ("float32", [])})
        expected["denoiser"]["outputs"]["v_future"] = ("float32", [To, dO])
    # The server feeds per-position action times exactly when the manifest lists the condition method
    # (src/model/package.ts takesPositionTimes), which only a denoiser trained with prefix conditioning answers.
    if "condition" in manifest.get("realtime_chunking", []):
        expected["denoiser"]["inputs"]["action_times"] = ("float32", [k])
        if not manifest["architecture"].get("denoiser", {}).get("prefix_conditioning"):
            problems.append("realtime_chunking lists condition, which needs a denoiser trained with prefix_conditioning")
    for graph, table in expected.items():
        path = package_dir / f"{graph}.onnx"
        if not path.exists():
            problems.append(f"{graph}.onnx missing")
            continue
        declared = declared_signature(path)
        for side in ("inputs", "outputs"):
            if set(declared[side]) != set(table[side]):
                problems.append(f"{graph}.onnx {side} {sorted(declared[side])} != {sorted(table[side])}")
                continue
            for name, (dtype, rest) in table[side].items():
                got_dtype, got_shape = declared[side][name]
                if got_dtype != dtype:
                    where = " (manifest image.pixel_dtype)" if name == "pixel_values" else ""
                    problems.append(f"{graph}.onnx {name}: dtype {got_dtype} != {dtype}{where}")
                if not got_shape or isinstance(got_shape[0], int):
                    problems.append(f"{graph}.onnx {name}: first axis must be the dynamic batch, got {got_shape}")
                elif list(got_shape[1:]) != rest:
                    problems.append(f"{graph}.onnx {name}: shape {got_shape} != [batch, {', '.join(map(str, rest))}]")

    # A uint8-pixel VLM normalises with constants of its own: they must be the manifest's mean/std.
    if pixels == "uint8" and (package_dir / "vlm.onnx").exists() and not any("mean/std" in p for p in problems):
        problems.extend(pixel_constant_problems(package_dir / "vlm.onnx", img["mean"], img["std"]))

    # A package that records no CUDA-graph hazard gets its denoiser captured by the server: the record must hold.
    claimed = manifest["architecture"].get("cuda_graph_hazards")
    if claimed is not None and (package_dir / "denoiser.onnx").exists():
        found = denoiser_hazards(package_dir)
        if sorted(claimed) != sorted(found):
            problems.append(f"architecture.cuda_graph_hazards records {len(claimed)}, the denoiser has {len(found)}: {found[:3]}")

    # Digests.
    files = manifest["files"]
    for needed in ("vlm.onnx", "denoiser.onnx", manifest["text"]["tokenizer"]):
        if needed not in files:
            problems.append(f"files lacks a digest for {needed}")
    for name, digest in files.items():
        path = package_dir / name
        if not path.exists():
            problems.append(f"files lists {name}, which is missing")
        elif sha256_file(path) != digest:
            problems.append(f"{name}: sha256 does not match the manifest")
    return problems


def pixel_constant_problems(vlm_path: Path, mean, std) -> List[str]:
    """Whether a uint8-pixel VLM's normalisation constants are pixel_affine(mean, std)."""
    try:
        want = dict(zip((PIXEL_SCALE, PIXEL_SHIFT), pixel_affine(mean, std)))
    except ValueError as err:
        return [f"image: {err}"]
    model = onnx.load(str(vlm_path), load_external_data=False)
    got = {t.name: t for t in model.graph.initializer if t.name in want}
    problems = []
    for name, value in want.items():
        if name not in got:
            problems.append(f"vlm.onnx takes uint8 pixel_values but holds no {name}")
        elif not np.array_equal(numpy_helper.to_array(got[name]), value):
            problems.append(f"vlm.onnx {name} does not match the manifest's image mean/std")
    return problems


def contract_signature(cfg: ModelConfig) -> Dict:
    """The contract for `cfg` (re-exported for tests)."""
    return graph_signature(cfg)


__all__ = [
    "write_package",
    "write_half_package",
    "write_pixels_package",
    "convert_graph_file",
    "load_package",
    "validate_package",
    "manifest_for",
    "config_from_manifest",
    "stats_from_manifest",
    "sha256_file",
    "contract_signature",
]
