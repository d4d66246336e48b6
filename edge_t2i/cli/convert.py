"""`edge-t2i convert`: checkpoint -> ONNX -> INT8 Q/DQ -> quality gate -> (TensorRT) -> pack."""

from __future__ import annotations

import argparse

from edge_t2i.cli.common import float_in, int_in
from edge_t2i.convert.quantize import OPS_TO_QUANTIZE

MAX_CALIB_SAMPLES = 4096  # ONNX Runtime's calibrator keeps ~5 MB of activations per sample in flight (chunked)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "convert", help="checkpoint -> ONNX -> INT8 Q/DQ -> quality gate -> (TensorRT) -> pack",
        description="Convert a checkpoint into a pack a device can run. INT8 is explicit-quantization Q/DQ ONNX "
                    "(ONNX Runtime runs it; TensorRT 10 and 11 build engines from it), checked against FP32 by "
                    "the quality gate; failing layers are kept in float until it passes.")
    p.add_argument("checkpoint", help="checkpoint folder (config.json + generator.safetensors)")
    p.add_argument("--out", required=True,
                   help="pack folder: new, empty, or a pack this tool wrote (replaced atomically when all stages pass)")
    p.add_argument("--force", action="store_true",
                   help="replace --out even if it is not a pack (never the checkpoint or a folder holding it)")
    p.add_argument("--precision", default="int8", choices=("int8", "fp16", "fp32"),
                   help="the model the pack is for; fp32 is always included (default int8)")
    p.add_argument("--prompts", help="prompts for the pack's bank, one a line (default calib/prompts/bank.txt)")
    p.add_argument("--calib-prompts", help="calibration prompts (default calib/prompts/calibration.txt)")
    p.add_argument("--eval-prompts", help="quality-gate prompts (default calib/prompts/eval.txt)")
    p.add_argument("--calib-samples", type=int_in(8, MAX_CALIB_SAMPLES), default=256,
                   help=f"calibration samples, 8..{MAX_CALIB_SAMPLES} (default 256)")
    p.add_argument("--calib-method", default=None, choices=("entropy", "minmax", "percentile"),
                   help="activation range calibration (default: percentile with --quantizer ort, entropy with "
                        "modelopt, which has no percentile)")
    p.add_argument("--quantizer", default="ort", choices=("ort", "modelopt"),
                   help="ONNX Runtime's quantize_static (default) or NVIDIA ModelOpt (extra `modelopt`)")
    p.add_argument("--quantize-ops", default=None,
                   help="operator types to quantize, comma separated (default: Conv,Gemm: every Conv and Gemm)")
    p.add_argument("--no-gate", action="store_true", help="keep the INT8 model even if the gate fails")
    p.add_argument("--min-psnr", type=float_in(0, 100), default=30.0, help="gate: minimum PSNR vs FP32 in dB (default 30)")
    p.add_argument("--max-drop", type=float_in(0, 100), default=2.0,
                   help="gate margin, in points: the upper end of the 95%% confidence interval of the paired "
                        "drop of 'all four attributes right' must be at most this (default 2)")
    p.add_argument("--max-attribute-drop", type=float_in(0, 100), default=3.0,
                   help="gate margin for each attribute's drop, in points (default 3)")
    p.add_argument("--gate-seeds", type=int_in(1, 256), default=16,
                   help="seeds per evaluation prompt: 128 prompts x 16 = 2,048 paired images (default 16)")
    p.add_argument("--engine", action="store_true", help="also build a TensorRT engine (needs tensorrt + a GPU)")
    p.add_argument("--max-batch", type=int_in(1, 1024), default=16,
                   help="largest batch of the engine's profile (default 16)")
    p.add_argument("--opset", type=int_in(13, 23), default=17, help="ONNX opset (default 17)")
    p.add_argument("--no-encoder", dest="with_encoder", action="store_false",
                   help="leave out the text encoder (INT8 ONNX + tokenizer, ~23 MB): a minimal pack that knows only "
                        "its bank's prompts (default: included, so any sentence works)")
    p.add_argument("--with-encoder", dest="with_encoder", action="store_true", help=argparse.SUPPRESS)  # the old flag
    p.set_defaults(func=cmd_convert)


def cmd_convert(a: argparse.Namespace) -> None:
    from edge_t2i.convert.gate import GateConfig
    from edge_t2i.convert.pack import ConvertOptions, convert_checkpoint
    from edge_t2i.convert.report import summary

    opts = ConvertOptions(
        precision=a.precision, prompts=a.prompts, calib_prompts=a.calib_prompts, eval_prompts=a.eval_prompts,
        calib_samples=a.calib_samples, calib_method=a.calib_method or ("entropy" if a.quantizer == "modelopt" else "percentile"), quantizer=a.quantizer, gate=not a.no_gate,
        quantize_ops=tuple(x.strip() for x in a.quantize_ops.split(",")) if a.quantize_ops else OPS_TO_QUANTIZE,
        gate_config=GateConfig(min_psnr_db=a.min_psnr, max_all_drop=a.max_drop / 100.0,
                               max_attribute_drop=a.max_attribute_drop / 100.0, seeds_per_prompt=a.gate_seeds),
        engine=a.engine,
        max_batch=a.max_batch, opset=a.opset, with_encoder=a.with_encoder)
    print(f"converting {a.checkpoint} -> {a.out}", flush=True)
    manifest = convert_checkpoint(a.checkpoint, a.out, opts, force=a.force)
    print(summary(manifest, a.out))
