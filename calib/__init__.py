"""Calibration (installed as `edge_t2i.calib`): prompt sets and the calibration data built from them.

`prompts/` holds text files, one prompt a line:
    calibration.txt  prompts whose activations calibrate INT8 (disjoint from eval.txt)
    eval.txt         prompts of the quality gate (INT8 vs FP32)
    bank.txt         the default prompt bank of a pack: every attribute combination
"""

from edge_t2i.calib.calibration import PROMPTS_DIR, CalibrationData, calibration_batches, default_prompts

__all__ = ["PROMPTS_DIR", "CalibrationData", "calibration_batches", "default_prompts"]
