"""Calibration methods compared on a pack's own FP32 model and calibration data: PSNR of INT8 against FP32.

    python benchmarks/calibration_methods.py build/faces [--images 512] [--json out.json]

For each method (MinMax, Entropy, Percentile 99.999 / 99.99 / 99.9) and each placement (the pack's rule: the layers
that write the image in float; with --all-int8 also everything in INT8), the FP32 model is quantized with the pack's calibration data
(calibration.safetensors) exactly as `edge-t2i convert` does, and rendered against FP32 on `--images` seeds
from 10,000 on (the gate's seeds; the pack's bank rows cycled for conditional packs). Prints one row per
configuration: INT8 coverage, mean and 5th-percentile per-image PSNR (uint8 pixels), seconds to quantize.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from edge_t2i.calib import CalibrationData
from edge_t2i.convert.fidelity import psnr_per_image, render_pairs
from edge_t2i.convert.graph import coverage, output_layers
from edge_t2i.convert.quantize import FLOAT_BY_DESIGN, OPS_TO_QUANTIZE, QuantConfig, quantize_int8
from edge_t2i.runtime.bank import PromptBank
from edge_t2i.runtime.manifest import read_manifest


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("pack")
    p.add_argument("--images", type=int, default=512)
    p.add_argument("--json")
    p.add_argument("--all-int8", action="store_true", help="also every layer in INT8 (the output layers too)")
    a = p.parse_args()
    m = read_manifest(a.pack)
    fp32 = m.path(m.models["fp32"])
    data = CalibrationData.load(m.path("calibration.safetensors"))
    seeds = list(range(10_000, 10_000 + a.images))
    emb = None
    if m.bank:
        bank = PromptBank.load(m.path(m.bank))
        emb = bank.embeddings[np.arange(a.images) % len(bank)].astype(np.float32)
    reference = render_pairs(fp32, emb, seeds, m.nz)
    rule = tuple(output_layers(fp32))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        int8 = Path(tmp) / "int8.onnx"
        for method, percentile in (("minmax", None), ("entropy", None), ("percentile", 99.999), ("percentile", 99.99),
                                   ("percentile", 99.9)):
            for placement, exclude in (("output layers in float", rule), ("all in INT8", ())):
                if placement == "all in INT8" and not a.all_int8:
                    continue
                t0 = time.perf_counter()
                extra = {"percentile": percentile} if percentile else {}
                quantize_int8(fp32, data, int8, QuantConfig(method=method, op_types=OPS_TO_QUANTIZE, exclude=exclude,
                                                            **extra))
                seconds = time.perf_counter() - t0
                psnr = psnr_per_image(reference, render_pairs(int8, emb, seeds, m.nz))
                row = {"method": f"{method} {percentile}" if percentile else method, "placement": placement, "macs_int8": round(coverage(int8).macs_fraction, 4),
                       "psnr_mean_db": round(float(psnr.mean()), 2), "psnr_p5_db": round(float(np.percentile(psnr, 5)), 2),
                       "quantize_s": round(seconds, 1)}
                rows.append(row)
                print(json.dumps(row), flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps({"pack": Path(a.pack).name, "images": a.images, "rows": rows,
                                            "float_by_design": FLOAT_BY_DESIGN}, indent=2) + "\n")


if __name__ == "__main__":
    main()
