"""The conversion toolchain (installed as `edge_t2i.convert`, extra `convert`).

sources.py (own checkpoint, DF-GAN, DCGAN, ONNX: the FP32 model, its conditioning, bank and gate; export.py and
onnx_import.py write the ONNX) -> graph.py (BatchNorm folding, output layers, INT8 coverage) -> edge_t2i.calib
(calibration data) -> quantize.py (INT8 Q/DQ) -> gate.py (where the gate decides: oracle or fidelity) ->
mixed.py (layers kept in float until the gate passes; the coverage floor) -> engine.py (TensorRT) -> pack.py
(`convert`: the one orchestration for every source; bank, manifest, report).
"""
