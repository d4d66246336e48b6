"""Calibrate, quantize, gate, and keep the most sensitive layers in float until the gate passes.

Mixed precision by measured sensitivity: the layers whose output SQNR (INT8 vs FP32, ONNX Runtime's
qdq_loss_debug) is lowest are shortlisted, each is kept in float alone and scored by how many of the
oracle's verdicts still differ from FP32's, and they are kept in float one at a time in that order
until the quality gate passes. Then the ONNX Runtime CPU variant (uint8 activations) is gated too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edge_t2i import calib
from edge_t2i.convert import gate as gate_mod
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
from edge_t2i.eval import oracle
from edge_t2i.runtime import cpu

if TYPE_CHECKING:
    from edge_t2i.convert.pack import ConvertOptions, Stages

INT8_FILE = "generator.int8.onnx"
INT8_CPU_FILE = "generator.int8.u8s8.onnx"  # the same model with uint8 activations: ONNX Runtime's x86 kernels
CALIB_FILE = "calibration.safetensors"
COMPARE_FILES = (".compare_fp32.npy", ".compare_int8.npy")  # 16 images each, for report.py's compare.png
SHORTLIST = 8        # layers probed for their effect on the oracle's verdicts (each: one quantization + render),
                     # and the most kept in float before the conversion gives up
PROBE_IMAGES = 512   # paired images per probe: the gate's first prompts x seeds


def int8_stages(fp32: Path, pack: Path, nz: int, calib_embeddings: np.ndarray, eval_embeddings: np.ndarray,
                eval_prompts: list[str], options: ConvertOptions, st: Stages) -> dict:
    """Calibration data -> INT8 Q/DQ model -> gate (-> mixed precision) inside the pack folder `pack`.

    Returns: the manifest's {"calibration", "gate", "kept_in_float", "qdq", "cpu_variants"} records.
    Raises: ConvertError if the gate still fails with the SHORTLIST most sensitive layers in float (unless
    the gate is off), or a stage fails."""
    data, calibration = calibrate(pack, nz, calib_embeddings, options, st)
    eval_set = gate_mod.EvalSet.build(eval_prompts, eval_embeddings, options.gate_config)
    fp32_images = gate_mod.render(fp32, eval_set, nz)
    int8 = pack / INT8_FILE

    def attempt(exclude: tuple[str, ...]) -> gate_mod.GateResult:
        qcfg = QuantConfig(method=options.calib_method, quantizer=options.quantizer,
                           op_types=options.quantize_ops, exclude=exclude)
        quantize_int8(fp32, data, int8, qcfg)
        return gate_mod.judge(fp32_images, gate_mod.render(int8, eval_set, nz), eval_set, options.gate_config)

    probe_set = _head(eval_set, PROBE_IMAGES)
    probe_fp32 = oracle.image_verdicts(fp32_images[:PROBE_IMAGES], probe_set.rows)["all"]

    def probe(exclude: tuple[str, ...]) -> int:  # images whose 'all four right' verdict differs from FP32's
        quantize_int8(fp32, data, int8, QuantConfig(method=options.calib_method, quantizer=options.quantizer,
                                                    op_types=options.quantize_ops, exclude=exclude))
        verdicts = oracle.image_verdicts(gate_mod.render(int8, probe_set, nz), probe_set.rows)["all"]
        return int((verdicts != probe_fp32).sum())

    result = attempt(())
    st.done("quantize", f"{INT8_FILE} ({options.calib_method}); gate: {result.reason}")
    attempts = [{"excluded": 0, **result.brief()}]
    excluded: list[dict] = []
    if options.gate and not result.passed:
        result, excluded = keep_sensitive_in_float(fp32, int8, data, options, attempt, probe, attempts, st)
    elif not result.passed:
        st.done("gate", f"FAILED but --no-gate given: {result.reason}")
    def judge_variant(path: Path) -> gate_mod.GateResult:
        return gate_mod.judge(fp32_images, gate_mod.render(path, eval_set, nz), eval_set, options.gate_config)

    variants = (cpu_variant(int8, pack / INT8_CPU_FILE, judge_variant, options, st)
                if result.passed or not options.gate else {})
    np.save(pack / COMPARE_FILES[0], fp32_images[:16])
    np.save(pack / COMPARE_FILES[1], gate_mod.render(int8, _head(eval_set, 16), nz))
    excluded = [{"node": n, "why": "the text adapter's attribute classifier: kept in float by design "
                 "(quantize.float_by_design)"} for n in float_by_design(fp32, options.quantize_ops)] + excluded
    gate_record = {**result.as_dict(), "enforced": options.gate, "attempts": attempts,
                   "config": asdict(options.gate_config), "eval_prompts": len(eval_prompts)}
    return {"calibration": calibration, "gate": gate_record, "kept_in_float": excluded, "qdq": count_qdq(int8),
            "cpu_variants": variants}


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
    calibration = {"file": CALIB_FILE, "sha256": digest, "prompts": len(calib_embeddings),
                   "quantized_ops": list(options.quantize_ops), "samples": int(data.z.shape[0]),
                   "batch_size": data.batch_size, "method": options.calib_method,
                   "quantizer": options.quantizer, "seed": options.seed}
    st.done("calibrate", f"{data.z.shape[0]} samples from {len(calib_embeddings)} prompts, sha256 {digest[:12]}")
    return data, calibration


def keep_sensitive_in_float(fp32: Path, int8: Path, data: calib.CalibrationData, options: ConvertOptions,
                            attempt, probe, attempts: list[dict], st: Stages,  # noqa: ANN001
                            probed: str = "oracle verdicts") -> tuple[gate_mod.GateResult, list[dict]]:
    """Keep layers in float one at a time, most sensitive first, until the gate passes.

    Sensitivity predicts the gate's verdict: the SHORTLIST layers with the lowest output SQNR (INT8 vs
    FP32, a cheap first cut) are each kept in float alone, and `probe(exclude)` counts the paired
    images whose oracle verdict ('all four right') still differs from FP32's; the layer whose float
    copy leaves the fewest disagreements ranks first (SQNR breaks ties).
    `probed` names what `probe` counts in the log and the records (the gate without an oracle, byo.py,
    counts images below its per-image thresholds).
    Returns: (the passing gate result, the layers kept in float with their figures and why).
    Raises: ConvertError if the gate still fails with every shortlisted layer in float."""
    sqnr = dict(sensitivity(fp32, int8, _first_batches(data, 4), quantizable_nodes(fp32, options.quantize_ops)))
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


def _head(eval_set: gate_mod.EvalSet, n: int) -> gate_mod.EvalSet:
    return gate_mod.EvalSet(eval_set.prompts[:n], eval_set.embeddings[:n], eval_set.seeds[:n], eval_set.rows[:n])
