"""The conversion toolchain (installed as `edge_t2i.convert`, extra `convert`).

checkpoint -> export.py (ONNX, parity vs torch) -> edge_t2i.calib (calibration data) -> quantize.py
(INT8 Q/DQ) -> gate.py (INT8 vs FP32) -> mixed.py (layers kept in float until the gate passes)
-> engine.py (TensorRT) -> pack.py (bank, manifest, report: the orchestration).
"""
