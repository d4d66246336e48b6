"""Calibrate, quantize, gate, and keep the most sensitive layers in float until the gate passes.

Mixed precision by measured sensitivity: layers are ranked by the SQNR of their output
(INT8 vs FP32, ONNX Runtime's qdq_loss_debug), and the 1, 2, 4, ... lowest are kept in
float one at a time until the quality gate passes.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edge_t2i import calib
from edge_t2i.convert import gate as gate_mod
from edge_t2i.convert.quantize import QuantConfig, count_qdq, quantizable_nodes, quantize_int8, sensitivity
from edge_t2i.errors import ConvertError

if TYPE_CHECKING:
    from edge_t2i.convert.pack import ConvertOptions, Stages

INT8_FILE = "generator.int8.onnx"
CALIB_FILE = "calibration.safetensors"
COMPARE_FILES = (".compare_fp32.npy", ".compare_int8.npy")  # 16 images each, for report.py's compare.png
EXCLUDE_STEPS = tuple(range(1, 17))  # keep the most sensitive layers in float one at a time, up to 16


def int8_stages(fp32: Path, pack: Path, nz: int, calib_embeddings: np.ndarray, eval_embeddings: np.ndarray,
                eval_prompts: list[str], options: ConvertOptions, st: Stages) -> dict:
    """Calibration data -> INT8 Q/DQ model -> gate (-> mixed precision) inside the pack folder `pack`.

    Returns: the manifest's {"calibration", "gate", "kept_in_float", "qdq"} records.
    Raises: ConvertError if the gate still fails with EXCLUDE_STEPS[-1] layers in float (unless
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

    result = attempt(())
    st.done("quantize", f"{INT8_FILE} ({options.calib_method}); gate: {result.reason}")
    attempts = [{"excluded": 0, **_brief(result)}]
    excluded: list[dict] = []
    if options.gate and not result.passed:
        result, excluded = keep_sensitive_in_float(fp32, int8, data, options, attempt, attempts, st)
    elif not result.passed:
        st.done("gate", f"FAILED but --no-gate given: {result.reason}")
    np.save(pack / COMPARE_FILES[0], fp32_images[:16])
    np.save(pack / COMPARE_FILES[1], gate_mod.render(int8, _head(eval_set, 16), nz))
    gate_record = {**result.as_dict(), "enforced": options.gate, "attempts": attempts,
                   "config": asdict(options.gate_config), "eval_prompts": len(eval_prompts)}
    return {"calibration": calibration, "gate": gate_record, "kept_in_float": excluded, "qdq": count_qdq(int8)}


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
                            attempt, attempts: list[dict], st: Stages) -> tuple[gate_mod.GateResult, list[dict]]:  # noqa: ANN001
    """Re-quantize with the k lowest-SQNR layers excluded, k in EXCLUDE_STEPS, until the gate passes.

    Returns: (the passing gate result, the layers kept in float with their SQNR and why).
    Raises: ConvertError if no k passes."""
    ranking = sensitivity(fp32, int8, _first_batches(data, 4), quantizable_nodes(fp32, options.quantize_ops))
    result, excluded = None, []
    for k in (k for k in EXCLUDE_STEPS if k <= len(ranking)):
        worst = ranking[:k]
        result = attempt(tuple(n for n, _ in worst))
        attempts.append({"excluded": k, **_brief(result)})
        excluded = [{"node": n, "sqnr_db": round(s, 2),
                     "why": f"among the {k} lowest-SQNR layers; the gate failed with fewer in float"} for n, s in worst]
        st.done("mixed", f"{k} most sensitive layer(s) kept in float: {result.reason}")
        if result.passed:
            return result, excluded
    reason = result.reason if result is not None else "no layer to keep in float"
    raise ConvertError(f"INT8 fails the quality gate even with {len(excluded)} layers in float "
                       f"({reason}); try --calib-method, more --calib-samples, --precision fp16, "
                       "or --no-gate to keep it anyway")


def _brief(result: gate_mod.GateResult) -> dict:
    return result.brief()  # each gate's result says what an attempt records (gate.py, fidelity.py)


def _first_batches(data: calib.CalibrationData, n: int) -> calib.CalibrationData:
    k = min(len(data), n) * data.batch_size
    return calib.CalibrationData(data.z[:k], data.embedding[:k], data.batch_size)


def _head(eval_set: gate_mod.EvalSet, n: int) -> gate_mod.EvalSet:
    return gate_mod.EvalSet(eval_set.prompts[:n], eval_set.embeddings[:n], eval_set.seeds[:n], eval_set.rows[:n])
