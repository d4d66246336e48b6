"""Subcommands for sampling, conversion, generation and inspection (thin: parse -> call)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

from edge_t2i.errors import InputError

REGISTER: list[Callable[[argparse._SubParsersAction], None]] = []


def registered(fn: Callable[[argparse._SubParsersAction], None]) -> Callable[[argparse._SubParsersAction], None]:
    REGISTER.append(fn)
    return fn


def _prompts_and_seeds(a: argparse.Namespace) -> tuple[list[str], list[int], bool]:
    """(prompts, seeds, as_folder): --prompt with --seeds makes a grid, --prompts-file one image per line."""
    from calib import read_prompts
    from edge_t2i.cli import parse_seeds

    if bool(a.prompt) == bool(a.prompts_file):
        raise InputError("give exactly one of --prompt or --prompts-file")
    if a.prompt:
        seeds = parse_seeds(a.seeds)
        return [a.prompt] * len(seeds), seeds, False
    prompts = read_prompts(a.prompts_file, allow_duplicates=True)
    return prompts, [a.seed_offset + i for i in range(len(prompts))], True


def _add_prompt_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--prompt", help="one prompt; with --seeds, a grid of variations")
    p.add_argument("--seeds", default="0-7", help="seeds for --prompt, e.g. 0-15 or 1,5,9 (default 0-7)")
    p.add_argument("--prompts-file", help="one prompt a line: writes one PNG per line + metadata.jsonl")
    p.add_argument("--seed-offset", type=int, default=0, help="seed of line i is offset + i (default 0)")
    p.add_argument("--out", required=True, help="grid PNG (--prompt) or folder (--prompts-file)")


@registered
def add_sample(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sample", help="sample from a checkpoint with torch (the FP32 reference)")
    p.add_argument("checkpoint", help="checkpoint folder (config.json + generator.safetensors)")
    _add_prompt_args(p)
    p.set_defaults(func=cmd_sample)


def cmd_sample(a: argparse.Namespace) -> None:
    from edge_t2i import text
    from edge_t2i.checkpoint import load_generator
    from edge_t2i.sample import torch_images, write_grid, write_imagefolder

    load_generator(a.checkpoint)  # fail fast on a bad checkpoint, before encoding prompts
    prompts, seeds, as_folder = _prompts_and_seeds(a)
    unique = sorted(set(prompts))
    table = dict(zip(unique, text.encode(unique)))
    import numpy as np

    images = torch_images(a.checkpoint, np.stack([table[p] for p in prompts]), seeds)
    out = write_imagefolder(a.out, images, prompts, seeds) if as_folder else write_grid(a.out, images, 8)
    print(f"wrote {len(images)} image(s) to {out}")


@registered
def add_convert(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "convert", help="checkpoint -> ONNX -> INT8 Q/DQ -> quality gate -> (TensorRT) -> pack",
        description="Convert a checkpoint into a pack a device can run. INT8 is explicit-quantization Q/DQ ONNX "
                    "(ONNX Runtime runs it; TensorRT 10 and 11 build engines from it), checked against FP32 by "
                    "the quality gate; failing layers are kept in float until it passes.")
    p.add_argument("checkpoint", help="checkpoint folder (config.json + generator.safetensors)")
    p.add_argument("--out", required=True, help="pack folder (replaced atomically)")
    p.add_argument("--precision", default="int8", choices=("int8", "fp16", "fp32"))
    p.add_argument("--prompts", help="prompts for the pack's bank, one a line (default calib/prompts/bank.txt)")
    p.add_argument("--calib-prompts", help="calibration prompts (default calib/prompts/calibration.txt)")
    p.add_argument("--eval-prompts", help="quality-gate prompts (default calib/prompts/eval.txt)")
    p.add_argument("--calib-samples", type=int, default=256, help="calibration samples (default 256)")
    p.add_argument("--calib-method", default="percentile", choices=("entropy", "minmax", "percentile"))
    p.add_argument("--quantizer", default="ort", choices=("ort", "modelopt"))
    p.add_argument("--quantize-ops", default=None,
                   help="operator types to quantize, comma separated (default: Conv)")
    p.add_argument("--no-gate", action="store_true", help="keep the INT8 model even if the gate fails")
    p.add_argument("--min-psnr", type=float, default=30.0, help="gate: minimum PSNR vs FP32 in dB (default 30)")
    p.add_argument("--max-drop", type=float, default=1.0, help="gate: max drop of 'all correct' in points (default 1)")
    p.add_argument("--max-attribute-drop", type=float, default=3.0,
                   help="gate: max drop of each attribute's accuracy in points (default 3)")
    p.add_argument("--engine", action="store_true", help="also build a TensorRT engine (needs tensorrt + a GPU)")
    p.add_argument("--max-batch", type=int, default=16, help="largest batch of the engine's profile (default 16)")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--with-encoder", action="store_true",
                   help="add the text encoder as INT8 ONNX so the device can encode prompts not in the bank")
    p.set_defaults(func=cmd_convert)


def cmd_convert(a: argparse.Namespace) -> None:
    from convert.gate import GateConfig
    from convert.pack import ConvertOptions, convert_checkpoint, summary

    opts = ConvertOptions(
        precision=a.precision, prompts=a.prompts, calib_prompts=a.calib_prompts, eval_prompts=a.eval_prompts,
        calib_samples=a.calib_samples, calib_method=a.calib_method, quantizer=a.quantizer, gate=not a.no_gate,
        quantize_ops=tuple(x.strip() for x in a.quantize_ops.split(",")) if a.quantize_ops else ConvertOptions().quantize_ops,
        gate_config=GateConfig(min_psnr_db=a.min_psnr, max_all_drop=a.max_drop / 100.0,
                               max_attribute_drop=a.max_attribute_drop / 100.0), engine=a.engine,
        max_batch=a.max_batch, opset=a.opset, with_encoder=a.with_encoder)
    print(f"converting {a.checkpoint} -> {a.out}")
    manifest = convert_checkpoint(a.checkpoint, a.out, opts)
    print(summary(manifest, a.out))


@registered
def add_generate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="generate images from a pack (torch-free runtime)")
    p.add_argument("pack", help="pack folder (manifest.json)")
    _add_prompt_args(p)
    p.add_argument("--backend", default="auto", help="auto | tensorrt | onnxruntime-cuda | onnxruntime")
    p.add_argument("--precision", default="int8", help="int8 | fp16 | fp32 (default int8)")
    p.add_argument("--unknown", default=None, choices=("error", "nearest", "encode"),
                   help="prompts not in the bank (default: encode if the pack has an encoder, else error)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for ONNX Runtime (0: all cores)")
    p.set_defaults(func=cmd_generate)


def cmd_generate(a: argparse.Namespace) -> None:
    import numpy as np

    from edge_t2i.runtime import load
    from edge_t2i.sample import write_grid, write_imagefolder

    prompts, seeds, as_folder = _prompts_and_seeds(a)
    with load(a.pack, backend=a.backend, precision=a.precision, threads=a.threads) as gen:
        emb = gen.embeddings_for(prompts, a.unknown)
        batch = 64
        images = np.concatenate([gen.generate(emb[i:i + batch], seeds=seeds[i:i + batch])
                                 for i in range(0, len(prompts), batch)])
        out = write_imagefolder(a.out, images, prompts, seeds) if as_folder else write_grid(a.out, images, 8)
        print(f"wrote {len(images)} image(s) to {out} with {gen.choice.backend} {gen.choice.precision} "
              f"({gen.choice.reason})")


@registered
def add_info(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="what a pack holds and which backends can run it here")
    p.add_argument("pack")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_info)


def cmd_info(a: argparse.Namespace) -> None:
    from edge_t2i.runtime.info import pack_info

    info = pack_info(a.pack)
    if a.json:
        print(json.dumps(info, indent=2))
        return
    print(f"pack {Path(a.pack)}: schema {info['schema_version']}, {info['resolution']} px, nz {info['nz']}")
    for name, f in info["files"].items():
        print(f"  {name:<34} {f['bytes'] / 1e6:8.2f} MB  sha256 {'ok' if f['ok'] else 'MISMATCH'}")
    print(f"  bank: {info['bank_prompts']} prompts; encoder: {'yes' if info['encoder'] else 'no'}")
    if info.get("gate"):
        g = info["gate"]
        print(f"  gate: {'PASS' if g['passed'] else 'FAIL'}  PSNR {g['psnr_db']:.1f} dB  "
              f"all FP32 {g['fp32']['all']:.1%} / INT8 {g['int8']['all']:.1%}")
    print("  backends here:")
    for row in info["backends"]:
        print(f"    {row['backend']:<18} {row['precision']:<5} {'yes' if row['runs'] else 'no '}  {row['why']}")


@registered
def add_bench(sub: argparse._SubParsersAction) -> None:
    from edge_t2i.bench import CONFIGS

    p = sub.add_parser(
        "bench", help="FPS, frame-time percentiles and efficiency of every backend, side by side",
        description="Runs every requested configuration in one process, interleaved so machine drift hits all "
                    "alike, and skips (with the reason) those that cannot run here. Frame time = one end-to-end "
                    "Generator.generate call (bank lookup, z, inference, uint8).")
    p.add_argument("pack")
    p.add_argument("--backends", default="all", help=f"comma list of {', '.join(CONFIGS)} or 'all' (default)")
    p.add_argument("--batch", default="1,4,16", help="batch sizes (default 1,4,16)")
    p.add_argument("--seconds", type=float, default=2.0, help="timed seconds per configuration (default 2)")
    p.add_argument("--warmup", type=int, default=3, help="untimed calls per batch size after loading (default 3)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: all cores; the ort-fp32 peer keeps ONNX Runtime defaults)")
    p.add_argument("--checkpoint", help="checkpoint for the torch peers (default: the pack's source checkpoint)")
    p.add_argument("--sustained", type=float, default=0.0, metavar="S",
                   help="also run ours at batch 1 for S seconds and plot frame time over time")
    p.add_argument("--json", help="write the results as JSON (schema in edge_t2i/bench.py)")
    p.add_argument("--plot", help="write a PNG: throughput bars and frame-time distributions")
    p.set_defaults(func=cmd_bench)


def cmd_bench(a: argparse.Namespace) -> None:
    from edge_t2i.bench import CONFIGS, plot, run_bench, table, write_json

    names = list(CONFIGS) if a.backends == "all" else [n.strip() for n in a.backends.split(",") if n.strip()]
    try:
        batches = [int(b) for b in a.batch.split(",")]
    except ValueError:
        raise InputError(f"--batch takes comma-separated integers, got {a.batch!r}") from None
    result = run_bench(a.pack, names, batches, a.seconds, a.warmup, a.threads, a.checkpoint, a.sustained)
    print(table(result))
    if a.json:
        print(f"json: {write_json(result, a.json)}")
    if a.plot:
        print(f"plot: {plot(result, a.plot)}")


@registered
def add_quality(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("quality", help="oracle figures of a checkpoint: seen pairs, held-out pairs, novel phrasing")
    p.add_argument("checkpoint")
    p.add_argument("--count", type=int, default=1000, help="captions of seen pairs (default 1000)")
    p.add_argument("--json", help="also write the figures as JSON")
    p.set_defaults(func=cmd_quality)


def cmd_quality(a: argparse.Namespace) -> None:
    from edge_t2i import atomic
    from edge_t2i.quality import evaluate_generator

    r = evaluate_generator(a.checkpoint, a.count)
    for name in ("seen", "heldout_pairs", "novel_phrasing"):
        s = r[name]
        print(f"{name:<15} n={r['count'][name]:<5} color {s['color']:.1%}  shape {s['shape']:.1%}  "
              f"size {s['size']:.1%}  position {s['position']:.1%}  all {s['all']:.1%}")
    print("diversity (mean pairwise L1 over 16 seeds, 0..255):",
          ", ".join(f"{p!r}: {v}" for p, v in r["diversity_l1"].items()))
    if a.json:
        atomic.write_text(a.json, json.dumps(r, indent=2) + "\n")
