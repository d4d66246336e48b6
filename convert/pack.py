"""`edge-t2i convert`: source -> ONNX -> INT8 (Q/DQ) -> gate -> engine -> pack, one path for every source.

Sources (convert/sources.py) differ only in how the FP32 model, the bank and the gate are made; the stages
after them are this module's `convert`. The pack is assembled in a temporary folder beside the target and renamed into
place only when every stage succeeded: an interrupted or failed convert leaves
any previous pack at that path intact.
"""

from __future__ import annotations

import logging
import os
import platform
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from edge_t2i import _io
from edge_t2i.convert import gate as gate_mod
from edge_t2i.convert.export import DEFAULT_OPSET
from edge_t2i.convert.fidelity import FidelityConfig
from edge_t2i.convert.graph import fold_batch_norm
from edge_t2i.convert.mixed import CALIB_FILE, INT8_FILE, Int8Record, calibrate, int8_stages
from edge_t2i.convert.quantize import QuantConfig
from edge_t2i.convert.report import write_report
from edge_t2i.convert.sources import Exported, Source, own_checkpoint
from edge_t2i.errors import ConvertError, require
from edge_t2i.runtime import cpu
from edge_t2i.runtime.bank import PromptBank
from edge_t2i.runtime.manifest import (
    PACK_FORMAT,
    CpuVariant,
    EngineEntry,
    Manifest,
    is_pack,
    standard_io,
    write_manifest,
)
from edge_t2i.runtime.noise import PORTABLE as PORTABLE_NOISE

log = logging.getLogger(__name__)

FP32_FILE = "generator.fp32.onnx"
FP16_FILE = "generator.fp16.onnx"
BANK_FILE = "bank.safetensors"
REFERENCE_FILE = "reference.safetensors"


@dataclass(frozen=True)
class ConvertOptions:
    precision: str = "int8"
    prompts: str | None = None          # bank prompts (default: calib/prompts/bank.txt)
    calib_prompts: str | None = None    # default: calib/prompts/calibration.txt
    eval_prompts: str | None = None     # default: calib/prompts/eval.txt
    calib_samples: int = 256
    calib_method: str = "percentile"
    calib_percentile: float | None = None  # None: chosen per model from PERCENTILES (mixed.choose_percentile)
    quantizer: str = "ort"
    quantize_ops: tuple[str, ...] = QuantConfig().op_types
    gate: bool = True
    gate_config: gate_mod.GateConfig = field(default_factory=gate_mod.GateConfig)
    fidelity_config: FidelityConfig = field(default_factory=FidelityConfig)  # the gate without an oracle (gate.FidelityGate)
    gate_kind: str = "auto"            # auto | oracle | fidelity (sources.oracle_applies)
    quantize_output: bool = False      # also quantize the layers that write the image (graph.output_layers)
    min_int8_macs: float = 0.5         # an INT8 pack with less of its MACs in INT8 is refused ...
    allow_partial_int8: bool = False   # ... unless this is set (0% is always refused)
    engine: bool = False
    max_batch: int = 16
    opset: int = DEFAULT_OPSET
    with_encoder: bool = True          # the text encoder (INT8 ONNX + tokenizer) for prompts not in the bank
    lexicon: str = "auto"              # auto | descriptive | none | a JSON file: descriptive words (convert/lexicon.py)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.precision not in ("int8", "fp16", "fp32"):
            raise ConvertError(f"--precision must be int8, fp16 or fp32, got {self.precision!r}")
        if not 1 <= self.max_batch <= 1024:
            raise ConvertError(f"--max-batch must be in [1, 1024], got {self.max_batch}")
        QuantConfig(method=self.calib_method, quantizer=self.quantizer, op_types=self.quantize_ops,
                    percentile=self.calib_percentile or 99.99)  # validates
        if self.gate_kind not in ("auto", "oracle", "fidelity"):
            raise ConvertError(f"--gate must be auto, oracle or fidelity, got {self.gate_kind!r}")


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
    if options.lexicon in ("auto", "descriptive"):
        require("matplotlib", "convert", "The descriptive lexicon (--lexicon none leaves it out)")
    elif options.lexicon == "colors" and not os.path.exists("colors"):
        raise ConvertError("--lexicon colors is now --lexicon descriptive (colour names and size words)")
    elif options.lexicon != "none":
        from edge_t2i.convert.lexicon import read_lexicon

        read_lexicon(options.lexicon)
    if options.quantizer == "modelopt" and options.precision == "int8":

        require("modelopt.onnx.quantization", "modelopt", "--quantizer modelopt")


def preflight_kid(options: ConvertOptions) -> None:
    """The fidelity gate's KID check needs torch and the Inception weights file (its image count is FidelityConfig's
    to check): checked before minutes of export and calibration. Raises: MissingExtraError, CheckpointError."""
    if not options.fidelity_config.kid:
        return
    from edge_t2i.eval import kid

    require("torch", kid.EXTRA, "The KID check of the fidelity gate (--no-kid skips it)")
    kid.weights_path()


def convert(source: Source, out: str | os.PathLike[str], options: ConvertOptions = ConvertOptions(),
            quiet: bool = False, force: bool = False) -> Manifest:
    """The one conversion path: `source` (convert/sources.py) -> FP32 ONNX -> BatchNorm folded -> bank ->
    calibration + INT8 + gate (or FP16) -> engine -> text encoder -> manifest and report, in a temporary folder
    renamed to `out` only when every stage passed (a failure or interruption leaves any previous pack intact).

    Returns: the Manifest (also written as manifest.json; runtime/manifest.py).
    Raises: ConvertError (a stage failed, including an INT8 model that fails the gate with every fallback or
    falls under the INT8 coverage floor), CheckpointError, DataError, MissingExtraError, OutputError (`out` holds
    files that are not a pack, without `force`; `out` overlaps an input)."""
    _io.claim_output_dir(out, "pack", is_pack, source.inputs, force)
    preflight(options)
    if options.precision == "int8" and source.gate_kind == "fidelity":
        preflight_kid(options)
    st = Stages(quiet)
    with _io.atomic_dir(out) as tmp, _io.scratch_tempdir(tmp / ".scratch"):
        exported = source.export(tmp / FP32_FILE, st)
        folded = fold_batch_norm(tmp / FP32_FILE)
        if folded:
            st.done("fold", f"{folded} BatchNormalization folded into the layer before each")
        lexicon_note: list[str] = []
        if source.bank is not None:
            source.bank, lexicon_note = lexicon_stage(source.bank, options, source.gate_kind == "oracle", st)
            source.bank.save(tmp / BANK_FILE)
            st.done("bank", f"{len(source.bank)} prompts x {source.bank.dim} float16 ({source.bank.encoder_name}) -> "
                            f"{BANK_FILE}")
        models, record = model_stages(tmp, exported.model, source, options, st)
        engines = engine_stage(tmp, models, exported.model, options, st)
        with_encoder = source.bank is not None and source.checkpoint_dir is not None
        encoder = encoder_stage(tmp, options, st, source.checkpoint_dir) if with_encoder else None
        manifest = build_manifest(tmp, source, exported, models, engines, encoder, record, options, st)
        manifest = reference_stage(tmp, manifest, source, st)
        write_manifest(tmp, manifest)
        write_report(tmp, manifest.to_dict(), lexicon_note)
    return replace(manifest, root=Path(out), raw=manifest.to_dict())


def convert_checkpoint(checkpoint_dir: str | os.PathLike[str], out: str | os.PathLike[str],
                       options: ConvertOptions = ConvertOptions(), quiet: bool = False, force: bool = False) -> Manifest:
    """`convert` of this project's checkpoint folder (sources.own_checkpoint); `out` is checked first."""
    inputs = (checkpoint_dir, *(p for p in (options.prompts, options.calib_prompts, options.eval_prompts) if p))
    _io.claim_output_dir(out, "pack", is_pack, inputs, force)
    return convert(own_checkpoint(checkpoint_dir, options), out, options, quiet, force)


def lexicon_stage(bank: PromptBank, options: ConvertOptions, shapes: bool,
                  st: Stages) -> tuple[PromptBank, list[str]]:
    """(`bank` with the lexicon `options.lexicon` asks for (convert/lexicon.py), report.md's lines on it: its
    source and, for WordNet's and color-name-list's words, their notices and licences)."""
    from edge_t2i.convert import colornames, wordnet
    from edge_t2i.convert.lexicon import lexicon_for

    lexicon, source = lexicon_for(options.lexicon, bank.texts, shapes)
    if not lexicon:
        return bank, []
    st.done("lexicon", f"{len(lexicon)} descriptive words and phrases read as the bank's ({source})")
    note = ["", "## Lexicon", "", f"- {len(lexicon)} descriptive words and phrases in the bank, read as the bank's "
                                  f"words: {source}"]
    if "WordNet" in str(source):
        note += [f"- {wordnet.NOTICE} Its licence:", "",
                 *(f"> {line}".rstrip() for line in wordnet.load()["license"].splitlines())]
    if "color-name-list" in str(source):
        note += ["", f"- {colornames.NOTICE}. Its licence:", "",
                 *(f"> {line}".rstrip() for line in colornames.load()["license"].splitlines())]
    return PromptBank(bank.texts, bank.embeddings, bank.encoder_name, None, lexicon), note


def model_stages(tmp: Path, model: dict, source: Source, options: ConvertOptions,
                 st: Stages) -> tuple[dict[str, str], Int8Record | None]:
    """After the FP32 export in `tmp`: the FP16 model or the INT8 stages (convert/mixed.py), as
    `options.precision` asks. Returns: (the manifest's precision -> file map, the INT8 record or None)."""
    models = {"fp32": FP32_FILE}
    if options.precision == "fp16":
        models["fp16"] = to_fp16(tmp / FP32_FILE, tmp / FP16_FILE)
        st.done("fp16", FP16_FILE)
    if options.precision != "int8":
        return models, None
    data, calibration = calibrate(tmp, model["nz"], source.calib_embeddings, options, st,
                                  calibration_batch_size(model["resolution"]))
    record = int8_stages(tmp / FP32_FILE, tmp, data, calibration, source.make_gate(model["nz"]), options, st)
    models["int8"] = INT8_FILE
    return models, record


def calibration_batch_size(resolution: int) -> int:
    """Calibration batch size for a generator of `resolution` px: 8 at 64 px and below, then 8 * (64 / R)^2
    (at least 1), so one calibration batch's activations stay near those of a 64 px model. ONNX Runtime's
    calibrator holds every batch until it computes the ranges, so memory grows with --calib-samples:
    measured with the DF-GAN NetG at 256 px, ngf 32, about 190 MB a sample (64 samples: 11.4 GB peak)."""
    return min(8, max(1, 8 * 64 * 64 // (resolution * resolution)))


def to_fp16(src: Path, dst: Path) -> str:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
    with _io.atomic_path(dst) as tmp:
        onnx.save(model, str(tmp))
    return dst.name


def engine_stage(tmp: Path, models: dict[str, str], model: dict, options: ConvertOptions, st: Stages) -> list[dict]:
    if not options.engine:
        return []
    from edge_t2i.convert.engine import EngineConfig, build_engine
    from edge_t2i.runtime.backends.tensorrt import gpu_identity

    source = models[options.precision]
    dims = {"z": model["nz"], **({"embedding": model["cond_dim"]} if model.get("cond_dim") else {})}
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


def build_manifest(tmp: Path, source: Source, exported: Exported, models: dict[str, str], engines: list[dict],
                   encoder: dict | None, record: Int8Record | None, options: ConvertOptions, st: Stages) -> Manifest:
    """The typed Manifest of the pack in `tmp`, after the same metadata went into each ONNX model's
    metadata_props (so the sha256s cover it). No path of the converting machine goes into it."""
    model = exported.model
    dim = int(model.get("cond_dim", 0)) if source.conditioning == "sentence" else 0
    inputs, outputs = standard_io(model["resolution"], model["nz"], dim, int(model.get("channels", 3)))
    variants = record.cpu_variants if record else {}
    coverage = record.coverage if record else None
    stamp_onnx_metadata(tmp, [*models.values(), *(v["file"] for v in variants.values())],
                        {"model": model, "conditioning": source.conditioning,
                         "io": {"inputs": [t.as_dict() for t in inputs], "outputs": [t.as_dict() for t in outputs]},
                         "int8_coverage": coverage.as_dict() if coverage else None})
    names = [*models.values(), *([BANK_FILE] if source.bank is not None else []), *(e["file"] for e in engines),
             *(encoder.values() if encoder else []), *([CALIB_FILE] if record else []),
             *(v["file"] for v in variants.values())]
    records = {"export": {**exported.export, "opset": options.opset, "parity_max_abs_error": exported.parity},
               "training": source.training or None, "bank_source": source.bank_source,
               "source": {"kind": model.get("architecture", "dfgan-edge"), "description": source.description},
               "tools": tool_versions(), "host": cpu.host_record(), "stage_seconds": st.times}
    if record:
        records.update(calibration=record.calibration, gate=record.gate, kept_in_float=record.kept_in_float,
                       qdq_nodes=record.qdq)
    return Manifest(
        root=tmp, raw={}, resolution=model["resolution"], nz=model["nz"], embedding_dim=dim, inputs=inputs,
        outputs=outputs, models=models, engines=tuple(EngineEntry(e["file"], e["precision"], e["tensorrt_version"],
                                                                  e["compute_capability"], e["max_batch"], e["source"])
                                                      for e in engines),
        bank=BANK_FILE if source.bank is not None else None, encoder=encoder,
        files={n: _io.sha256_file(tmp / n) for n in names}, noise=PORTABLE_NOISE,
        cpu_variants={p: CpuVariant(v["file"], tuple(v["requires_any"]),
                                    {k: x for k, x in v.items() if k not in ("file", "requires_any")})
                      for p, v in variants.items()},
        conditioning=source.conditioning, file_bytes={n: (tmp / n).stat().st_size for n in names},
        coverage=coverage, model=model, records={k: v for k, v in records.items() if v is not None},
        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))


def reference_stage(tmp: Path, manifest: Manifest, source: Source, st: Stages) -> Manifest:
    """Add the device check's reference set (runtime/verify.py): the FP32 model's images of fixed inputs, rendered
    by ONNX Runtime as the gate rendered its reference, so every engine on every device is checked against them."""
    from edge_t2i.imaging import to_uint8
    from edge_t2i.runtime.backends.onnxruntime import OnnxRuntimeBackend
    from edge_t2i.runtime.verify import REFERENCE_COUNT, psnr_db, reference_feeds, ssim, write_reference

    if "fp32" not in manifest.models:
        return manifest
    feeds = reference_feeds(manifest, source.bank.embeddings if source.bank is not None else None)
    rendered = {}
    for precision, name in manifest.models.items():
        with OnnxRuntimeBackend(tmp / name) as backend:
            rendered[precision] = to_uint8(backend.run(feeds)["image"])
    images = rendered["fp32"]
    expected = {p: (psnr_db(images, x), ssim(images, x)) for p, x in rendered.items()}
    digest = write_reference(tmp / REFERENCE_FILE, feeds, images, expected)
    others = ", ".join(f"{p} {a:.1f} dB" for p, (a, _) in expected.items() if p != "fp32")
    st.done("reference", f"{REFERENCE_COUNT} FP32 images for the device check -> {REFERENCE_FILE}"
            + (f" (ONNX Runtime on them: {others})" if others else ""))
    return replace(manifest, reference=REFERENCE_FILE, files={**manifest.files, REFERENCE_FILE: digest},
                   file_bytes={**manifest.file_bytes, REFERENCE_FILE: (tmp / REFERENCE_FILE).stat().st_size})


def stamp_onnx_metadata(folder: Path, names: list[str], metadata: dict) -> None:
    """Write `metadata` (JSON values) into each ONNX model's metadata_props as "edge_t2i.<key>", in place, so a
    model file taken out of its pack still says what it is (the Ultralytics exporter does the same)."""
    import json

    import onnx

    for name in dict.fromkeys(names):
        model = onnx.load(str(folder / name))
        keep = [p for p in model.metadata_props if not p.key.startswith("edge_t2i.")]
        del model.metadata_props[:]
        model.metadata_props.extend(keep)
        for key, value in {"format": PACK_FORMAT, **metadata}.items():
            model.metadata_props.add(key=f"edge_t2i.{key}", value=json.dumps(value, sort_keys=True))
        with _io.atomic_path(folder / name) as tmp:
            onnx.save(model, str(tmp))
