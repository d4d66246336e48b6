"""`edge-t2i convert`: checkpoint -> ONNX -> INT8 (Q/DQ) -> gate -> engine -> pack.

The pack is assembled in a temporary folder beside the target and renamed into
place only when every stage succeeded: an interrupted or failed convert leaves
any previous pack at that path intact.
"""

from __future__ import annotations

import logging
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge_t2i import _io, calib
from edge_t2i.convert import gate as gate_mod
from edge_t2i.convert.export import DEFAULT_OPSET, export_onnx
from edge_t2i.convert.fidelity import FidelityConfig
from edge_t2i.convert.mixed import CALIB_FILE, INT8_FILE, int8_stages
from edge_t2i.convert.quantize import QuantConfig
from edge_t2i.convert.report import write_report
from edge_t2i.data.prompts import normalize_prompt, read_prompts
from edge_t2i.errors import ConvertError
from edge_t2i.runtime import cpu
from edge_t2i.runtime.bank import PromptBank
from edge_t2i.runtime.manifest import MANIFEST, PACK_FORMAT, SCHEMA_VERSION, is_pack
from edge_t2i.runtime.noise import PORTABLE as PORTABLE_NOISE

log = logging.getLogger(__name__)

FP32_FILE = "generator.fp32.onnx"
FP16_FILE = "generator.fp16.onnx"
BANK_FILE = "bank.safetensors"


@dataclass(frozen=True)
class ConvertOptions:
    precision: str = "int8"
    prompts: str | None = None          # bank prompts (default: calib/prompts/bank.txt)
    calib_prompts: str | None = None    # default: calib/prompts/calibration.txt
    eval_prompts: str | None = None     # default: calib/prompts/eval.txt
    calib_samples: int = 256
    calib_method: str = "percentile"
    quantizer: str = "ort"
    quantize_ops: tuple[str, ...] = QuantConfig().op_types
    gate: bool = True
    gate_config: gate_mod.GateConfig = field(default_factory=gate_mod.GateConfig)
    fidelity_config: FidelityConfig = field(default_factory=FidelityConfig)  # the gate without an oracle (byo.py)
    engine: bool = False
    max_batch: int = 16
    opset: int = DEFAULT_OPSET
    with_encoder: bool = True          # the text encoder (INT8 ONNX + tokenizer) for prompts not in the bank
    seed: int = 0

    def __post_init__(self) -> None:
        if self.precision not in ("int8", "fp16", "fp32"):
            raise ConvertError(f"--precision must be int8, fp16 or fp32, got {self.precision!r}")
        if not 1 <= self.max_batch <= 1024:
            raise ConvertError(f"--max-batch must be in [1, 1024], got {self.max_batch}")
        QuantConfig(method=self.calib_method, quantizer=self.quantizer, op_types=self.quantize_ops)  # validates


class Stages:
    """Logs one line per finished stage (with timing), like a build log, and keeps the timings."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self.times: dict[str, float] = {}
        self._t = time.perf_counter()

    def done(self, name: str, detail: str = "") -> None:
        now = time.perf_counter()
        self.times[name] = round(now - self._t, 2)
        self._t = now
        if not self.quiet:
            log.info("  [%-9s] %6.1fs  %s", name, self.times[name], detail)


def tool_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for dist in ("torch", "onnx", "onnxruntime", "tensorrt", "edge-t2i", "nvidia-modelopt"):
        out[dist] = _io.package_version(dist)
    return out


def preflight(options: ConvertOptions) -> None:
    """What a late stage needs, checked before minutes of work: TensorRT and a GPU for --engine,
    ModelOpt for --quantizer modelopt. Raises ConvertError / MissingExtraError."""
    if options.engine:
        from edge_t2i.errors import BackendError, MissingExtraError
        from edge_t2i.runtime.backends.tensorrt import gpu_identity

        try:
            gpu_identity()
        except (BackendError, MissingExtraError) as exc:
            raise ConvertError(f"--engine: cannot build a TensorRT engine here: {exc}") from exc
    if options.quantizer == "modelopt" and options.precision == "int8":
        from edge_t2i.errors import require

        require("modelopt.onnx.quantization", "modelopt", "--quantizer modelopt")


def _encode_prompts(prompts: list[str]) -> np.ndarray:
    from edge_t2i.models import text_encoder

    return text_encoder.encode(prompts)


def convert_checkpoint(checkpoint_dir: str | os.PathLike[str], out: str | os.PathLike[str],
                       options: ConvertOptions = ConvertOptions(), quiet: bool = False, force: bool = False) -> dict:
    """Run every stage (export, bank, calibration + INT8 + gate, engine, encoder) and write the pack
    folder `out` atomically: a failure or interruption leaves any previous pack there intact.

    Returns: the manifest (also written as manifest.json; schema in runtime/manifest.py).
    Raises: CheckpointError (bad checkpoint), DataError (bad prompt files), ConvertError (a stage
    failed, including an INT8 model that fails the gate with every fallback), MissingExtraError,
    OutputError (`out` holds files that are not a pack, without `force`; `out` overlaps an input)."""
    from edge_t2i.models.checkpoint import read_training_info
    from edge_t2i.models.config import ModelConfig

    checkpoint_dir = Path(checkpoint_dir)
    inputs = (checkpoint_dir, *(p for p in (options.prompts, options.calib_prompts, options.eval_prompts) if p))
    _io.claim_output_dir(out, "pack", is_pack, inputs, force)
    preflight(options)
    model_cfg = ModelConfig.load(checkpoint_dir / "config.json")
    bank_prompts = read_prompts(options.prompts or calib.default_prompts("bank"))
    calib_prompts = read_prompts(options.calib_prompts or calib.default_prompts("calibration"))
    eval_prompts = read_prompts(options.eval_prompts or calib.default_prompts("eval"))
    overlap = {normalize_prompt(p) for p in calib_prompts} & {normalize_prompt(p) for p in eval_prompts}
    if overlap:
        raise ConvertError(f"calibration and evaluation prompts must be disjoint; both hold {sorted(overlap)[0]!r}")
    st = Stages(quiet)
    with _io.atomic_dir(out) as tmp, _io.scratch_tempdir(tmp / ".scratch"):
        exported = export_onnx(checkpoint_dir, tmp / FP32_FILE, opset=options.opset)
        st.done("export", f"{FP32_FILE}: ONNX Runtime vs torch max |err| {exported.max_abs_error:.2e}")

        from edge_t2i.models.text_encoder import ENCODER_NAME

        bank = PromptBank(bank_prompts, _encode_prompts(bank_prompts), ENCODER_NAME)
        bank.save(tmp / BANK_FILE)
        st.done("bank", f"{len(bank)} prompts x {bank.dim} float16 -> {BANK_FILE}")

        models, record = model_stages(tmp, options, st, lambda: int8_stages(
            tmp / FP32_FILE, tmp, model_cfg.nz, _encode_prompts(calib_prompts), _encode_prompts(eval_prompts),
            eval_prompts, options, st))
        engines = engine_stage(tmp, models, model_cfg, options, st)
        encoder = encoder_stage(tmp, options, st, checkpoint_dir)
        manifest = build_manifest(tmp, model_cfg, models, engines, encoder, record, options,
                             read_training_info(checkpoint_dir), exported.max_abs_error, st.times, checkpoint_dir)
        _io.write_json(tmp / MANIFEST, manifest)
        write_report(tmp, manifest)
    return manifest


def model_stages(tmp: Path, options: ConvertOptions, st: Stages, int8: Callable[[], dict]) -> tuple[dict, dict]:
    """After the FP32 export in `tmp`: the FP16 model or `int8()`'s INT8 stages, as `options.precision` asks.
    Returns: (the manifest's precision -> file map, the INT8 record: calibration, gate, kept_in_float, qdq...)."""
    models = {"fp32": FP32_FILE}
    record: dict = {"calibration": None, "gate": None, "kept_in_float": [], "qdq": None}
    if options.precision == "fp16":
        models["fp16"] = to_fp16(tmp / FP32_FILE, tmp / FP16_FILE)
        st.done("fp16", FP16_FILE)
    if options.precision == "int8":
        record = int8()
        models["int8"] = INT8_FILE
    return models, record


def to_fp16(src: Path, dst: Path) -> str:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
    with _io.atomic_path(dst) as tmp:
        onnx.save(model, str(tmp))
    return dst.name


def engine_stage(tmp: Path, models: dict[str, str], model_cfg, options: ConvertOptions, st: Stages) -> list[dict]:  # noqa: ANN001
    if not options.engine:
        return []
    from edge_t2i.convert.engine import EngineConfig, build_engine
    from edge_t2i.runtime.backends.tensorrt import gpu_identity

    source = models[options.precision]
    dims = {"z": model_cfg.nz, "embedding": model_cfg.cond_dim}
    path = build_engine(tmp / source, tmp, dims, EngineConfig(options.precision, options.max_batch),
                        timing_cache=Path.home() / ".cache" / "edge-t2i" / "timing.cache")
    version, cc = gpu_identity()
    st.done("engine", f"{path.name} ({path.stat().st_size / 1e6:.1f} MB)")
    return [{"file": path.name, "precision": options.precision, "source": source, "tensorrt_version": version,
             "compute_capability": cc, "max_batch": options.max_batch}]


def encoder_stage(tmp: Path, options: ConvertOptions, st: Stages, checkpoint_dir: Path | None = None) -> dict | None:
    """The text encoder (INT8 ONNX + tokenizer) and, for a checkpoint with one, the phrase reader."""
    if not options.with_encoder:
        return None
    from edge_t2i.convert.encoder import export_phrase_reader, export_text_encoder

    files = export_text_encoder(tmp)
    reader = export_phrase_reader(checkpoint_dir, tmp) if checkpoint_dir is not None else None
    if reader is not None:
        files["reader"] = reader
    st.done("encoder", " + ".join(files.values()))
    return files


def build_manifest(tmp: Path, model_cfg, models: dict, engines: list, encoder: dict | None, record: dict,  # noqa: ANN001
              options: ConvertOptions, training: dict, parity: float, times: dict, source: Path) -> dict:
    io = {"inputs": [{"name": "z", "shape": ["batch", model_cfg.nz], "dtype": "float32"},
                     {"name": "embedding", "shape": ["batch", model_cfg.cond_dim], "dtype": "float32"}],
          "outputs": [{"name": "image", "shape": ["batch", 3, model_cfg.resolution, model_cfg.resolution],
                       "dtype": "float32"}]}
    names = [*models.values(), BANK_FILE, *(e["file"] for e in engines), *(encoder.values() if encoder else [])]
    if record.get("calibration"):
        names.append(CALIB_FILE)
    variants = record.get("cpu_variants") or {}
    names += [v["file"] for v in variants.values()]
    files = {n: {"sha256": _io.sha256_file(tmp / n), "bytes": (tmp / n).stat().st_size} for n in names}
    return {
        "schema_version": SCHEMA_VERSION, "format": PACK_FORMAT,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "model": model_cfg.to_dict(), "io": io, "output_range": [-1.0, 1.0],
        "models": models, "cpu_variants": variants, "engines": engines, "bank": BANK_FILE, "encoder": encoder,
        "noise": {"name": PORTABLE_NOISE, "spec": "docs/pack-spec.md#noise"},
        "files": files, "tools": tool_versions(), "host": cpu.host_record(),
        "export": {"opset": options.opset, "parity_max_abs_error": parity},
        "calibration": record.get("calibration"), "gate": record.get("gate"),
        "kept_in_float": record.get("kept_in_float", []), "qdq_nodes": record.get("qdq"),
        "training": {k: training.get(k) for k in ("steps", "images_seen", "train_seconds", "eval")},
        "source_checkpoint": str(source),
        "stage_seconds": times,
    }



