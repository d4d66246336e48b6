"""`edge-t2i bench`: frames per second, frame-time percentiles and utilization of the runtime's choice, each
engine candidate and the raw engines, side by side in one process, interleaved (A B C A B C ...) so machine
drift hits all alike.

Configurations (`--backends`): "auto" is `edge_t2i.load(pack)` as a program gets it (the measured choice,
runtime/select.py); "auto-int8" / "auto-fp32" the same with the precision fixed; a candidate name
("onnxruntime-int8", "openvino-fp32", "tensorrt-int8", ...: `edge-t2i info` lists them) runs that engine
alone through the Pipeline; "raw" runs every generator file of the pack through ONNX Runtime and OpenVINO
called directly with their default options (the peers `auto` must keep up with); "torch" and
"torch-compile" run the source checkpoint (`--checkpoint`).

JSON contract (other tools read these keys):
    {"machine": {...}, "peak_gmacs": {engine: {"fp32": float, "int8": float}}, "macs_per_image": int,
     "rows": [{"config": str, "backend": str, "precision": "fp32"|"fp16"|"int8", "batch": int,
               "images_per_s": float, "p50_ms": float, "p90_ms": float, "p99_ms": float, "max_ms": float,
               "infer_images_per_s": float, "infer_p50_ms": float, "vs_torch": float|null, "model_bytes": int,
               "rss_delta_mb": float, "gmacs": float, "utilization": float|null,
               "machine_utilization": float|null}, ...],
     "ratios": [{"batch": int, "config": "auto", "vs": {peer config: ours / peer images/s}}],
     "verdict": [{"batch": int, "auto": float, "best_raw": float, "best_raw_config": str, "ratio": float}],
     "int8_vs_fp32": [{"batch": int, "ratio": float}],
     "skipped": [{"config": str, "reason": str}], "sustained": {...}|null}
Utilization = achieved GMAC/s over the GEMM peak of the row's own engine in the row's precision (int8, bf16,
else fp32; bench/peaks.py); machine_utilization over the best engine's peak of that precision.
Frame time = one end-to-end call: `Pipeline.generate` (bank lookup, z, inference, uint8) for Pipeline rows,
the engine's own run call for raw rows.
"""

from __future__ import annotations

import gc
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge_t2i.bench.macs import onnx_macs_per_image
from edge_t2i.bench.peaks import engine_peaks
from edge_t2i.bench.report import machine_info
from edge_t2i.bench.stats import percentiles_ms
from edge_t2i.errors import BackendError, InputError, MissingExtraError
from edge_t2i.runtime import backends
from edge_t2i.runtime.backends.base import wrap_error
from edge_t2i.runtime.backends.onnxruntime import quiet_sessions
from edge_t2i.runtime.backends.openvino import cpu_default_precision, reshaped
from edge_t2i.runtime.manifest import Manifest, read_manifest
from edge_t2i.runtime.packfile import read_model
from edge_t2i.runtime.pipeline import Pipeline, load, load_bank
from edge_t2i.runtime.select import candidates, create, io_spec

log = logging.getLogger(__name__)

SPECIAL = ("auto", "auto-int8", "auto-fp32", "raw", "torch", "torch-compile")
SLICE_S = 0.25  # one interleaving turn per configuration


@dataclass
class Config:
    name: str
    backend: str      # the JSON "backend" value
    precision: str
    make: Callable[[], Pipeline | Callable[[dict[str, np.ndarray]], object]]
    model_bytes: int | None   # the size of the model file it runs
    gen: Pipeline | None = None
    raw: Callable[[dict[str, np.ndarray]], object] | None = None  # a raw engine call (no Pipeline)
    e2e: dict[int, list[float]] = field(default_factory=dict)
    infer: dict[int, list[float]] = field(default_factory=dict)
    rss_delta_mb: float = 0.0
    batches: list[int] = field(default_factory=list)  # the requested batch sizes this backend can run


def config_names(manifest: Manifest) -> list[str]:
    """Every configuration name `bench` knows for this pack ("all")."""
    return [*SPECIAL[:4], *(c.name for c in candidates(manifest) if c.engine != "torch"), *SPECIAL[4:]]


def _rss_mb() -> float:
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _checkpoint_for(manifest: Manifest, checkpoint: str | None) -> tuple[Path | None, dict, str]:
    """(checkpoint, extra torch-backend arguments, why there is none) for the torch peers: `checkpoint`, this
    project's checkpoint folder or the DF-GAN checkpoint file a `--arch dfgan` pack came from (a pack records no
    path of the machine that converted it); none for a pack converted from an ONNX model or a DCGAN."""
    model = manifest.model
    arch = model.get("architecture")
    if arch in ("onnx", "dcgan"):
        return None, {}, f"the pack was converted from {'an ONNX model' if arch == 'onnx' else 'a DCGAN'}: the torch " \
                         "peers run this project's and DF-GAN's networks only"
    if arch == "dfgan" and checkpoint and Path(checkpoint).is_file():
        return Path(checkpoint), {"dfgan": {k: model[k] for k in ("resolution", "ngf", "nz", "cond_dim")}}, ""
    if arch != "dfgan" and checkpoint and (Path(checkpoint) / "config.json").is_file():
        return Path(checkpoint), {}, ""
    return None, {}, "no checkpoint (pass --checkpoint) for the torch reference"


def _torch_config(manifest: Manifest, name: str, threads: int,
                  source: tuple[Path | None, dict, str]) -> Config | str:
    ckpt, torch_args, why_not = source
    if ckpt is None:
        return why_not
    try:
        import torch  # noqa: F401
    except ImportError:
        return "torch is not installed (pip install 'edge-t2i[train]')"

    def make() -> Pipeline:
        b = backends.create("torch", checkpoint_dir=ckpt, compile=(name == "torch-compile"), threads=threads,
                            **torch_args)
        return Pipeline.single(manifest, b, "reference", load_bank(manifest))

    weights = ckpt if ckpt.is_file() else ckpt / "generator.safetensors"
    return Config(name, name, "fp32", make, weights.stat().st_size if weights.is_file() else None)


def _auto_config(pack: str | os.PathLike[str], manifest: Manifest, name: str, threads: int) -> Config | str:
    precision = name.split("-")[1] if "-" in name else "auto"
    if precision != "auto" and precision not in manifest.models:
        return f"the pack has no {precision} model"
    return Config(name, "auto", precision, lambda: load(pack, precision=precision, threads=threads), None)


def _candidate_config(manifest: Manifest, name: str, threads: int) -> Config | str:
    cand = next((c for c in candidates(manifest) if c.name == name), None)
    if cand is None:
        return f"the pack has no {name} (edge-t2i info lists its engines)"
    if not cand.available:
        return cand.reason

    def make() -> Pipeline:
        return Pipeline.single(manifest, create(manifest, cand, threads), cand.reason, load_bank(manifest))

    return Config(name, cand.engine, cand.precision, make, manifest.file_bytes.get(cand.file) if cand.file else None)


def raw_configs(manifest: Manifest, threads: int) -> tuple[list[Config], list[dict]]:
    """ONNX Runtime and OpenVINO called directly on every generator file, with their default options (the
    thread count aside): what a developer gets without this runtime."""
    precision_of = {f: p for p, f in manifest.models.items()}
    precision_of.update({v.file: p for p, v in manifest.cpu_variants.items()})
    configs, skipped = [], []
    for file, precision in precision_of.items():
        size = manifest.file_bytes.get(file)
        configs.append(Config(f"raw-onnxruntime:{file}", "onnxruntime", precision,
                              lambda f=file: _raw_ort(read_model(manifest, f), f, threads), size))
        try:
            import openvino  # noqa: F401
        except ImportError:
            skipped += [{"config": f"raw-openvino{kind}:{file}", "reason": "OpenVINO is not installed"}
                        for kind in ("", "-static")]
            continue
        # OpenVINO's default runs an FP32 model in bf16 on CPUs with native bf16: its rows say so (and count against
        # the bf16 peak)
        ov_precision = "bf16" if precision == "fp32" and cpu_default_precision() == "bf16" else precision
        configs.append(Config(f"raw-openvino:{file}", "openvino", ov_precision,
                              lambda f=file: _raw_ov(read_model(manifest, f), f, threads), size))
        configs.append(Config(f"raw-openvino-static:{file}", "openvino", ov_precision,
                              lambda f=file: _raw_ov(read_model(manifest, f), f, threads, static=True), size))
    return configs, skipped


def _raw_ort(model: bytes, name: str, threads: int) -> Callable[[dict[str, np.ndarray]], object]:
    import onnxruntime as ort

    so = quiet_sessions(ort.SessionOptions())  # default options but the log level: errors come back as one line
    if threads:
        so.intra_op_num_threads = threads
    try:
        session = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ONNX Runtime's own exception types
        raise wrap_error(exc, f"ONNX Runtime cannot load {name}") from exc
    return _wrapped(lambda feeds: session.run(None, feeds), f"ONNX Runtime failed running {name}")


def _wrapped(call: Callable[[dict[str, np.ndarray]], object], what: str) -> Callable[[dict[str, np.ndarray]], object]:
    """`call`, its library's exceptions as one BackendError (a crafted model fails at run time, not only at load)."""
    def run(feeds: dict[str, np.ndarray]) -> object:
        try:
            return call(feeds)
        except Exception as exc:  # ONNX Runtime's and OpenVINO's own exception types
            raise wrap_error(exc, what) from exc
    return run


def _raw_ov(model: bytes, name: str, threads: int, static: bool = False) -> Callable[[dict[str, np.ndarray]], object]:
    """OpenVINO called directly with the LATENCY hint; `static`: the model reshaped to each batch size it is called
    with and compiled for it (OpenVINO's "Dynamic Shapes" guide: static shapes run faster), as this runtime does."""
    import openvino as ov

    config: dict[str, object] = {"PERFORMANCE_HINT": "LATENCY"}
    if threads:
        config["INFERENCE_NUM_THREADS"] = threads
    requests: dict[int, object] = {}
    try:
        core = ov.Core()
        parsed = core.read_model(model)

        def request(batch: int):  # noqa: ANN202 - an openvino InferRequest
            key = batch if static else 0
            if key not in requests:
                try:
                    m = reshaped(parsed, batch) if static else parsed
                    requests[key] = core.compile_model(m, "CPU", config).create_infer_request()
                except Exception:  # a graph that fixes its batch size: as the runtime does, the dynamic model
                    if not static:
                        raise
                    requests[key] = core.compile_model(parsed, "CPU", config).create_infer_request()
            return requests[key]

        if not static:
            request(0)  # a model OpenVINO cannot compile fails here; static ones compile at their first batch
    except Exception as exc:  # OpenVINO's own RuntimeError subclasses
        raise wrap_error(exc, f"OpenVINO cannot compile {name}") from exc
    return _wrapped(lambda feeds: request(len(feeds["z"])).infer(feeds),  # type: ignore[attr-defined]
                    f"OpenVINO failed running {name}")


def build_configs(pack: str | os.PathLike[str], manifest: Manifest, names: list[str], threads: int,
                  checkpoint: str | None) -> tuple[list[Config], list[dict]]:
    """The requested configurations that can run here, and {"config", "reason"} for those that cannot."""
    configs, skipped = [], []
    ckpt = _checkpoint_for(manifest, checkpoint)
    for name in names:
        made: Config | str
        if name == "raw":
            more, why = raw_configs(manifest, threads)
            configs += more
            skipped += why
            continue
        if name.startswith("torch"):
            made = _torch_config(manifest, name, threads, ckpt)
        elif name.startswith("auto"):
            made = _auto_config(pack, manifest, name, threads)
        else:
            made = _candidate_config(manifest, name, threads)
        if isinstance(made, str):
            skipped.append({"config": name, "reason": made})
        else:
            configs.append(made)
    return configs, skipped


def _run_for(fn: Callable[[], object], seconds: float, out: list[float]) -> None:
    """Call `fn` for `seconds`, timing each call but the first: the first call of a turn pays for the engine
    before it (threads asleep, caches cold), an artifact of interleaving that a program on one engine never sees."""
    fn()
    end = time.perf_counter() + seconds
    while True:
        t0 = time.perf_counter()
        fn()
        t1 = time.perf_counter()
        out.append(t1 - t0)
        if t1 >= end:
            return


def _load(c: Config, batches: list[int], warmup: int, manifest: Manifest) -> list[dict]:
    made = c.make()
    if isinstance(made, Pipeline):
        c.gen = made
        c.batches = [b for b in batches if b <= made.max_batch]
        skipped = [{"config": c.name, "reason": f"batch {b} is over {made.backend.describe()}'s limit of "
                    f"{made.max_batch}"} for b in batches if b not in c.batches]
    else:
        c.raw, c.batches, skipped = made, list(batches), []
    for b in c.batches:  # warm-up (torch.compile compiles here, not in the timed turns)
        prompts, feeds = _inputs(c, manifest, b)
        for i in range(warmup):
            if c.gen is not None:  # a Pipeline checks every output against the manifest
                c.gen.generate(prompts, seeds=list(range(b)))
                continue
            out = c.raw(feeds)  # type: ignore[misc]
            if i == 0:  # never time a model whose output is not what its manifest declares
                first = out[0] if isinstance(out, list) else next(iter(out.values()))  # type: ignore[attr-defined]
                io_spec(manifest).check_outputs({"image": np.asarray(first)}, b, c.name)
    return skipped


def measure(configs: list[Config], manifest: Manifest, batches: list[int], seconds: float, warmup: int,
            show: Callable[[str], None] = log.info) -> list[dict]:
    """Load, warm up, then interleave every (config, batch) in SLICE_S turns for `seconds` each.

    Returns: the (config, batch) pairs skipped because the batch is over the backend's limit."""
    skipped = []
    for c in configs:
        before = _rss_mb()
        t0 = time.perf_counter()
        skipped += _load(c, batches, warmup, manifest)
        c.rss_delta_mb = _rss_mb() - before
        how = "; ".join(f"batches <= {b}: {ch.backend} {ch.precision}" if len(c.gen.routes) > 1 else
                        f"{ch.backend} {ch.precision}: {ch.reason}" for b, ch in c.gen.choices) if c.gen else "raw"
        show(f"  loaded {c.name:<14} in {time.perf_counter() - t0:5.1f}s ({how})")
    turns = max(1, int(round(seconds / SLICE_S)))
    for turn in range(turns):
        for c in configs:
            for b in c.batches:
                prompts, feeds = _inputs(c, manifest, b)
                if c.gen is not None:  # end to end for a whole turn, as long as a raw engine's; then the engine alone
                    seeds = list(range(turn * b, turn * b + b))
                    _run_for(lambda g=c.gen, p=prompts, s=seeds: g.generate(p, seeds=s), SLICE_S,
                             c.e2e.setdefault(b, []))
                    _run_for(lambda g=c.gen, f=feeds: g.infer(f), SLICE_S * 0.4, c.infer.setdefault(b, []))
                else:
                    _run_for(lambda r=c.raw, f=feeds: r(f), SLICE_S, c.e2e.setdefault(b, []))  # type: ignore[misc]
                    c.infer[b] = c.e2e[b]
        gc.collect()
    return skipped


def _inputs(c: Config, manifest: Manifest, batch: int) -> tuple[list[str] | None, dict[str, np.ndarray]]:
    """(the prompts `generate` takes, None for an unconditional pack; the raw engine feeds)."""
    rng = np.random.default_rng(batch)
    feeds = {"z": rng.standard_normal((batch, manifest.nz), dtype=np.float32)}
    if not manifest.conditional:
        return None, feeds
    if c.gen is None or c.gen.bank is None:
        emb = rng.standard_normal((batch, manifest.embedding_dim)).astype(np.float32)
        return None, {**feeds, "embedding": emb / np.linalg.norm(emb, axis=1, keepdims=True)}
    prompts = [c.gen.bank.texts[i % len(c.gen.bank)] for i in range(batch)]
    return prompts, {**feeds, "embedding": c.gen.embeddings_for(prompts)}


def rows_from(configs: list[Config], macs: int | None, peaks: dict[str, dict[str, float]]) -> list[dict]:
    """One row per measured (config, batch); `macs` None (no `onnx` to count them): no GMAC/s, utilization.
    `peaks`: {engine: {"fp32", "int8"}} GEMM peaks in GMAC/s (bench/peaks.py)."""
    rows = []
    for c in configs:
        engine, precision = c.backend, c.precision
        for b in c.batches:
            lat, inf = c.e2e[b], c.infer[b]
            ips = b * len(lat) / sum(lat)
            if c.gen is not None:  # the engine that ran this batch size
                route = next(r for r in c.gen.routes if b <= r.max_batch)
                engine, precision = route.backend.name, route.backend.precision
            row = {"config": c.name, "backend": engine, "precision": precision, "batch": b,
                   "images_per_s": round(ips, 2), **{k: round(v, 3) for k, v in percentiles_ms(lat).items()},
                   "infer_images_per_s": round(b * len(inf) / sum(inf), 2),
                   "infer_p50_ms": round(percentiles_ms(inf)["p50_ms"], 3), "calls": len(lat),
                   "model_bytes": c.model_bytes,
                   "rss_delta_mb": round(c.rss_delta_mb, 1),
                   "gmacs": round(macs * ips / 1e9, 2) if macs else None}
            rows.append(row)
    utilization(rows, peaks)
    for row in rows:
        ref = next((r for r in rows if r["config"] == "torch" and r["batch"] == row["batch"]), None)
        row["vs_torch"] = round(row["images_per_s"] / ref["images_per_s"], 2) if ref else None
    return rows


def utilization(rows: list[dict], peaks: dict[str, dict[str, float]]) -> None:
    """Set each CPU row's "utilization" (achieved GMAC/s over the GEMM peak of its own engine in its precision:
    INT8 rows the INT8 peak, others FP32; engines without a probe of their own, torch, the best engine's) and
    "machine_utilization" (over the best engine's peak of that precision). A peak is a best case, so a row that
    beats it raises it (recorded in peaks[engine]["raised_by"]). Rows of GPUs and NPUs: None."""
    def key(row: dict) -> str:
        return row["precision"] if row["precision"] in ("int8", "bf16") else "fp32"

    def on_cpu(row: dict) -> bool:
        return row["backend"] not in ("tensorrt", "onnxruntime-cuda", "openvino-gpu", "openvino-npu")

    for row in rows:
        own = peaks.get(str(row["backend"]))
        if own and on_cpu(row) and row["gmacs"] and key(row) in own and row["gmacs"] > own[key(row)]:
            own[key(row)] = row["gmacs"]
            own.setdefault("raised_by", []).append(f"{row['config']} batch {row['batch']}")  # type: ignore[attr-defined]
    for row in rows:
        best = max((p.get(key(row), 0.0) for p in peaks.values()), default=0.0) or \
            max((p.get("fp32", 0.0) for p in peaks.values()), default=0.0)  # bf16 where only OpenVINO has a probe
        if on_cpu(row) and row["gmacs"] and best and row["gmacs"] > best:  # torch beat every probe
            best = row["gmacs"]
        own_peaks = peaks.get(str(row["backend"])) or {}
        peak = own_peaks.get(key(row)) or own_peaks.get("fp32") or best
        ok = on_cpu(row) and row["gmacs"]
        row["utilization"] = round(row["gmacs"] / peak, 4) if ok and peak else None
        row["machine_utilization"] = round(row["gmacs"] / best, 4) if ok and best else None


def ratios(rows: list[dict], ours: str = "auto") -> list[dict]:
    """ours' images/s over each other row's, per batch size: [{"batch", "config", "vs": {config: ratio}}]."""
    out = []
    for row in (r for r in rows if r["config"] == ours):
        vs = {r["config"]: round(row["images_per_s"] / r["images_per_s"], 3) for r in rows
              if r["config"] != ours and r["batch"] == row["batch"] and r["images_per_s"] > 0}
        out.append({"batch": row["batch"], "config": ours, "vs": vs})
    return out


def verdict(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """(auto against the fastest raw engine per batch size, auto-int8 over auto-fp32 per batch size). The raw
    engines with their default options ("ratio") and, apart, OpenVINO called with static shapes ("ratio_static")."""
    against_raw, int8 = [], []
    for row in (r for r in rows if r["config"] == "auto"):
        raw = [r for r in rows if r["config"].startswith("raw-") and r["batch"] == row["batch"]]
        default = [r for r in raw if not r["config"].startswith("raw-openvino-static:")]
        if default:
            best = max(default, key=lambda r: r["images_per_s"])
            entry = {"batch": row["batch"], "auto": row["images_per_s"], "best_raw": best["images_per_s"],
                     "best_raw_config": best["config"], "ratio": round(row["images_per_s"] / best["images_per_s"], 3)}
            static = [r for r in raw if r not in default]
            if static:
                top = max(static, key=lambda r: r["images_per_s"])
                entry.update({"best_static": top["images_per_s"], "best_static_config": top["config"],
                              "ratio_static": round(row["images_per_s"] / top["images_per_s"], 3)})
            against_raw.append(entry)
    for row in (r for r in rows if r["config"] == "auto-int8"):
        fp32 = next((r for r in rows if r["config"] == "auto-fp32" and r["batch"] == row["batch"]), None)
        if fp32:
            int8.append({"batch": row["batch"], "ratio": round(row["images_per_s"] / fp32["images_per_s"], 3)})
    return against_raw, int8


def sustained(gen: Pipeline, seconds: float) -> dict:
    """Frame time over a long run at batch 1: stalls, GC spikes, throttling."""
    prompts = [gen.bank.texts[0]] if gen.conditional and gen.bank is not None else None
    t_start = time.perf_counter()
    stamps, lat = [], []
    i = 0
    while time.perf_counter() - t_start < seconds:
        t0 = time.perf_counter()
        gen.generate(prompts, seeds=[i])
        t1 = time.perf_counter()
        stamps.append(t0 - t_start)
        lat.append(t1 - t0)
        i += 1
    pct = percentiles_ms(lat)
    return {"config": gen.choice.backend + "-" + gen.choice.precision, "seconds": seconds, "frames": len(lat),
            "t_s": [round(t, 4) for t in stamps], "frame_ms": [round(x * 1e3, 3) for x in lat],
            **{k: round(v, 3) for k, v in pct.items()}, "p99_over_p50": round(pct["p99_ms"] / pct["p50_ms"], 3)}


def _peaks_and_macs(manifest: Manifest, threads: int, show: Callable[[str], None]) -> tuple[dict, int | None]:
    show("measuring each engine's FP32 and INT8 GEMM peaks ...")
    try:
        peaks = engine_peaks(threads)
    except MissingExtraError as exc:
        show(f"  no GEMM peaks, so no utilization: {exc}")
        peaks = {}
    except Exception as exc:  # noqa: BLE001 - an engine's probe failed: measure on without utilization
        show(f"  no GEMM peaks, so no utilization: the probe failed ({str(exc).splitlines()[0][:200]})")
        peaks = {}
    try:
        macs: int | None = onnx_macs_per_image(read_model(manifest, manifest.models["fp32"]))
    except Exception as exc:  # noqa: BLE001 - no extra, or a model onnx's shape inference cannot follow
        show(f"  no MAC count, so no GMAC/s or utilization: {str(exc).splitlines()[0][:200] if str(exc) else exc!r}")
        macs = None
    return peaks, macs


def run_bench(pack: str | os.PathLike[str], names: list[str], batches: list[int], seconds: float = 2.0,
              warmup: int = 3, threads: int = 0, checkpoint: str | None = None, sustained_s: float = 0.0,
              show: Callable[[str], None] = log.info) -> dict:
    manifest = read_manifest(pack)
    known = config_names(manifest)
    for n in names:
        if n not in known and n not in SPECIAL:
            from edge_t2i.errors import did_you_mean

            raise InputError(did_you_mean(n, known, "benchmark configuration"))
    if not batches or min(batches) < 1 or max(batches) > 256:
        raise InputError("--batch takes sizes between 1 and 256, e.g. 1,4,16")
    configs, skipped = build_configs(pack, manifest, names, threads, checkpoint)
    for s in skipped:
        show(f"  skip {s['config']:<14} {s['reason']}")
    if not configs:
        raise BackendError("no requested configuration can run here")
    try:
        skipped += measure(configs, manifest, batches, seconds, warmup, show)
        # after: a pack whose engines fail their checks is refused in a second, not after the peaks' ten
        peaks, macs = _peaks_and_macs(manifest, threads, show)
        rows = rows_from(configs, macs, peaks)
        against_raw, int8 = verdict(rows)
        result = {"machine": machine_info(), "pack": str(pack), "peak_gmacs": peaks, "macs_per_image": macs,
                  "seconds_per_config": seconds, "threads": threads or os.cpu_count(), "rows": rows,
                  "ratios": ratios(rows), "verdict": against_raw, "int8_vs_fp32": int8, "skipped": skipped,
                  "sustained": None}
        if sustained_s > 0:
            ours = next((c for c in configs if c.gen is not None and c.name == "auto"),
                        next((c for c in configs if c.gen is not None), None))
            if ours is None:
                raise InputError("--sustained needs a Pipeline configuration (auto, a candidate or torch)")
            result["sustained"] = sustained(ours.gen, sustained_s)  # type: ignore[arg-type]
    finally:
        for c in configs:
            if c.gen is not None:
                c.gen.close()
    return result
