"""A user's own ONNX generator -> the pack's FP32 model with the standard IO.

The user names which graph input is the noise, which the sentence embedding and which output the
image (`--io z=NAME,embedding=NAME,image=NAME`, or the same keys in a JSON file, optionally with
"image_range": [lo, hi]); an unconditional generator names no embedding (`--io z=NAME,image=NAME`).
The graph is checked against what a pack runs (docs/pack-spec.md):

    z          float32 [batch, nz]      (the batch dimension dynamic)
    embedding  float32 [batch, d]       d = the bank's vector size (absent for an unconditional generator)
    image      float32 [batch, 3, H, H] in image_range (default [-1, 1])

then rewritten: IO renamed to `z`, `embedding`, `image` (any inner tensor already so named is renamed
out of the way), outputs other than the image dropped with the nodes only they needed, and, for another
declared range, `image = raw * 2 / (hi - lo) - (hi + lo) / (hi - lo)` appended so the pack's image is in
[-1, 1]. The result is run with ONNX Runtime at batch 1 and 2 against the original model.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_t2i import _io
from edge_t2i.convert.graph import fresh_name
from edge_t2i.errors import ConvertError, did_you_mean, require

STANDARD = ("z", "embedding", "image")
MIN_OPSET = 13          # per-channel Q/DQ (QuantizeLinear with an axis) needs opset 13
PARITY_TOLERANCE = 1e-4
MIN_ORT_READS = (9, 20)  # (IR version, opset) the declared minimum ONNX Runtime (1.17) reads
RANGE_SLACK = 0.25      # outputs may overshoot the declared range by a quarter of its width (tanh-free models)
MAX_OUTSIDE = 0.01      # ... on at most this fraction of the sample pixels


@dataclass(frozen=True)
class IOSpec:
    """Which of the user's graph inputs/outputs are z, embedding (None: an unconditional generator) and image,
    and the image's value range."""

    z: str = "z"
    embedding: str | None = "embedding"
    image: str = "image"
    image_range: tuple[float, float] = (-1.0, 1.0)

    def __post_init__(self) -> None:
        lo, hi = self.image_range
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ConvertError(f"--image-range must be two finite numbers LO,HI with LO < HI, got {lo:g},{hi:g}")
        names = [self.z, *([self.embedding] if self.embedding is not None else []), self.image]
        if len(set(names)) != len(names) or not all(isinstance(n, str) and n for n in names):
            count = "three" if len(names) == 3 else "two"
            raise ConvertError(f"--io must name {count} different tensors, got z={self.z}, "
                               f"embedding={self.embedding}, image={self.image}")

    @property
    def conditional(self) -> bool:
        return self.embedding is not None

    def mapping_back(self) -> dict[str, str]:
        """Standard name -> the user's name."""
        return {v: k for k, v in self.mapping().items()}

    def mapping(self) -> dict[str, str]:
        out = {self.z: "z", self.image: "image"}
        if self.embedding is not None:
            out[self.embedding] = "embedding"
        return out

    def as_dict(self) -> dict:
        return {"z": self.z, "embedding": self.embedding, "image": self.image, "image_range": list(self.image_range)}


def parse_range(text: str) -> tuple[float, float]:
    """'-1,1' or '0,255' -> (lo, hi). Raises: ConvertError."""
    try:
        lo, hi = (float(x) for x in text.split(","))
    except ValueError:
        raise ConvertError(f"--image-range takes LO,HI (e.g. 0,1 or -1,1), got {text!r}") from None
    return lo, hi


def parse_io(io: str | None, image_range: str | None = None) -> IOSpec:
    """An IOSpec from `--io z=A,embedding=B,image=C` or from a JSON file with those keys (and optionally
    "image_range": [lo, hi]); `--image-range LO,HI` sets the range (not both). None: the standard names.

    Raises: ConvertError (unknown or missing keys, a file that is not such JSON, a range given twice)."""
    rng = parse_range(image_range) if image_range is not None else None
    if io is None:
        return IOSpec(image_range=rng or (-1.0, 1.0))
    if io.lower().endswith(".json") or (Path(io).is_file() and "=" not in io):
        raw = _read_spec_file(Path(io))
        if "image_range" in raw:
            if rng is not None:
                raise ConvertError(f"the image range is given twice: in {io} and by --image-range; keep one")
            value = raw.pop("image_range")
            if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value)):
                raise ConvertError(f"{io}: image_range must be [lo, hi], got {value!r}")
            rng = (float(value[0]), float(value[1]))
        pairs = raw
    else:
        pairs = {}
        for part in (p.strip() for p in io.split(",")):
            key, sep, value = part.partition("=")
            if not sep or not value.strip():
                raise ConvertError(f"--io takes z=NAME,embedding=NAME,image=NAME (or a JSON file), got {io!r}")
            pairs[key.strip()] = value.strip()
    for key in pairs:
        if key not in STANDARD:
            raise ConvertError(did_you_mean(key, STANDARD, "--io key"))
    missing = [k for k in ("z", "image") if k not in pairs]
    if missing:
        raise ConvertError(f"--io names no {missing[0]!r}: give z=NAME,embedding=NAME,image=NAME (z=NAME,image=NAME "
                           "for an unconditional generator)")
    if not all(isinstance(v, str) for v in pairs.values()):
        raise ConvertError(f"--io values must be tensor names (strings), got {pairs}")
    return IOSpec(pairs["z"], pairs.get("embedding"), pairs["image"], rng or (-1.0, 1.0))


def _read_spec_file(path: Path) -> dict:
    if not path.is_file():
        raise ConvertError(f"--io file {path} not found")
    try:
        raw = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ConvertError(f"--io file {path} is not valid JSON ({str(exc)[:200]})") from None
    if not isinstance(raw, dict):
        raise ConvertError(f"--io file {path}: expected an object like "
                           '{"z": "noise", "embedding": "sentence", "image": "out", "image_range": [-1, 1]}')
    return raw


@dataclass(frozen=True)
class ImportResult:
    path: Path
    nz: int
    cond_dim: int
    resolution: int
    opset: int
    max_abs_error: float     # the written model vs the user's (rescaled), ONNX Runtime, same inputs
    output_min: float        # the written model's output range on the sample inputs
    output_max: float
    ir_version: int = 0

    @property
    def note(self) -> str:
        """Why the declared minimum ONNX Runtime cannot read this model, or ""."""
        if self.ir_version <= MIN_ORT_READS[0] and self.opset <= MIN_ORT_READS[1]:
            return ""
        return (f"the model is ONNX IR {self.ir_version}, opset {self.opset}: newer than ONNX Runtime 1.17 reads "
                f"(IR {MIN_ORT_READS[0]}, opset {MIN_ORT_READS[1]}); devices need a newer ONNX Runtime, or export "
                "with opset_version=17 (torch.onnx.export(..., dynamo=False))")


def import_onnx(src: str | os.PathLike[str], dst: str | os.PathLike[str], spec: IOSpec, embedding_dim: int,
                sample_embeddings: np.ndarray, seed: int = 0) -> ImportResult:
    """Check the user's generator `src` against `spec` and the bank's vector size `embedding_dim`, and write
    the pack's FP32 model `dst` (atomically) with IO z, embedding, image in [-1, 1] (module docstring).
    `sample_embeddings` float32 [k, d] (bank rows) feed the checks run with ONNX Runtime.

    Returns: ImportResult. Raises: ConvertError naming what does not fit (not an ONNX model, opset < 13,
    a missing or extra input, a wrong rank, dtype or size, a fixed batch size, an image that is not
    [B, 3, H, H], outputs far outside the declared range, a model ONNX Runtime cannot run),
    MissingExtraError (extra `convert`)."""
    onnx = require("onnx", "convert", "Importing an ONNX generator")
    try:
        model = onnx.load(str(src))
        onnx.checker.check_model(model)
    except Exception as exc:  # onnx raises DecodeError, ValidationError, OSError, ...
        raise ConvertError(f"{src} is not a valid ONNX model ({str(exc).splitlines()[0][:300]})") from exc
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < MIN_OPSET:
        raise ConvertError(f"{src} uses ONNX opset {opset}; INT8 Q/DQ needs {MIN_OPSET} or newer: re-export with "
                           "opset_version=17")
    nz, cond_dim = check_io(model.graph, spec, embedding_dim)
    rewrite(model, spec)
    with _io.atomic_path(dst) as tmp:
        onnx.save(model, str(tmp))
        resolution, err, lo, hi = verify(Path(src), tmp, spec, nz, sample_embeddings, seed)
    return ImportResult(Path(dst), nz, cond_dim, resolution, opset, err, lo, hi, int(model.ir_version))


def _graph_inputs(graph) -> list:  # noqa: ANN001 - onnx.GraphProto
    """The inputs a caller feeds (older exporters also list initializers as inputs)."""
    initializers = {i.name for i in graph.initializer}
    return [i for i in graph.input if i.name not in initializers]


def check_io(graph, spec: IOSpec, embedding_dim: int) -> tuple[int, int]:  # noqa: ANN001 - onnx.GraphProto
    """(nz, d) after checking the graph's inputs and outputs against `spec` (module docstring); d is 0 for an
    unconditional generator (`spec.embedding` None).

    Raises: ConvertError naming the first mismatch."""
    inputs = {i.name: i for i in _graph_inputs(graph)}
    outputs = {o.name: o for o in graph.output}
    named = [("z", spec.z, inputs, "input"), ("image", spec.image, outputs, "output")]
    if spec.embedding is not None:
        named.insert(1, ("embedding", spec.embedding, inputs, "input"))
    for key, name, pool, kind in named:
        if name not in pool:
            raise ConvertError(f"--io {key}={name}: " + did_you_mean(name, list(pool), f"model {kind}"))
    extra = [n for n in inputs if n not in (spec.z, spec.embedding)]
    if extra:
        feeds = "z and embedding" if spec.conditional else "z alone (no embedding named in --io)"
        raise ConvertError(f"the model has an input {extra[0]!r} that --io does not name: a pack feeds {feeds}; "
                           "name it in --io or export the generator without it")
    nz = _check_tensor(inputs[spec.z], "z", 2, True)[1]
    _check_tensor(outputs[spec.image], "image", 4, False)
    if spec.embedding is None:
        return int(nz), 0
    cond_dim = _check_tensor(inputs[spec.embedding], "embedding", 2, True)[1]
    if cond_dim != embedding_dim:
        raise ConvertError(f"the model's embedding input {spec.embedding!r} takes {cond_dim}-d vectors but "
                           f"--bank-embeddings holds {embedding_dim}-d ones: the bank must come from the text encoder "
                           "the generator was trained with")
    return int(nz), int(cond_dim)


def _check_tensor(value_info, key: str, rank: int, is_input: bool) -> list:  # noqa: ANN001 - onnx.ValueInfoProto
    """The declared dims (int, str or None) of a graph input/output after checking dtype, rank, a dynamic
    batch and (inputs) a fixed feature size. An output without a declared shape is checked by running."""
    kind = "input" if is_input else "output"
    what = f"the model's {kind} {value_info.name!r} (--io {key})"
    tensor = value_info.type.tensor_type
    if tensor.elem_type != 1:  # onnx.TensorProto.FLOAT
        raise ConvertError(f"{what} is not float32 (ONNX element type {tensor.elem_type}): a pack's {key} is float32")
    if not tensor.HasField("shape"):
        if is_input:
            raise ConvertError(f"{what} declares no shape: export it as [batch, size]")
        return []
    dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tensor.shape.dim]
    expected = "[batch, nz]" if key == "z" else "[batch, d]" if key == "embedding" else "[batch, 3, H, H]"
    if len(dims) != rank:
        raise ConvertError(f"{what} has shape {dims}; a pack's {key} is {expected}: wrap the generator so it "
                           f"{'takes' if is_input else 'returns'} that and re-export")
    if isinstance(dims[0], int):
        raise ConvertError(f"{what} has a fixed batch size {dims[0]}: re-export with a dynamic batch dimension "
                           "(torch.onnx.export(..., dynamic_axes={name: {0: 'batch'}} for each input and output))")
    if is_input and not (isinstance(dims[1], int) and dims[1] > 0):
        raise ConvertError(f"{what} has shape {dims}: its size {expected[-3:-1]} must be a fixed number")
    if not is_input and isinstance(dims[1], int) and dims[1] != 3:
        raise ConvertError(f"{what} has {dims[1]} channels; a pack's image is {expected} (RGB)")
    return dims


def _subgraphs(node) -> list:  # noqa: ANN001 - onnx.NodeProto
    return [g for a in node.attribute for g in ([a.g] if a.HasField("g") else []) + list(a.graphs)]


def _referenced(graph) -> set[str]:  # noqa: ANN001
    """Every tensor name a graph's nodes read, subgraphs included (they may read outer names)."""
    names = set()
    for node in graph.node:
        names.update(node.input)
        for sub in _subgraphs(node):
            names |= _referenced(sub)
    return names


def prune(graph) -> None:  # noqa: ANN001 - onnx.GraphProto
    """Remove the nodes and initializers no graph output needs (after extra outputs were dropped)."""
    needed = {o.name for o in graph.output}
    keep = []
    for node in reversed(graph.node):
        if any(o in needed for o in node.output):
            keep.append(node)
            needed.update(node.input)
            for sub in _subgraphs(node):
                needed |= _referenced(sub)
    keep.reverse()
    del graph.node[:]
    graph.node.extend(keep)
    initializers = [i for i in graph.initializer if i.name in needed]
    dropped = {i.name for i in graph.initializer} - {i.name for i in initializers}
    inputs = [i for i in graph.input if i.name not in dropped]  # older exporters list initializers as inputs too
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    del graph.input[:]
    graph.input.extend(inputs)


def _all_names(graph) -> set[str]:  # noqa: ANN001
    names = {v.name for v in [*graph.input, *graph.output, *graph.value_info, *graph.initializer]}
    for node in graph.node:
        names.update(node.input)
        names.update(node.output)
        for sub in _subgraphs(node):
            names |= _all_names(sub)
    return names


def rename(graph, mapping: dict[str, str]) -> None:  # noqa: ANN001 - onnx.GraphProto
    """Rename tensors everywhere in `graph` (nodes, subgraphs, IO, initializers, value_info) at once."""
    for node in graph.node:
        node.input[:] = [mapping.get(n, n) for n in node.input]
        node.output[:] = [mapping.get(n, n) for n in node.output]
        for sub in _subgraphs(node):
            rename(sub, mapping)
    for v in [*graph.input, *graph.output, *graph.value_info, *graph.initializer]:
        v.name = mapping.get(v.name, v.name)
    for sparse in graph.sparse_initializer:
        sparse.values.name = mapping.get(sparse.values.name, sparse.values.name)


def rewrite(model, spec: IOSpec) -> None:  # noqa: ANN001 - onnx.ModelProto
    """In place: keep only the image output (and what it needs), rename the IO to the standard names,
    rescale the image to [-1, 1] if `spec` declares another range, and name the batch dimension "batch"."""
    from onnx import helper, numpy_helper

    graph = model.graph
    image_out = next(o for o in graph.output if o.name == spec.image)
    del graph.output[:]
    graph.output.append(image_out)
    prune(graph)
    taken = _all_names(graph)
    mapping = spec.mapping()
    for std in STANDARD:  # inner tensors that already carry a standard name move out of the way
        if std in taken and std not in mapping:
            mapping[std] = fresh_name(f"{std}_inner", taken)
    lo, hi = spec.image_range
    if (lo, hi) != (-1.0, 1.0):
        raw, scaled = fresh_name("image_raw", taken), fresh_name("image_scaled", taken)
        scale, shift = fresh_name("image_range_scale", taken), fresh_name("image_range_shift", taken)
        mapping[spec.image] = raw
        rename(graph, mapping)
        graph.initializer.extend([numpy_helper.from_array(np.array(2.0 / (hi - lo), np.float32), scale),
                                  numpy_helper.from_array(np.array(-(hi + lo) / (hi - lo), np.float32), shift)])
        graph.node.extend([helper.make_node("Mul", [raw, scale], [scaled], name="edge_t2i_image_scale"),
                           helper.make_node("Add", [scaled, shift], ["image"], name="edge_t2i_image_shift")])
        graph.output[0].name = "image"
    else:
        rename(graph, mapping)
    for v in [*_graph_inputs(graph), *graph.output]:
        dims = v.type.tensor_type.shape.dim
        if len(dims):
            dims[0].dim_param = "batch"
    model.producer_name = "edge-t2i (imported)"


def verify(src: Path, written: Path, spec: IOSpec, nz: int, sample_embeddings: np.ndarray | None,
           seed: int, batch: int = 4) -> tuple[int, float, float, float]:
    """(resolution, max |written - rescaled original|, output min, output max) from ONNX Runtime runs of
    both models on `batch` seeded z and bank rows, after checking the written model at batch 1 and
    `batch`: image [B, 3, H, H], row 0 the same alone as in the batch, values within the declared range.

    Raises: ConvertError (cannot run, wrong image shape, samples mixed across the batch, out of range)."""
    import onnxruntime as ort

    z = np.random.default_rng(seed).standard_normal((batch, nz), dtype=np.float32)
    feeds = {"z": z}
    if spec.embedding is not None and sample_embeddings is not None:
        feeds["embedding"] = np.ascontiguousarray(np.resize(sample_embeddings, (batch, sample_embeddings.shape[1])),
                                                  np.float32)
    try:
        ours = ort.InferenceSession(str(written), providers=["CPUExecutionProvider"])
        out = ours.run(["image"], feeds)[0]
        alone = ours.run(["image"], {k: v[:1] for k, v in feeds.items()})[0]
        ref = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).run(
            [spec.image], {spec.mapping_back()[k]: v for k, v in feeds.items()})[0]
    except Exception as exc:  # ORT raises its own Fail/InvalidArgument/... types
        raise ConvertError(f"ONNX Runtime cannot run the model at batch 1 and {batch} "
                           f"({str(exc).splitlines()[0][:300]}): is its batch dimension dynamic?") from exc
    if out.ndim != 4 or out.shape[0] != batch or out.shape[1] != 3 or out.shape[2] != out.shape[3]:
        raise ConvertError(f"the image output {spec.image!r} has shape {list(out.shape)} for a batch of {batch}; "
                           "a pack's image is [B, 3, H, H] (RGB, square)")
    if not 8 <= out.shape[2] <= 4096:
        raise ConvertError(f"the image is {out.shape[2]} px; a pack holds 8 to 4096 px images")
    if not np.isfinite(out).all():
        raise ConvertError("the model outputs NaN or inf on normal inputs: check its weights")
    if np.abs(alone[0] - out[0]).max() > 1e-3 * (1.0 + np.abs(out[0]).max()):
        raise ConvertError("row 0 differs when run alone and in a batch: the model mixes samples (BatchNorm in "
                           "training mode?); export it in eval mode")
    lo, hi = spec.image_range
    outside = float(np.mean(np.abs(out) > 1.0 + 2.0 * RANGE_SLACK))
    if outside > MAX_OUTSIDE:
        raw_lo, raw_hi = float(ref.min()), float(ref.max())
        raise ConvertError(f"the image output runs from {raw_lo:.3g} to {raw_hi:.3g}, far outside its declared "
                           f"range [{lo:g}, {hi:g}]: declare the range with --image-range LO,HI")
    expected = ref * np.float32(2.0 / (hi - lo)) + np.float32(-(hi + lo) / (hi - lo))
    err = float(np.abs(out - expected).max())
    if not err <= PARITY_TOLERANCE:  # NaN fails too
        raise ConvertError(f"the rewritten model differs from {src.name} by {err:.2e}: please report this model")
    return int(out.shape[2]), err, float(out.min()), float(out.max())
