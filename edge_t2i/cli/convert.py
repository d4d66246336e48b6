"""`edge-t2i convert`: checkpoint -> ONNX -> INT8 Q/DQ -> quality gate -> (TensorRT) -> pack."""

from __future__ import annotations

import argparse

from edge_t2i.cli.common import float_in, int_in
from edge_t2i.convert.quantize import OPS_TO_QUANTIZE
from edge_t2i.errors import InputError

MAX_CALIB_SAMPLES = 4096  # ONNX Runtime's calibrator keeps ~5 MB of activations per sample in flight (chunked)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "convert", help="checkpoint -> ONNX -> INT8 Q/DQ -> quality gate -> (TensorRT) -> pack",
        description="Convert a checkpoint into a pack a device can run. INT8 is explicit-quantization Q/DQ ONNX "
                    "(ONNX Runtime runs it; TensorRT 10 and 11 build engines from it), checked against FP32 by "
                    "the quality gate; failing layers are kept in float until it passes.")
    p.add_argument("checkpoint", help="checkpoint folder (config.json + generator.safetensors); with --arch dfgan or "
                                      "dcgan a checkpoint file (.pth, .pt, .tar); or your own generator as an ONNX "
                                      "model (.onnx)")
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
    p.add_argument("--calib-percentile", type=float_in(90, 100), default=None,
                   help="percentile calibration's range (default: chosen per model from 99.999, 99.99, 99.9 by the "
                        "PSNR of INT8 against FP32 on the calibration inputs)")
    p.add_argument("--quantizer", default="ort", choices=("ort", "modelopt"),
                   help="ONNX Runtime's quantize_static (default) or NVIDIA ModelOpt (extra `modelopt`)")
    p.add_argument("--quantize-ops", default=None,
                   help="operator types to quantize, comma separated (default: Conv,ConvTranspose,Gemm)")
    add_int8_args(p)
    p.add_argument("--no-gate", action="store_true", help="keep the INT8 model even if the gate fails")
    p.add_argument("--min-psnr", type=float_in(0, 100), default=30.0,
                   help="gate: minimum PSNR vs FP32 in dB (default 30; without an oracle: the lower 95%% bound of "
                        "the mean per-image PSNR)")
    p.add_argument("--max-drop", type=float_in(0, 100), default=None,
                   help="gate margin, in points: the upper end of the 95%% confidence interval of the paired "
                        "drop of 'all four attributes right' must be at most this (default 2)")
    p.add_argument("--max-attribute-drop", type=float_in(0, 100), default=None,
                   help="gate margin for each attribute's drop, in points (default 3)")
    p.add_argument("--gate-seeds", type=int_in(1, 256), default=None,
                   help="seeds per evaluation prompt: 128 prompts x 16 = 2,048 paired images (default 16)")
    add_byo_args(p)
    p.add_argument("--engine", action="store_true", help="also build a TensorRT engine (needs tensorrt + a GPU)")
    p.add_argument("--max-batch", type=int_in(1, 1024), default=16,
                   help="largest batch of the engine's profile (default 16)")
    p.add_argument("--opset", type=int_in(13, 23), default=17, help="ONNX opset (default 17)")
    p.add_argument("--no-encoder", dest="with_encoder", action="store_false",
                   help="leave out the text encoder (INT8 ONNX + tokenizer, ~23 MB): a minimal pack that knows only "
                        "its bank's prompts (default: included, so any sentence works)")
    p.add_argument("--with-encoder", dest="with_encoder", action="store_true", help=argparse.SUPPRESS)  # the old flag
    p.add_argument("--lexicon", default="auto", metavar="auto|descriptive|none|FILE",
                   help="descriptive words the runtime reads as the bank's words before encoding a prompt: descriptive "
                        "maps about 7,700 colour names (xkcd survey, CSS, color-name-list, WordNet) to the bank's "
                        "nearest colour word (\"crimson\" -> \"red\") and WordNet's size words to \"small\" or \"large\" where the bank "
                        "uses them (\"teeny\" -> \"small\"); FILE is your own JSON {\"phrase\": \"bank words\"}; "
                        "auto: descriptive for generators trained on shapes data, else none (default auto)")
    p.set_defaults(func=cmd_convert)


def add_int8_args(p: argparse.ArgumentParser) -> None:
    """Where INT8 goes and which gate judges it."""
    p.add_argument("--quantize-output", action="store_true",
                   help="also quantize the layers that write the image (kept in float by default: 8-bit activations "
                        "there band flat colour areas)")
    p.add_argument("--allow-partial-int8", action="store_true",
                   help="keep an INT8 model with under half of its MACs in INT8 (refused by default; a model with "
                        "none is always refused)")
    p.add_argument("--gate", dest="gate_kind", default="auto", choices=("auto", "oracle", "fidelity"),
                   help="which quality gate: the attribute oracle (shapes data only) or fidelity (PSNR, SSIM and "
                        "KID of INT8 vs FP32); auto: oracle for checkpoints trained on shapes data, else fidelity")
    p.add_argument("--no-kid", dest="kid", action="store_false",
                   help="fidelity gate: skip the distribution check (KID on Inception features of 2 x 2,048 FP32 "
                        "images, then 2,048 per INT8 candidate: about 20 images/s on 2 cores)")


def add_byo_args(p: argparse.ArgumentParser) -> None:
    """Flags for generators trained elsewhere: a DF-GAN or DCGAN checkpoint, or your own ONNX model (convert/sources.py)."""
    g = p.add_argument_group("your own generator (DF-GAN or DCGAN checkpoint, or ONNX model; docs/pack-spec.md)")
    g.add_argument("--arch", choices=("edge", "dfgan", "dcgan"), default=None,
                   help="the checkpoint's architecture: edge (this project's, default), dfgan (the public DF-GAN "
                        "NetG, text-conditioned) or dcgan (the PyTorch DCGAN tutorial's Generator, unconditional); "
                        "a .onnx file is read as your own generator")
    g.add_argument("--resolution", type=int_in(32, 512), default=None,
                   help="DF-GAN/DCGAN output side in pixels (default: from the checkpoint's shapes)")
    g.add_argument("--ngf", type=int_in(1, 4096), default=None,
                   help="DF-GAN/DCGAN width (default: from the checkpoint)")
    g.add_argument("--nz", type=int_in(1, 4096), default=None,
                   help="DF-GAN/DCGAN noise size (default: from the checkpoint)")
    g.add_argument("--cond-dim", type=int_in(1, 4096), default=None,
                   help="DF-GAN sentence vector size (default: from the checkpoint)")
    g.add_argument("--io", help="which inputs/outputs of the ONNX model are the noise, the sentence vector and the "
                                "image: z=NAME,embedding=NAME,image=NAME (z=NAME,image=NAME for an unconditional "
                                "generator), or a JSON file with those keys")
    g.add_argument("--image-range", help="the ONNX model's image value range LO,HI, e.g. 0,1 or 0,255 (default "
                                         "-1,1; a negative LO as --image-range=-2,2); rescaled to [-1, 1] in the pack")
    g.add_argument("--bank-embeddings", help="prompts and vectors from your text encoder: safetensors with "
                                             "'embeddings' float32 [N, d] and the prompts as JSON (docs/pack-spec.md)")
    g.add_argument("--gate-images", type=int_in(16, 1 << 20), default=None,
                   help="gate without an oracle: paired images, INT8 vs FP32 (default 2048; fewer for big models, "
                        "noted in report.md)")
    g.add_argument("--min-ssim", type=float_in(0, 1), default=None,
                   help="gate without an oracle: the lower 95%% bound of the mean SSIM must reach this (default 0.90)")


def source_kind(a: argparse.Namespace) -> str:
    """"edge", "dfgan", "dcgan" or "onnx", after checking the flags fit it. Raises: InputError."""
    is_onnx = a.checkpoint.lower().endswith(".onnx")
    if a.arch is not None and is_onnx:
        raise InputError(f"--arch {a.arch} takes a checkpoint; {a.checkpoint} is an ONNX model (drop --arch)")
    if a.arch is not None and a.io is not None:
        raise InputError(f"--io is only for an ONNX model, not a checkpoint of --arch {a.arch}")
    kind = "onnx" if is_onnx or a.io is not None else a.arch or "edge"
    only = {"dfgan": ("cond_dim",), "dims": ("resolution", "ngf", "nz"), "onnx": ("io", "image_range"),
            "bank": ("bank_embeddings",), "byo": ("gate_images", "min_ssim"),
            "edge": ("max_drop", "max_attribute_drop", "gate_seeds")}
    allowed = {"edge": ("edge", "byo"), "dfgan": ("dfgan", "dims", "bank", "byo"), "dcgan": ("dims", "byo"),
               "onnx": ("onnx", "bank", "byo")}[kind]
    for group, names in only.items():
        wrong = [n for n in names if getattr(a, n) is not None]
        if wrong and group not in allowed:
            flag = "--" + wrong[0].replace("_", "-")
            where = {"dfgan": "--arch dfgan", "dims": "--arch dfgan or dcgan", "onnx": "an ONNX model",
                     "bank": "--arch dfgan or an ONNX model with an embedding input",
                     "byo": "the fidelity gate", "edge": "this project's checkpoints (the oracle gate)"}[group]
            raise InputError(f"{flag} is only for {where}")
    if kind != "edge" and a.gate_kind == "oracle":
        raise InputError("--gate oracle judges this project's shapes generators only; other generators get the "
                         "fidelity gate (PSNR, SSIM, KID)")
    if kind == "dfgan" and a.bank_embeddings is None:
        raise InputError("--arch dfgan needs --bank-embeddings FILE: the prompts and vectors of the text encoder the "
                         "generator was trained with (docs/pack-spec.md)")
    return kind


def cmd_convert(a: argparse.Namespace) -> None:
    from edge_t2i.convert import sources
    from edge_t2i.convert.fidelity import FidelityConfig
    from edge_t2i.convert.gate import GateConfig
    from edge_t2i.convert.pack import ConvertOptions, convert, convert_checkpoint
    from edge_t2i.convert.report import summary

    kind = source_kind(a)
    gate = GateConfig(min_psnr_db=a.min_psnr, max_all_drop=(2.0 if a.max_drop is None else a.max_drop) / 100.0,
                      max_attribute_drop=(3.0 if a.max_attribute_drop is None else a.max_attribute_drop) / 100.0,
                      seeds_per_prompt=a.gate_seeds or 16)
    fidelity = FidelityConfig(min_psnr_db=a.min_psnr, min_ssim=0.90 if a.min_ssim is None else a.min_ssim,
                              images=a.gate_images or FidelityConfig().images, kid=a.kid)
    opts = ConvertOptions(
        precision=a.precision, prompts=a.prompts, calib_prompts=a.calib_prompts, eval_prompts=a.eval_prompts,
        calib_samples=a.calib_samples, quantizer=a.quantizer, gate=not a.no_gate, calib_percentile=a.calib_percentile,
        calib_method=a.calib_method or ("entropy" if a.quantizer == "modelopt" else "percentile"),
        quantize_ops=tuple(x.strip() for x in a.quantize_ops.split(",")) if a.quantize_ops else OPS_TO_QUANTIZE,
        gate_config=gate, fidelity_config=fidelity, gate_kind=a.gate_kind, quantize_output=a.quantize_output,
        allow_partial_int8=a.allow_partial_int8, engine=a.engine, max_batch=a.max_batch, opset=a.opset,
        with_encoder=a.with_encoder, lexicon=a.lexicon)
    if kind != "edge":
        given = [f for f, v in (("--prompts", a.prompts), ("--calib-prompts", a.calib_prompts),
                                ("--eval-prompts", a.eval_prompts)) if v]
        if given:
            raise InputError(f"{given[0]} is for this project's MiniLM bank; with --bank-embeddings the prompts, "
                             "their calibration half and their gate half all come from that file")
    from edge_t2i import _io
    from edge_t2i.runtime.manifest import is_pack

    inputs = (a.checkpoint, *([a.bank_embeddings] if a.bank_embeddings else []))
    _io.claim_output_dir(a.out, "pack", is_pack, inputs, a.force)  # refused before anything is said or read
    print(f"converting {a.checkpoint} -> {a.out}", flush=True)
    if kind == "edge":
        manifest = convert_checkpoint(a.checkpoint, a.out, opts, force=a.force)
    else:
        if kind == "dfgan":
            source = sources.dfgan_checkpoint(a.checkpoint, a.bank_embeddings, opts, a.resolution, a.ngf, a.nz,
                                              a.cond_dim)
        elif kind == "dcgan":
            source = sources.dcgan_checkpoint(a.checkpoint, opts, a.resolution, a.ngf, a.nz)
        else:
            from edge_t2i.convert.onnx_import import parse_io

            source = sources.onnx_model(a.checkpoint, parse_io(a.io, a.image_range), a.bank_embeddings, opts)
        manifest = convert(source, a.out, opts, force=a.force)
    print(summary(manifest.to_dict(), a.out))
