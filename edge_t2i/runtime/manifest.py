"""The pack manifest (manifest.json): one typed `Manifest` that the conversion writes (`Manifest.to_dict`,
`write_manifest`) and the runtime reads (`read_manifest`), and the checks run before anything in a pack is used.

A pack is untrusted input (a game loads it from disk): file names must be plain
names inside the pack, sizes and shapes must be sane, and every file must match
the sha256 the manifest declares.

Typed sub-records: TensorSpec (IO), EngineEntry, CpuVariant, Int8Coverage; files as name -> sha256 and bytes. What the conversion
measured (calibration, gate, layers kept in float, export parity, tools, host, timings) travels as `records`,
JSON objects the runtime shows but never acts on.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edge_t2i.errors import EdgeT2IError, PackError, printable
from edge_t2i.runtime import noise as noise_kinds

SCHEMA_VERSION = 3  # 3: conditioning (sentence | none) and INT8 coverage; 2: portable bank and noise; 1, 2 still read
MANIFEST = "manifest.json"
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 32            # how deeply manifest.json may nest (a real one: 5)
MAX_DIM = 4096            # largest sane declared dimension (noise size, embedding size, image side)
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
PRECISIONS = ("fp32", "fp16", "int8")
OUTPUT_RANGE = (-1.0, 1.0)  # the image's values (tanh); backends.base.IOSpec checks every output against it
CONDITIONINGS = ("sentence", "none")  # z + sentence embedding -> image; z alone -> image (unconditional)
RECORDS = ("calibration", "gate", "kept_in_float", "qdq_nodes", "export", "training", "source", "bank_source",
           "tools", "host", "stage_seconds")  # what the conversion measured: shown, never acted on


def safe_name(name: object, where: str) -> str:
    """A file name the manifest may use: no folders, no '..', no absolute paths."""
    if not isinstance(name, str) or not _SAFE_NAME.fullmatch(name) or ".." in name:
        raise PackError(f"manifest {where}: {name!r} is not a plain file name inside the pack")
    return name


def _int(value: object, where: str, lo: int = 1, hi: int = MAX_DIM) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise PackError(f"manifest {where}: expected an integer in [{lo}, {hi}], got {value!r}")
    return value


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int | str, ...]  # "batch" for the dynamic batch dimension
    dtype: str

    @classmethod
    def parse(cls, raw: object, where: str) -> TensorSpec:
        if not isinstance(raw, dict):
            raise PackError(f"manifest {where}: expected an object")
        name, shape, dtype = raw.get("name"), raw.get("shape"), raw.get("dtype")
        if not isinstance(name, str) or not name or len(name) > 128:
            raise PackError(f"manifest {where}.name: expected a tensor name")
        if not isinstance(shape, list) or not 1 <= len(shape) <= 8:
            raise PackError(f"manifest {where}.shape: expected a list of 1 to 8 dimensions")
        dims: list[int | str] = [d if d == "batch" else _int(d, f"{where}.shape") for d in shape]
        if dtype not in ("float32", "float16"):
            raise PackError(f"manifest {where}.dtype: expected float32 or float16, got {dtype!r}")
        return cls(name, tuple(dims), dtype)

    def as_dict(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}


@dataclass(frozen=True)
class EngineEntry:
    file: str
    precision: str
    tensorrt_version: str
    compute_capability: str
    max_batch: int
    source: str = ""   # the ONNX model it was built from


@dataclass(frozen=True)
class CpuVariant:
    """A model of the same precision tuned for ONNX Runtime on CPUs with any of `requires_any` flags
    (e.g. the U8S8 INT8 model, exact only with VNNI: runtime/cpu.py)."""
    file: str
    requires_any: tuple[str, ...]
    extra: dict = field(default_factory=dict, compare=False)  # what the conversion recorded (activations, gate)


@dataclass(frozen=True)
class Int8Coverage:
    """What of the INT8 model runs in INT8 (convert/graph.py measures it): by MACs and by weighted layers."""

    macs_fraction: float   # MACs of Conv/ConvTranspose/Gemm/MatMul layers with Q/DQ inputs and weights / all
    layers_int8: int
    layers: int
    macs_int8: int         # per image
    macs: int

    @property
    def layers_fraction(self) -> float:
        return self.layers_int8 / self.layers if self.layers else 0.0

    def as_dict(self) -> dict:
        return {"macs_fraction": round(self.macs_fraction, 4), "layers_int8": self.layers_int8,
                "layers": self.layers, "macs_int8": self.macs_int8, "macs": self.macs}

    def describe(self) -> str:
        return (f"{self.macs_fraction:.1%} of MACs in INT8 ({self.layers_int8} of {self.layers} weighted layers, "
                f"{self.macs_int8 / 1e6:.1f} of {self.macs / 1e6:.1f} M MACs per image)")


@dataclass(frozen=True)
class Manifest:
    root: Path
    raw: dict[str, Any]               # the JSON it was read from ({} for one built in memory: use to_dict())
    resolution: int
    nz: int
    embedding_dim: int                # 0 for an unconditional generator
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    models: dict[str, str]            # precision -> ONNX file
    engines: tuple[EngineEntry, ...]
    bank: str | None
    encoder: dict[str, str] | None    # {"model": file, "tokenizer": file[, "reader": file]}
    files: dict[str, str]             # name -> sha256
    noise: str = noise_kinds.LEGACY   # the seed -> z generator the pack's images assume (runtime/noise.py)
    cpu_variants: dict[str, CpuVariant] = field(default_factory=dict)  # precision -> ONNX Runtime CPU variant
    conditioning: str = "sentence"    # CONDITIONINGS
    file_bytes: dict[str, int] = field(default_factory=dict)
    coverage: Int8Coverage | None = None
    model: dict[str, Any] = field(default_factory=dict)     # the generator's configuration record
    records: dict[str, Any] = field(default_factory=dict)   # RECORDS
    schema_version: int = SCHEMA_VERSION
    created: str = ""
    reference: str | None = None      # the device check's reference set (runtime/verify.py); None: rendered there

    def path(self, name: str) -> Path:
        return self.root / name

    @property
    def gate(self) -> dict:
        return self.records.get("gate") or {}

    @property
    def conditional(self) -> bool:
        return self.conditioning != "none"

    @property
    def channels(self) -> int:
        """3: the generator draws RGB; 4: premultiplied RGBA (a sprite with alpha)."""
        return int(self.outputs[0].shape[1]) if self.outputs else 3

    def to_dict(self) -> dict[str, Any]:
        """The manifest.json object (docs/pack-spec.md); `parse_manifest` reads it back to an equal Manifest."""
        variants = {p: {"file": v.file, "requires_any": list(v.requires_any), **v.extra}
                    for p, v in self.cpu_variants.items()}
        out: dict[str, Any] = {
            "schema_version": self.schema_version, "format": PACK_FORMAT, "created": self.created,
            "model": self.model, "conditioning": self.conditioning,
            "io": {"inputs": [t.as_dict() for t in self.inputs], "outputs": [t.as_dict() for t in self.outputs]},
            "output_range": list(OUTPUT_RANGE), "models": dict(self.models), "cpu_variants": variants,
            "engines": [asdict(e) for e in self.engines], "bank": self.bank, "encoder": self.encoder,
            "noise": {"name": self.noise, "spec": "docs/pack-spec.md#noise"},
            "int8_coverage": self.coverage.as_dict() if self.coverage else None,
            "reference": self.reference,
            "files": {n: {"sha256": d, "bytes": self.file_bytes.get(n, 0)} for n, d in self.files.items()},
        }
        out.update({k: self.records.get(k) for k in RECORDS})
        return out


def standard_io(resolution: int, nz: int, embedding_dim: int,
                channels: int = 3) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """The generator IO every pack has: z [batch, nz] (+ embedding [batch, d] unless d is 0) -> image
    [batch, channels, R, R] (channels 3: RGB; 4: premultiplied RGBA)."""
    inputs = [TensorSpec("z", ("batch", nz), "float32")]
    if embedding_dim:
        inputs.append(TensorSpec("embedding", ("batch", embedding_dim), "float32"))
    return tuple(inputs), (TensorSpec("image", ("batch", channels, resolution, resolution), "float32"),)


def write_manifest(pack_dir: str | os.PathLike[str], manifest: Manifest) -> Path:
    """Write `manifest` as pack_dir/manifest.json (atomically), after checking that it reads back equal."""
    from edge_t2i._io import write_json

    raw = manifest.to_dict()
    if parse_manifest(Path(pack_dir), raw).to_dict() != raw:  # the writer and the reader agree on every field
        raise PackError("internal error: the manifest does not read back as written")
    path = Path(pack_dir) / MANIFEST
    write_json(path, raw)
    return path


def _parse_engines(raw: object) -> tuple[EngineEntry, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise PackError("manifest engines: expected a list")
    out = []
    for i, e in enumerate(raw):
        if not isinstance(e, dict):
            raise PackError(f"manifest engines[{i}]: expected an object")
        prec = e.get("precision")
        if prec not in PRECISIONS:
            raise PackError(f"manifest engines[{i}].precision: expected one of {PRECISIONS}")
        out.append(EngineEntry(safe_name(e.get("file"), f"engines[{i}].file"), prec,
                               str(e.get("tensorrt_version", "")), str(e.get("compute_capability", "")),
                               _int(e.get("max_batch"), f"engines[{i}].max_batch"), str(e.get("source", ""))[:256]))
    return tuple(out)


def _parse_cpu_variants(raw: object) -> dict[str, CpuVariant]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise PackError("manifest cpu_variants: expected an object of precision -> variant")
    out = {}
    for prec, v in raw.items():
        if prec not in PRECISIONS or not isinstance(v, dict):
            raise PackError(f"manifest cpu_variants.{prec}: expected a known precision with an object")
        flags = v.get("requires_any")
        if not isinstance(flags, list) or not flags or not all(isinstance(f, str) and f.isidentifier() for f in flags):
            raise PackError(f"manifest cpu_variants.{prec}.requires_any: expected a list of CPU flag names")
        extra = {k: x for k, x in v.items() if k not in ("file", "requires_any")}
        out[prec] = CpuVariant(safe_name(v.get("file"), f"cpu_variants.{prec}.file"), tuple(flags), extra)
    return out


def parse_manifest(root: Path, raw: object) -> Manifest:
    if not isinstance(raw, dict):
        raise PackError("manifest must be a JSON object")
    version = raw.get("schema_version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise PackError("manifest has no integer schema_version")
    if version > SCHEMA_VERSION:
        raise PackError(f"pack schema version {version} is newer than this runtime understands "
                        f"({SCHEMA_VERSION}): upgrade edge-t2i")
    if version < 1:
        raise PackError(f"pack schema version {version} is invalid")
    model = raw.get("model")
    if not isinstance(model, dict):
        raise PackError("manifest model: expected an object")
    files, sizes = _parse_files(raw.get("files"), sizes_required=version >= 3)
    conditioning = raw.get("conditioning", "sentence")
    if conditioning not in CONDITIONINGS:
        raise PackError(f"manifest conditioning: expected one of {', '.join(CONDITIONINGS)}, got {str(conditioning)[:40]!r}"
                        " (a newer pack? upgrade edge-t2i)")
    models = _parse_models(raw.get("models"))
    bank = safe_name(raw["bank"], "bank") if raw.get("bank") is not None else None
    encoder = _parse_encoder(raw.get("encoder"))
    reference = safe_name(raw["reference"], "reference") if raw.get("reference") is not None else None
    engines = _parse_engines(raw.get("engines"))
    cpu_variants = _parse_cpu_variants(raw.get("cpu_variants"))
    for prec in cpu_variants:
        if prec not in models:
            raise PackError(f"manifest cpu_variants.{prec}: the pack has no {prec} model it could stand in for")
    referenced = [*models.values(), *(e.file for e in engines), *([bank] if bank else []),
                  *(v.file for v in cpu_variants.values()), *([reference] if reference else []),
                  *(encoder.values() if encoder else [])]
    for name in referenced:
        if name not in files:
            raise PackError(f"manifest references {name} but lists no sha256 for it")
    if conditioning == "none" and (bank is not None or encoder is not None):
        raise PackError("manifest: an unconditional generator (conditioning none) has no bank or text encoder")
    embedding_dim = _int(model.get("cond_dim"), "model.cond_dim") if conditioning == "sentence" else 0
    resolution, nz = _int(model.get("resolution"), "model.resolution"), _int(model.get("nz"), "model.nz")
    channels = _channels(model)
    inputs, outputs = _parse_io(raw.get("io"), conditioning, raw.get("output_range", list(OUTPUT_RANGE)))
    if (inputs, outputs) != standard_io(resolution, nz, embedding_dim, channels):
        raise PackError(f"manifest io: the shapes must be z [batch, {nz}]"
                        + (f", embedding [batch, {embedding_dim}]" if embedding_dim else "")
                        + f" -> image [batch, {channels}, {resolution}, {resolution}] float32, as model says")
    created = raw.get("created", "")
    gate = raw.get("gate")
    if gate is not None and not isinstance(gate, dict):
        raise PackError("manifest gate: expected an object")
    return Manifest(
        root=root, raw=raw,
        resolution=resolution,
        nz=nz,
        embedding_dim=embedding_dim,
        inputs=inputs, outputs=outputs, models=models, engines=engines, bank=bank, encoder=encoder,
        files=files, noise=_parse_noise(raw.get("noise")), cpu_variants=cpu_variants, conditioning=conditioning,
        file_bytes=sizes, coverage=_parse_coverage(raw.get("int8_coverage")), model=model,
        records={k: raw[k] for k in RECORDS if raw.get(k) is not None}, schema_version=version,
        created=created if isinstance(created, str) else "", reference=reference,
    )


def _channels(model: dict) -> int:
    channels = model.get("channels", 3)
    if channels not in (3, 4) or isinstance(channels, bool):
        raise PackError(f"manifest model.channels: 3 (RGB) or 4 (premultiplied RGBA), got {str(channels)[:20]}")
    return int(channels)


def _parse_io(io: object, conditioning: str,
              output_range: object) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    if output_range != list(OUTPUT_RANGE):
        raise PackError(f"manifest output_range: a generator's image is in {list(OUTPUT_RANGE)} (tanh), got "
                        f"{str(output_range)[:40]}")
    if not isinstance(io, dict):
        raise PackError("manifest io: expected an object with inputs and outputs")
    for key in ("inputs", "outputs"):
        if not isinstance(io.get(key), list):
            raise PackError(f"manifest io.{key}: expected a list of tensors")
    inputs = tuple(TensorSpec.parse(t, f"io.inputs[{i}]") for i, t in enumerate(io["inputs"]))
    outputs = tuple(TensorSpec.parse(t, f"io.outputs[{i}]") for i, t in enumerate(io["outputs"]))
    expected = ["z", "embedding"] if conditioning == "sentence" else ["z"]
    if [t.name for t in inputs] != expected or [t.name for t in outputs] != ["image"]:
        raise PackError(f"manifest io: expected inputs [{', '.join(expected)}] and output [image] for a "
                        f"{conditioning}-conditioned generator")
    return inputs, outputs


def _parse_models(raw: object) -> dict[str, str]:
    if not isinstance(raw, dict) or not raw:
        raise PackError("manifest models: expected an object of precision -> ONNX file")
    models = {}
    for prec, name in raw.items():
        if prec not in PRECISIONS:
            raise PackError(f"manifest models: unknown precision {prec!r}")
        models[prec] = safe_name(name, f"models.{prec}")
    return models


def _parse_encoder(raw: object) -> dict[str, str] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise PackError("manifest encoder: expected an object")
    keys = ("model", "tokenizer", *(["reader"] if raw.get("reader") is not None else []))  # reader: optional
    return {k: safe_name(raw.get(k), f"encoder.{k}") for k in keys}


def _parse_coverage(raw: object) -> Int8Coverage | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise PackError("manifest int8_coverage: expected an object")
    fraction = raw.get("macs_fraction")
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0.0 <= fraction <= 1.0:
        raise PackError(f"manifest int8_coverage.macs_fraction: expected a number in [0, 1], got {str(fraction)[:40]}")
    layers_int8, layers, macs_int8, macs = (_int(raw.get(k), f"int8_coverage.{k}", 0, 2**62)
                                            for k in ("layers_int8", "layers", "macs_int8", "macs"))
    if layers_int8 > layers or macs_int8 > macs or abs(fraction - (macs_int8 / macs if macs else 0.0)) > 1e-3:
        raise PackError("manifest int8_coverage: the counts do not add up (INT8 layers or MACs above the totals, or "
                        "macs_fraction not macs_int8 / macs)")
    return Int8Coverage(float(fraction), layers_int8, layers, macs_int8, macs)


def _parse_files(raw: object, sizes_required: bool = True) -> tuple[dict[str, str], dict[str, int]]:
    """(name -> sha256, name -> bytes; 0 where a pack of schema 1 or 2 does not say: schema 3 must)."""
    if not isinstance(raw, dict) or not raw:
        raise PackError("manifest files: expected an object of file name -> {sha256}")
    files, sizes = {}, {}
    for name, entry in raw.items():
        digest = entry.get("sha256") if isinstance(entry, dict) else None
        if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise PackError(f"manifest files[{name!r}]: expected a sha256 hex digest")
        files[safe_name(name, "files")] = digest
        if sizes_required and "bytes" not in entry:
            raise PackError(f"manifest files[{name!r}]: no 'bytes' (a schema-3 pack declares every file's size)")
        sizes[name] = _int(entry.get("bytes", 0), f"files[{name!r}].bytes", 0, 2**62)
    return files, sizes


def _parse_noise(raw: object) -> str:
    """The pack's noise generator; packs without the field (schema 1) assume NumPy's PCG64."""
    if raw is None:
        return noise_kinds.LEGACY
    name = raw.get("name") if isinstance(raw, dict) else None
    if name not in noise_kinds.KINDS:
        raise PackError(f"manifest noise: {name!r} is not a generator this runtime knows "
                        f"({', '.join(noise_kinds.KINDS)}): upgrade edge-t2i")
    return str(name)


PACK_FORMAT = "edge-t2i pack"


def is_pack(path: Path) -> bool:
    """Whether folder `path` holds a pack this tool wrote (a manifest.json of its format): never raises."""
    try:
        raw = _load_json(path / MANIFEST)
    except (EdgeT2IError, OSError):
        return False
    return isinstance(raw, dict) and raw.get("format") == PACK_FORMAT


def read_manifest(pack_dir: str | os.PathLike[str]) -> Manifest:
    """The typed manifest of the pack in folder `pack_dir`: the one parser every command uses.

    Any JSON at all (any type in any field, any size, nesting or number) gives a PackError, one line.
    Raises: PackError (not a folder, no manifest, a manifest that is a link, FIFO or device, larger than
    MAX_MANIFEST_BYTES, not JSON, or not a valid manifest)."""
    if not isinstance(pack_dir, (str, os.PathLike)):
        raise PackError(f"a pack is a folder path, got {type(pack_dir).__name__}")
    root = Path(pack_dir)
    try:
        if root.is_file():
            raise PackError(f"{root} is a file: a pack is a folder with {MANIFEST}")
        if not root.is_dir():
            raise PackError(f"pack {root} not found (expected a folder with {MANIFEST})")
    except (OSError, ValueError) as exc:  # a name too long, a NUL byte, a folder we may not read
        raise PackError(f"pack {str(root)[:200]!r} cannot be read ({exc})") from None
    path = root / MANIFEST
    if not path.exists() and not path.is_symlink():
        raise PackError(f"{root} is not a pack: {MANIFEST} not found")
    raw = _load_json(path)
    try:
        return parse_manifest(root, raw)
    except PackError as exc:  # values of the file quoted in the message: one short printable line
        raise PackError(printable(" ".join(str(exc).split()), 300)) from None
    except (TypeError, ValueError, AttributeError, KeyError, OverflowError, RecursionError) as exc:
        # parse_manifest checks every field's type; this is the backstop for a case it does not foresee
        raise PackError(f"{path} is not a valid manifest ({type(exc).__name__}: {str(exc)[:160]})") from None


def _load_json(path: Path) -> object:
    """The JSON value of manifest file `path`, read as a pack file is (regular, at most MAX_MANIFEST_BYTES).
    Raises PackError (not such a file, not UTF-8 JSON, nested too deeply, NaN/Infinity, huge integers)."""
    from edge_t2i.runtime.packfile import read_plain

    data = read_plain(path, MAX_MANIFEST_BYTES, str(path))
    try:
        raw = json.loads(data.decode("utf-8"), parse_constant=_no_constant)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, an integer over Python's 4,300 digits
        raise PackError(f"{path} is not valid JSON ({str(exc)[:200]})") from None
    except RecursionError:  # json nests on the C stack: a crafted "[[[[..." ends here
        raise PackError(f"{path} nests too deeply to be a manifest") from None
    if _depth(raw) > MAX_DEPTH:  # what json.loads accepts, json.dumps (the pack digest) may not: refuse it here
        raise PackError(f"{path} nests deeper than {MAX_DEPTH} levels: not a manifest")
    return raw


def _depth(value: object) -> int:
    """How deeply JSON `value` nests (a scalar: 0), found without recursion."""
    deepest, todo = 0, [(value, 0)]
    while todo:
        item, level = todo.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, level + 1)
            if deepest > MAX_DEPTH:
                return deepest
            todo.extend((v, level + 1) for v in (item.values() if isinstance(item, dict) else item))
    return deepest


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")
