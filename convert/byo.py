"""`edge-t2i convert` for generators trained elsewhere ("bring your own"): a DF-GAN checkpoint
(`--arch dfgan`) or the user's own ONNX generator (`model.onnx --io ...`), with a bank of prompts and
vectors from the user's own text encoder (`--bank-embeddings`, convert/bank_input.py).

The same stages as this project's checkpoints (convert/pack.py): FP32 ONNX (exported with the parity
check, or imported and checked), bank, calibration, Q/DQ INT8, gate (keeping the most sensitive layers
in float until it passes), TensorRT engine, manifest, report; written atomically. The gate is the one
without an attribute oracle (convert/fidelity.py: PSNR and SSIM of INT8 against FP32), because nothing
here knows what a DF-GAN bird or a user's image should show. Calibration and the gate draw disjoint
halves of the bank's prompts.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from edge_t2i import _io
from edge_t2i.convert import fidelity
from edge_t2i.convert.bank_input import UserBank, read_user_bank
from edge_t2i.convert.mixed import (
    COMPARE_FILES,
    INT8_CPU_FILE,
    INT8_FILE,
    PROBE_IMAGES,
    calibrate,
    cpu_variant,
    keep_sensitive_in_float,
)
from edge_t2i.convert.pack import (
    BANK_FILE,
    FP32_FILE,
    ConvertOptions,
    Stages,
    build_manifest,
    engine_stage,
    model_stages,
    preflight,
)
from edge_t2i.convert.quantize import QuantConfig, count_qdq, quantize_int8
from edge_t2i.convert.report import write_report
from edge_t2i.errors import ConvertError, require
from edge_t2i.runtime.bank import PromptBank
from edge_t2i.runtime.manifest import MANIFEST, is_pack


@dataclass(frozen=True)
class GeneratorInfo:
    """What the manifest's `model` says about a generator that is not this project's NetG."""

    architecture: str          # "dfgan" or "onnx"
    resolution: int
    nz: int
    cond_dim: int
    details: dict = field(default_factory=dict)  # dfgan: ngf, source; onnx: the user's IO names and range

    def to_dict(self) -> dict:
        return {"architecture": self.architecture, "resolution": self.resolution, "nz": self.nz,
                "cond_dim": self.cond_dim, **self.details}


# (pack folder, stages) -> (generator, parity max |err|, export record): writes FP32_FILE into the folder
MakeFP32 = Callable[[Path, Stages], tuple[GeneratorInfo, float, dict]]


def convert_dfgan(checkpoint: str | os.PathLike[str], out: str | os.PathLike[str], bank_embeddings: str | os.PathLike[str],
                  resolution: int | None = None, ngf: int | None = None, nz: int | None = None,
                  cond_dim: int | None = None, options: ConvertOptions | None = None, quiet: bool = False,
                  force: bool = False) -> dict:
    """A DF-GAN checkpoint file (edge_t2i.models.dfgan: the public NetG's state dict, read with
    weights_only=True) -> pack `out`. Values of resolution/ngf/nz/cond_dim not given are read from the
    checkpoint's shapes.

    Returns: the manifest. Raises: CheckpointError (refused, unreadable or mismatching checkpoint: the
    first missing / unexpected / mis-shaped tensor), DataError (bad bank file), ConvertError (the bank's
    vector size is not the generator's; a stage failed), OutputError, MissingExtraError."""
    require("torch", "convert", "Converting a DF-GAN checkpoint")
    from edge_t2i.convert.export import export_module
    from edge_t2i.models.dfgan import build_checked, read_state, resolve_config

    options = options or ConvertOptions()
    _check_options(options)
    _io.claim_output_dir(out, "pack", is_pack, (checkpoint, bank_embeddings), force)
    preflight(options)
    bank = read_user_bank(bank_embeddings)
    state = read_state(checkpoint)
    config = resolve_config(state, resolution, ngf, nz, cond_dim)
    if config.cond_dim != bank.dim:
        raise ConvertError(f"the DF-GAN generator takes {config.cond_dim}-d sentence vectors (--cond-dim) but "
                           f"--bank-embeddings holds {bank.dim}-d ones: the bank must come from the text encoder "
                           "the generator was trained with (DF-GAN: its DAMSM encoder, 256-d)")
    model = build_checked(state, config, checkpoint)

    def make_fp32(tmp: Path, st: Stages) -> tuple[GeneratorInfo, float, dict]:
        res = export_module(model, tmp / FP32_FILE, config.nz, config.cond_dim, options.opset,
                            embeddings=bank.embeddings[:4])
        st.done("export", f"{FP32_FILE}: DF-GAN NetG ({config.flags()}), ONNX Runtime vs torch max |err| "
                          f"{res.max_abs_error:.2e}")
        details = {"ngf": config.ngf, "source": config.to_dict()["source"]}
        info = GeneratorInfo("dfgan", config.resolution, config.nz, config.cond_dim, details)
        return info, res.max_abs_error, {"reference": "torch (DF-GAN NetG rebuilt from the checkpoint)"}

    return build_pack(out, bank, make_fp32, options, quiet, Path(checkpoint))


def convert_onnx_model(model_path: str | os.PathLike[str], out: str | os.PathLike[str],
                       bank_embeddings: str | os.PathLike[str], spec, options: ConvertOptions | None = None,  # noqa: ANN001
                       quiet: bool = False, force: bool = False) -> dict:
    """The user's ONNX generator (IO named by `spec`, an onnx_import.IOSpec) -> pack `out`.

    Returns: the manifest. Raises: ConvertError (the graph does not fit `spec` or the bank: see
    onnx_import.import_onnx; a stage failed), DataError (bad bank file), OutputError, MissingExtraError."""
    from edge_t2i.convert.onnx_import import import_onnx

    options = options or ConvertOptions()
    _check_options(options)
    path = Path(model_path)
    if not path.is_file():
        raise ConvertError(f"ONNX model {path} not found")
    _io.claim_output_dir(out, "pack", is_pack, (model_path, bank_embeddings), force)
    preflight(options)
    bank = read_user_bank(bank_embeddings)

    def make_fp32(tmp: Path, st: Stages) -> tuple[GeneratorInfo, float, dict]:
        res = import_onnx(path, tmp / FP32_FILE, spec, bank.dim, bank.embeddings[:4], seed=options.seed)
        st.done("import", f"{FP32_FILE}: {res.resolution} px, nz {res.nz}, embedding {res.cond_dim}; output "
                          f"{res.output_min:.2f}..{res.output_max:.2f}; vs {path.name} max |err| {res.max_abs_error:.2e}"
                          + (f"; note: {res.note}" if res.note else ""))
        info = GeneratorInfo("onnx", res.resolution, res.nz, res.cond_dim, {"user_io": spec.as_dict()})
        return info, res.max_abs_error, {"reference": f"the user's ONNX model {path.name}", "opset": res.opset,
                                         "ir_version": res.ir_version, "note": res.note}

    return build_pack(out, bank, make_fp32, options, quiet, path)


def _check_options(options: ConvertOptions) -> None:
    """Prompt files are for this project's MiniLM bank. (Nor does the MiniLM encoder go into these packs,
    whatever `with_encoder` says: their vectors come from the user's encoder, so the pack knows its bank's
    prompts, and other prompts arrive as embeddings.)"""
    given = [flag for flag, value in (("--prompts", options.prompts), ("--calib-prompts", options.calib_prompts),
                                      ("--eval-prompts", options.eval_prompts)) if value]
    if given:
        raise ConvertError(f"{given[0]} is for this project's MiniLM bank; with --bank-embeddings the prompts, their "
                           "calibration half and their gate half all come from that file")


def build_pack(out: str | os.PathLike[str], bank: UserBank, make_fp32: MakeFP32, options: ConvertOptions,
               quiet: bool, source: Path) -> dict:
    """Every stage after the inputs were checked, in a temporary folder renamed to `out` when all passed."""
    st = Stages(quiet)
    with _io.atomic_dir(out) as tmp, _io.scratch_tempdir(tmp / ".scratch"):
        info, parity, export_record = make_fp32(tmp, st)
        PromptBank(bank.prompts, bank.embeddings, bank.encoder).save(tmp / BANK_FILE)
        st.done("bank", f"{len(bank.prompts)} prompts x {bank.dim} float16 ({bank.encoder}) -> {BANK_FILE}")
        calib_rows, eval_rows = bank.split(options.seed)
        models, record = model_stages(tmp, options, st, lambda: int8_stages_without_oracle(
            tmp / FP32_FILE, tmp, info.nz, info.resolution, bank.embeddings[calib_rows], bank.embeddings[eval_rows],
            options, st))
        engines = engine_stage(tmp, models, info, options, st)
        manifest = build_manifest(tmp, info, models, engines, None, record, options, {}, parity, st.times, source)
        manifest["export"].update(export_record)
        manifest["bank_source"] = {"file": str(bank.path), "sha256": _io.sha256_file(bank.path),
                                   "encoder": bank.encoder, "prompts": len(bank.prompts), "dim": bank.dim}
        _io.write_json(tmp / MANIFEST, manifest)
        write_report(tmp, manifest)
    return manifest


def calibration_batch_size(resolution: int) -> int:
    """Calibration batch size for a generator of `resolution` px: 8 at 64 px and below, then 8 * (64 / R)^2
    (at least 1), so one calibration batch's activations stay near those of a 64 px model. ONNX Runtime's
    calibrator holds every batch until it computes the ranges, so memory grows with --calib-samples:
    measured with the DF-GAN NetG at 256 px, ngf 32, about 190 MB a sample (64 samples: 11.4 GB peak)."""
    return min(8, max(1, 8 * 64 * 64 // (resolution * resolution)))


def int8_stages_without_oracle(fp32: Path, pack: Path, nz: int, resolution: int, calib_embeddings: np.ndarray,
                               eval_embeddings: np.ndarray, options: ConvertOptions, st: Stages) -> dict:
    """Calibration data -> INT8 Q/DQ -> the oracle-free gate (convert/fidelity.py) -> mixed precision ->
    the ONNX Runtime CPU variant, as mixed.int8_stages does for this project's generators.

    Returns: the manifest's {"calibration", "gate", "kept_in_float", "qdq", "cpu_variants"} records.
    Raises: ConvertError if the gate still fails with the most sensitive layers in float (unless the
    gate is off), or a stage fails."""
    data, calibration = calibrate(pack, nz, calib_embeddings, options, st, calibration_batch_size(resolution))
    config = options.fidelity_config
    embeddings, seeds = fidelity.eval_pairs(eval_embeddings, config)
    fp32_images = fidelity.render_pairs(fp32, embeddings, seeds, nz)
    int8 = pack / INT8_FILE

    def quantize(exclude: tuple[str, ...]) -> None:
        quantize_int8(fp32, data, int8, QuantConfig(method=options.calib_method, quantizer=options.quantizer,
                                                    op_types=options.quantize_ops, exclude=exclude))

    def attempt(exclude: tuple[str, ...]) -> fidelity.FidelityResult:
        quantize(exclude)
        return fidelity.judge(fp32_images, fidelity.render_pairs(int8, embeddings, seeds, nz), config)

    n = min(PROBE_IMAGES, len(seeds))

    def probe(exclude: tuple[str, ...]) -> int:  # paired images below a per-image threshold (PSNR or SSIM)
        quantize(exclude)
        return int(fidelity.below_thresholds(fp32_images[:n], fidelity.render_pairs(int8, embeddings[:n], seeds[:n],
                                                                                      nz), config).sum())

    result = attempt(())
    st.done("quantize", f"{INT8_FILE} ({options.calib_method}); gate: {result.reason}")
    attempts = [{"excluded": 0, **result.brief()}]
    excluded: list[dict] = []
    if options.gate and not result.passed:
        result, excluded = keep_sensitive_in_float(fp32, int8, data, options, attempt, probe, attempts, st,
                                                   probed="per-image PSNR/SSIM verdicts")
    elif not result.passed:
        st.done("gate", f"FAILED but --no-gate given: {result.reason}")
    def judge_variant(path: Path) -> fidelity.FidelityResult:
        return fidelity.judge(fp32_images, fidelity.render_pairs(path, embeddings, seeds, nz), options.fidelity_config)

    variants = (cpu_variant(int8, pack / INT8_CPU_FILE, judge_variant, options, st)
                if result.passed or not options.gate else {})
    np.save(pack / COMPARE_FILES[0], fp32_images[:16])
    np.save(pack / COMPARE_FILES[1], fidelity.render_pairs(int8, embeddings[:16], seeds[:16], nz))
    gate_record = {**result.as_dict(), "enforced": options.gate, "attempts": attempts, "config": asdict(config),
                   "eval_prompts": len(eval_embeddings), "calib_prompts": len(calib_embeddings)}
    return {"calibration": calibration, "gate": gate_record, "kept_in_float": excluded, "qdq": count_qdq(int8),
            "cpu_variants": variants}

