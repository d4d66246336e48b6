"""`edge-t2i bench`: frames per second of every backend, side by side."""

from __future__ import annotations

import argparse

from edge_t2i.cli.common import float_in, int_in, threads_arg
from edge_t2i.errors import InputError, require


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench", help="FPS, frame-time percentiles and utilization of every backend, side by side",
        description="Runs every requested configuration in one process, interleaved so machine drift hits all "
                    "alike, and skips (with the reason) those that cannot run here. Frame time = one end-to-end "
                    "Pipeline.generate call (bank lookup, z, inference, uint8).")
    p.add_argument("pack", nargs="?", help="pack folder (manifest.json); omit with --synthetic")
    p.add_argument("--synthetic", metavar="RES", default=None,
                   help="instead of a pack: random-weight generators of the same family at these resolutions "
                        "(e.g. 64,128,256), FP32 vs INT8 images/s, size and memory against MACs per image")
    p.add_argument("--ngf", type=int_in(4, 64), default=16, help="base width of the --synthetic generators "
                   "(default 16, as shipped)")
    p.add_argument("--backends", default="all",
                   help="comma list of configurations, or 'all' (default): auto (edge_t2i.load as a program gets it), "
                        "auto-int8, auto-fp32, an engine candidate (onnxruntime-int8, openvino-fp32, tensorrt-int8, "
                        "...: edge-t2i info lists them), raw (ONNX Runtime and OpenVINO called directly on every "
                        "model file), torch, torch-compile (need --checkpoint)")
    p.add_argument("--batch", default="1,4,16", help="batch sizes (default 1,4,16)")
    p.add_argument("--seconds", type=float_in(0.01, 3600), default=2.0,
                   help="timed seconds per configuration (default 2)")
    p.add_argument("--warmup", type=int_in(0, 1000), default=3,
                   help="untimed calls per batch size after loading (default 3)")
    p.add_argument("--threads", type=threads_arg(), default=0,
                   help="CPU threads (0: all cores; the ort-fp32 peer keeps ONNX Runtime defaults)")
    p.add_argument("--checkpoint", help="checkpoint for the torch peers (a pack records no path of the machine that "
                                        "converted it): this project's checkpoint folder or a DF-GAN file")
    p.add_argument("--sustained", type=float_in(0, 86400), default=0.0, metavar="S",
                   help="also run ours at batch 1 for S seconds and plot frame time over time")
    p.add_argument("--json", help="write the results as JSON (schema in edge_t2i/bench/runner.py)")
    p.add_argument("--plot", help="write a PNG: throughput bars and frame-time distributions")
    p.set_defaults(func=cmd_bench)


def cmd_bench(a: argparse.Namespace) -> None:
    from edge_t2i.bench.plot import plot
    from edge_t2i.bench.report import table, write_json
    from edge_t2i.bench.runner import run_bench

    names = [n.strip() for n in a.backends.split(",") if n.strip()]
    batches = _int_list(a.batch, "--batch")
    if (a.pack is None) == (a.synthetic is None):
        raise InputError("give a pack folder, or --synthetic RES,... (not both)")
    from edge_t2i import _io

    for path, what in ((a.json, "--json"), (a.plot, "--plot")):  # before minutes of measuring, not after
        if path:
            _io.claim_output_file(path, inputs=(a.pack,) if a.pack else (), what=what)
    if a.plot:
        require("matplotlib", "bench", "The benchmark plot (--plot)")
    if a.synthetic is not None:
        return _synthetic(a, batches)
    if names == ["all"]:
        from edge_t2i.bench.runner import config_names
        from edge_t2i.runtime.manifest import read_manifest

        names = config_names(read_manifest(a.pack))
    result = run_bench(a.pack, names, batches, a.seconds, a.warmup, a.threads, a.checkpoint, a.sustained)
    print(table(result))
    if a.json:
        print(f"json: {write_json(result, a.json)}")
    if a.plot:
        print(f"plot: {plot(result, a.plot)}")


def _int_list(text: str, flag: str) -> list[int]:
    try:
        return [int(b) for b in text.split(",")]
    except ValueError:
        raise InputError(f"{flag} takes comma-separated integers, got {text!r}") from None


def _synthetic(a: argparse.Namespace, batches: list[int]) -> None:
    from edge_t2i.bench.report import write_json
    from edge_t2i.bench.synthetic import synthetic_bench, synthetic_plot, synthetic_table

    if not batches or min(batches) < 1 or max(batches) > 64:
        raise InputError("--batch with --synthetic takes sizes between 1 and 64")
    result = synthetic_bench(_int_list(a.synthetic, "--synthetic"), a.ngf, tuple(batches), a.seconds, a.threads,
                             show=print)
    print(synthetic_table(result))
    if a.json:
        print(f"json: {write_json(result, a.json)}")
    if a.plot:
        print(f"plot: {synthetic_plot(result, a.plot)}")
