"""Calibrate, quantize, gate, and keep the most sensitive layers in float until the gate passes.

Mixed precision by measured sensitivity: the layers whose output SQNR (INT8 vs FP32, ONNX Runtime's
qdq_loss_debug) is lowest are shortlisted, each is kept in float alone and scored by how many of the
gate's per-image verdicts (convert/gate.py: the oracle's, or PSNR/SSIM thresholds) still differ from FP32's,
and they are kept in float one at a time in that order until the quality gate passes. Then the INT8 coverage
is checked against its floor and the ONNX Runtime CPU variant (uint8 activations) is gated too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edge_t2i import calib
from edge_t2i.convert.fidelity import psnr_per_image
from edge_t2i.convert.gate import COMPARE_IMAGES, PROBE_IMAGES, Gate, Verdict
from edge_t2i.convert.graph import coverage, output_layers
from edge_t2i.convert.quantize import (
    QuantConfig,
    count_qdq,
    float_by_design,
    quantizable_nodes,
    quantize_int8,
    sensitivity,
    to_u8_activations,
)
from edge_t2i.errors import ConvertError
from edge_t2i.runtime import cpu
from edge_t2i.runtime.manifest import Int8Coverage

if TYPE_CHECKING:
    from edge_t2i.convert.pack import ConvertOptions, Stages

INT8_FILE = "generator.int8.onnx"
INT8_CPU_FILE = "generator.int8.u8s8.onnx"  # the same model with uint8 activations: ONNX Runtime's x86 kernels
CALIB_FILE = "calibration.safetensors"
COMPARE_FILES = (".compare_fp32.npy", ".compare_int8.npy")  # 16 images each, for report.py's compare.png
PERCENTILES = (99.999, 99.99, 99.9)  # activation range candidates of choose_percentile
SHORTLIST = 8        # layers probed for their effect on the gate's verdicts (each: one quantization + render),
                     # and the most kept in float before the conversion gives up


@dataclass(frozen=True)
class Int8Record:
    """What the INT8 stage wrote and measured, for the manifest."""

    calibration: dict
    gate: dict
    kept_in_float: list[dict]
    qdq: dict
    cpu_variants: dict
    coverage: Int8Coverage


def int8_stages(fp32: Path, pack: Path, data: calib.CalibrationData, calibration: dict, gate: Gate,
                options: ConvertOptions, st: Stages) -> Int8Record:
    """INT8 Q/DQ model of `fp32` calibrated on `data` -> `gate` (-> mixed precision) -> coverage floor -> the
    ONNX Runtime CPU variant, inside the pack folder `pack`. Layers kept in float before any measurement: the
    image's output layers (graph.output_layers; `options.quantize_output` lifts it) and quantize.float_by_design.

    Raises: ConvertError (the gate still fails with the SHORTLIST most sensitive layers in float, unless the gate
    is off; no layer or under `options.min_int8_macs` of the MACs in INT8 without `options.allow_partial_int8`;
    a stage failed)."""
    by_rule = float_by_rule(fp32, options)
    int8 = pack / INT8_FILE
    base = QuantConfig(method=options.calib_method, quantizer=options.quantizer, op_types=options.quantize_ops,
                       exclude=tuple(r["node"] for r in by_rule), percentile=options.calib_percentile or 99.99)
    if options.calib_method == "percentile" and options.calib_percentile is None:
        base = replace(base, percentile=choose_percentile(fp32, int8, data, base, calibration, st))
    calibration["percentile"] = base.percentile if options.calib_method == "percentile" else None
    gate.reference(fp32)

    def quantize(exclude: tuple[str, ...]) -> None:
        quantize_int8(fp32, data, int8, replace(base, exclude=base.exclude + exclude))
        check_coverage(coverage(int8), options, final=False)

    def attempt(exclude: tuple[str, ...]) -> Verdict:
        quantize(exclude)
        return gate.judge(int8)

    def probe(exclude: tuple[str, ...]) -> int:
        quantize(exclude)
        return gate.probe(int8)

    result = attempt(())
    st.done("quantize", f"{INT8_FILE} ({options.calib_method}, {coverage(int8).describe()}); gate: {result.reason}")
    attempts = [{"excluded": 0, **result.brief()}]
    excluded: list[dict] = []
    if options.gate and not result.passed:
        result, excluded = keep_sensitive_in_float(fp32, int8, data, options, attempt, probe, attempts, st,
                                                   probed=gate.probed, skip={r["node"] for r in by_rule})
    elif not result.passed:
        st.done("gate", f"FAILED but --no-gate given: {result.reason}")
    cov = check_coverage(coverage(int8), options, final=True)
    variants = (cpu_variant(int8, pack / INT8_CPU_FILE, gate.judge, options, st)
                if result.passed or not options.gate else {})
    np.save(pack / COMPARE_FILES[0], gate.fp32_images[:COMPARE_IMAGES])
    np.save(pack / COMPARE_FILES[1], gate.samples(int8))
    gate_record = {**result.as_dict(), **gate.record(), "enforced": options.gate, "attempts": attempts}
    return Int8Record(calibration, gate_record, by_rule + excluded, count_qdq(int8), variants, cov)


def choose_percentile(fp32: Path, int8: Path, data: calib.CalibrationData, config: QuantConfig, calibration: dict,
                      st: Stages) -> float:
    """The activation range percentile, of PERCENTILES, whose INT8 model is nearest FP32 (highest mean PSNR, uint8
    pixels) on the calibration inputs themselves: a coarse MSE-optimal range search per model, on data the gate
    never sees. Why per model: on the trained DCGAN (gan-face-generate) 99.9 gives 39.2 dB and 99.999 36.1 dB; on the
    shipped shapes generator 99.99 gives 42.0 dB and 99.9 38.2 dB (benchmarks/calibration_methods.py, 512 images).
    Records every candidate's PSNR in `calibration["percentile_search"]`."""
    reference = _run_on(fp32, data)
    scores = {}
    for p in PERCENTILES:
        quantize_int8(fp32, data, int8, replace(config, percentile=p))
        scores[p] = round(float(psnr_per_image(reference, _run_on(int8, data)).mean()), 3)
    best = max(PERCENTILES, key=lambda p: scores[p])
    calibration["percentile_search"] = {str(p): v for p, v in scores.items()}
    st.done("range", f"percentile {best} (INT8 vs FP32 on the calibration inputs, mean PSNR: "
            + ", ".join(f"{p}: {v:.2f} dB" for p, v in scores.items()) + ")")
    return best


def _run_on(model: Path, data: calib.CalibrationData) -> np.ndarray:
    """uint8 [N, H, W, 3] images of `model` (ONNX Runtime, CPU) on every calibration batch."""
    from edge_t2i.imaging import to_uint8
    from edge_t2i.runtime.backends.onnxruntime import OnnxRuntimeBackend

    with OnnxRuntimeBackend(model) as backend:
        return np.concatenate([to_uint8(backend.infer(feeds)["image"]) for feeds in data])


def float_by_rule(fp32: Path, options: ConvertOptions) -> list[dict]:
    """The layers kept in float before anything is measured, each with why."""
    rows = [{"node": n, "why": "the text adapter's attribute classifier: kept in float by design "
             "(quantize.float_by_design)"} for n in float_by_design(fp32, options.quantize_ops)]
    if not options.quantize_output:
        rows += [{"node": n, "why": "writes the image (no weighted layer after it): 8-bit activations band flat "
                  "colour areas; kept in float by rule (--quantize-output lifts it)"} for n in output_layers(fp32)]
    return rows


def check_coverage(cov: Int8Coverage, options: ConvertOptions, final: bool) -> Int8Coverage:
    """Refuse an "INT8" model with no layer in INT8 (always), or (`final`) under `options.min_int8_macs` of its
    MACs in INT8 unless `options.allow_partial_int8`. Raises: ConvertError."""
    if cov.layers_int8 == 0:
        raise ConvertError(f"the INT8 model has no layer in INT8 ({cov.layers} weighted layers, none with Q/DQ "
                           f"inputs and weights; quantized operator types: {', '.join(options.quantize_ops)}): "
                           "nothing to gain; pass --quantize-ops with the model's layer types, or --precision fp32")
    if final and cov.macs_fraction < options.min_int8_macs and not options.allow_partial_int8:
        raise ConvertError(f"only {cov.describe()}, under the {options.min_int8_macs:.0%} an INT8 pack needs: "
                           "pass --allow-partial-int8 to keep it, or --precision fp32")
    return cov


def cpu_variant(int8: Path, out: Path, judge: Callable[[Path], Any], options: ConvertOptions, st: Stages) -> dict:
    """The ONNX Runtime CPU variant of the gated INT8 model: the same Q/DQ model with uint8 activations
    (to_u8_activations), gated on its own by `judge(model_path)` (the oracle gate, or the oracle-free one
    for other generators). U8S8 is exact only with VNNI (runtime/cpu.py), so the runtime runs it only
    there, and the pack ships it only when it passes the gate on this host (or the gate is off).
    Returns: {"int8": {"file", "requires_any", "activations", "gate"}} or {} (not shipped; `out` removed)."""
    to_u8_activations(int8, out)
    result = judge(out)
    if not result.passed and options.gate:
        out.unlink()
        st.done("u8s8", f"not shipped: {result.reason}")
        return {}
    st.done("u8s8", f"{out.name} (uint8 activations, for CPUs with VNNI; gated on {cpu.int8_isa()}): "
            f"{result.reason}")
    return {"int8": {"file": out.name, "requires_any": list(cpu.VNNI), "activations": "uint8, zero point + 128",
                     "gate": {**result.brief(), "host_int8_isa": cpu.int8_isa()}}}


def calibrate(pack: Path, nz: int, calib_embeddings: np.ndarray, options: ConvertOptions,
              st: Stages, batch_size: int = 8) -> tuple[calib.CalibrationData, dict]:
    """The calibration data (read in batches of `batch_size`), saved in the pack as CALIB_FILE, and the
    manifest's record of it."""
    data = calib.calibration_batches(calib_embeddings, options.calib_samples, nz, seed=options.seed,
                                     batch_size=batch_size)
    digest = data.save(pack / CALIB_FILE)
    calibration = {"file": CALIB_FILE, "sha256": digest,
                   "prompts": len(calib_embeddings) if calib_embeddings.shape[1] else 0,
                   "quantized_ops": list(options.quantize_ops), "samples": int(data.z.shape[0]),
                   "batch_size": data.batch_size, "method": options.calib_method,
                   "quantizer": options.quantizer, "seed": options.seed}
    source = f"{len(calib_embeddings)} prompts" if calib_embeddings.shape[1] else "noise alone (unconditional)"
    st.done("calibrate", f"{data.z.shape[0]} samples from {source}, sha256 {digest[:12]}")
    return data, calibration


def keep_sensitive_in_float(fp32: Path, int8: Path, data: calib.CalibrationData, options: ConvertOptions,
                            attempt, probe, attempts: list[dict], st: Stages,  # noqa: ANN001
                            probed: str = "oracle verdicts", skip: set[str] | None = None) -> tuple[Verdict, list[dict]]:
    """Keep layers in float one at a time, most sensitive first, until the gate passes.

    Sensitivity predicts the gate's verdict: the SHORTLIST layers with the lowest output SQNR (INT8 vs
    FP32, a cheap first cut) are each kept in float alone, and `probe(exclude)` counts the paired
    images whose gate verdict still differs from FP32's; the layer whose float
    copy leaves the fewest disagreements ranks first (SQNR breaks ties).
    `probed` names what `probe` counts in the log and the records (the gate without an oracle, convert/gate.py,
    counts images below its per-image thresholds).
    Returns: (the passing gate result, the layers kept in float with their figures and why).
    Raises: ConvertError if the gate still fails with every shortlisted layer in float."""
    candidates = [n for n in quantizable_nodes(fp32, options.quantize_ops) if n not in (skip or set())]
    sqnr = dict(sensitivity(fp32, int8, _first_batches(data, 4), candidates))
    shortlist = sorted(sqnr, key=lambda n: sqnr[n])[:SHORTLIST]
    baseline = probe(())
    flips = {name: probe((name,)) for name in shortlist}
    st.done("sensitivity", f"{len(shortlist)} lowest-SQNR layers probed one at a time on {PROBE_IMAGES} images "
            f"({baseline} {probed} differ from FP32 with all in INT8)")
    ranking = sorted(shortlist, key=lambda n: (flips[n], sqnr[n]))
    result, excluded = None, []
    for k in range(1, len(ranking) + 1):
        worst = ranking[:k]
        result = attempt(tuple(worst))
        attempts.append({"excluded": k, **result.brief()})
        excluded = [{"node": n, "sqnr_db": round(sqnr[n], 2), "verdict_flips_in_float": flips[n],
                     "verdict_flips_all_int8": baseline,
                     "why": f"in float alone, {flips[n]} of {PROBE_IMAGES} {probed} differ from FP32 "
                            f"(all INT8: {baseline}); the gate failed with fewer layers in float"} for n in worst]
        st.done("mixed", f"{k} most sensitive layer(s) kept in float: {result.reason}")
        if result.passed:
            return result, excluded
    reason = result.reason if result is not None else "no layer to keep in float"
    raise ConvertError(f"INT8 fails the quality gate even with {len(excluded)} layers in float "
                       f"({reason}); try --calib-method, more --calib-samples, --precision fp16, "
                       "or --no-gate to keep it anyway")


def _first_batches(data: calib.CalibrationData, n: int) -> calib.CalibrationData:
    k = min(len(data), n) * data.batch_size
    return calib.CalibrationData(data.z[:k], data.embedding[:k], data.batch_size)
