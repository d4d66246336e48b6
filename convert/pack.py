"""`edge-t2i convert`: checkpoint -> ONNX -> INT8 (Q/DQ) -> gate -> engine -> pack.

The pack is assembled in a temporary folder beside the target and renamed into
place only when every stage succeeded: an interrupted or failed convert leaves
any previous pack at that path intact.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

import calib
from convert import gate as gate_mod
from convert.export import DEFAULT_OPSET, export_onnx
from convert.quantize import QuantConfig, count_qdq, quantizable_nodes, quantize_int8, sensitivity
from edge_t2i import atomic
from edge_t2i.errors import ConvertError
from edge_t2i.runtime.bank import PromptBank
from edge_t2i.runtime.pack import MANIFEST, SCHEMA_VERSION, sha256_file

FP32_FILE = "generator.fp32.onnx"
FP16_FILE = "generator.fp16.onnx"
INT8_FILE = "generator.int8.onnx"
BANK_FILE = "bank.npz"
CALIB_FILE = "calibration.npz"
EXCLUDE_STEPS = (1, 2, 4, 8, 16)  # how many of the most sensitive layers to keep in float, in turn


@dataclass(frozen=True)
class ConvertOptions:
    precision: str = "int8"
    prompts: str | None = None          # bank prompts (default: calib/prompts/bank.txt)
    calib_prompts: str | None = None    # default: calib/prompts/calibration.txt
    eval_prompts: str | None = None     # default: calib/prompts/eval.txt
    calib_samples: int = 256
    calib_method: str = "percentile"
    quantizer: str = "ort"
    quantize_ops: tuple[str, ...] = QuantConfig().op_types
    gate: bool = True
    gate_config: gate_mod.GateConfig = field(default_factory=gate_mod.GateConfig)
    engine: bool = False
    max_batch: int = 16
    opset: int = DEFAULT_OPSET
    with_encoder: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if self.precision not in ("int8", "fp16", "fp32"):
            raise ConvertError(f"--precision must be int8, fp16 or fp32, got {self.precision!r}")
        if not 1 <= self.max_batch <= 1024:
            raise ConvertError(f"--max-batch must be in [1, 1024], got {self.max_batch}")
        QuantConfig(method=self.calib_method, quantizer=self.quantizer, op_types=self.quantize_ops)  # validates


class Stages:
    """Prints one line per finished stage (with timing), like a build log."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self.times: dict[str, float] = {}
        self._t = time.perf_counter()

    def done(self, name: str, detail: str = "") -> None:
        now = time.perf_counter()
        self.times[name] = round(now - self._t, 2)
        self._t = now
        if not self.quiet:
            print(f"  [{name:<9}] {self.times[name]:6.1f}s  {detail}", flush=True)


def tool_versions() -> dict[str, str | None]:
    import importlib.metadata as md

    out: dict[str, str | None] = {"python": platform.python_version()}
    for dist in ("torch", "onnx", "onnxruntime", "tensorrt", "edge-t2i", "nvidia-modelopt"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            out[dist] = None
    return out


def _encode_prompts(prompts: list[str]) -> np.ndarray:
    from edge_t2i import text

    return text.encode(prompts)


def convert_checkpoint(checkpoint_dir: str | os.PathLike[str], out: str | os.PathLike[str],
                       options: ConvertOptions = ConvertOptions(), quiet: bool = False) -> dict:
    """Run every stage and write the pack atomically; returns the manifest."""
    from edge_t2i.checkpoint import read_training_info
    from edge_t2i.config import ModelConfig

    checkpoint_dir = Path(checkpoint_dir)
    model_cfg = ModelConfig.load(checkpoint_dir / "config.json")
    bank_prompts = calib.read_prompts(options.prompts or calib.default_prompts("bank"))
    calib_prompts = calib.read_prompts(options.calib_prompts or calib.default_prompts("calibration"))
    eval_prompts = calib.read_prompts(options.eval_prompts or calib.default_prompts("eval"))
    overlap = {p.lower() for p in calib_prompts} & {p.lower() for p in eval_prompts}
    if overlap:
        raise ConvertError(f"calibration and evaluation prompts must be disjoint; both hold {sorted(overlap)[0]!r}")
    st = Stages(quiet)
    with atomic.atomic_dir(out) as tmp:
        exported = export_onnx(checkpoint_dir, tmp / FP32_FILE, opset=options.opset)
        st.done("export", f"{FP32_FILE}: ONNX Runtime vs torch max |err| {exported.max_abs_error:.2e}")

        from edge_t2i.text import ENCODER_NAME

        bank = PromptBank(bank_prompts, _encode_prompts(bank_prompts), ENCODER_NAME)
        bank.save(tmp / BANK_FILE)
        st.done("bank", f"{len(bank)} prompts x {bank.dim} float16 -> {BANK_FILE}")

        models = {"fp32": FP32_FILE}
        record: dict = {"calibration": None, "gate": None, "kept_in_float": [], "qdq": None}
        if options.precision == "fp16":
            models["fp16"] = _to_fp16(tmp / FP32_FILE, tmp / FP16_FILE)
            st.done("fp16", FP16_FILE)
        if options.precision == "int8":
            record = _int8_stages(tmp, model_cfg, calib_prompts, eval_prompts, options, st)
            models["int8"] = INT8_FILE
        engines = _engine_stage(tmp, models, model_cfg, options, st)
        encoder = _encoder_stage(tmp, options, st)
        manifest = _manifest(tmp, model_cfg, models, engines, encoder, record, options,
                             read_training_info(checkpoint_dir), exported.max_abs_error, st.times, checkpoint_dir)
        atomic.write_json(tmp / MANIFEST, manifest)
        write_report(tmp, manifest)
    return manifest


def _int8_stages(tmp: Path, model_cfg, calib_prompts: list[str], eval_prompts: list[str],  # noqa: ANN001
                 options: ConvertOptions, st: Stages) -> dict:
    data = calib.calibration_batches(_encode_prompts(calib_prompts), options.calib_samples, model_cfg.nz,
                                     seed=options.seed)
    digest = data.save(tmp / CALIB_FILE)
    calibration = {"file": CALIB_FILE, "sha256": digest, "prompts": len(calib_prompts),
                   "quantized_ops": list(options.quantize_ops),
                   "samples": int(data.z.shape[0]), "batch_size": data.batch_size, "method": options.calib_method,
                   "quantizer": options.quantizer, "seed": options.seed}
    st.done("calibrate", f"{data.z.shape[0]} samples from {len(calib_prompts)} prompts, sha256 {digest[:12]}")

    eval_set = gate_mod.EvalSet.build(eval_prompts, _encode_prompts(eval_prompts), options.gate_config)
    fp32_images = gate_mod.render(tmp / FP32_FILE, eval_set, model_cfg.nz)
    excluded: list[dict] = []
    qcfg = QuantConfig(method=options.calib_method, quantizer=options.quantizer, op_types=options.quantize_ops)
    quantize_int8(tmp / FP32_FILE, data, tmp / INT8_FILE, qcfg)
    result = gate_mod.judge(fp32_images, gate_mod.render(tmp / INT8_FILE, eval_set, model_cfg.nz), eval_set,
                            options.gate_config)
    st.done("quantize", f"{INT8_FILE} ({options.calib_method}); gate: {result.reason}")
    attempts = [{"excluded": 0, **_brief(result)}]
    if options.gate and not result.passed:
        ranking = sensitivity(tmp / FP32_FILE, tmp / INT8_FILE, _first_batches(data, 4),
                              quantizable_nodes(tmp / FP32_FILE, options.quantize_ops))
        for k in (k for k in EXCLUDE_STEPS if k <= len(ranking)):
            worst = ranking[:k]
            qcfg = QuantConfig(method=options.calib_method, quantizer=options.quantizer,
                               op_types=options.quantize_ops, exclude=tuple(n for n, _ in worst))
            quantize_int8(tmp / FP32_FILE, data, tmp / INT8_FILE, qcfg)
            result = gate_mod.judge(fp32_images, gate_mod.render(tmp / INT8_FILE, eval_set, model_cfg.nz),
                                    eval_set, options.gate_config)
            attempts.append({"excluded": k, **_brief(result)})
            excluded = [{"node": n, "sqnr_db": round(s, 2),
                         "why": f"among the {k} lowest-SQNR layers; the gate failed with fewer in float"}
                        for n, s in worst]
            st.done("mixed", f"{k} most sensitive layer(s) kept in float: {result.reason}")
            if result.passed:
                break
        if not result.passed:
            raise ConvertError(f"INT8 fails the quality gate even with {len(excluded)} layers in float "
                               f"({result.reason}); try --calib-method, more --calib-samples, --precision fp16, "
                               "or --no-gate to keep it anyway")
    elif not result.passed:
        st.done("gate", f"FAILED but --no-gate given: {result.reason}")
    np.save(tmp / ".compare_fp32.npy", fp32_images[:16])
    np.save(tmp / ".compare_int8.npy", gate_mod.render(tmp / INT8_FILE, _head(eval_set, 16), model_cfg.nz))
    gate_record = {**result.as_dict(), "enforced": options.gate, "attempts": attempts,
                   "config": asdict(options.gate_config), "eval_prompts": len(eval_prompts)}
    return {"calibration": calibration, "gate": gate_record, "kept_in_float": excluded,
            "qdq": count_qdq(tmp / INT8_FILE)}


def _brief(result: gate_mod.GateResult) -> dict:
    return {"psnr_db": result.psnr_db, "all_fp32": result.fp32["all"], "all_int8": result.int8["all"],
            "passed": result.passed}


def _first_batches(data: calib.CalibrationData, n: int) -> calib.CalibrationData:
    k = min(len(data), n) * data.batch_size
    return calib.CalibrationData(data.z[:k], data.embedding[:k], data.batch_size)


def _head(eval_set: gate_mod.EvalSet, n: int) -> gate_mod.EvalSet:
    return gate_mod.EvalSet(eval_set.prompts[:n], eval_set.embeddings[:n], eval_set.seeds[:n], eval_set.rows[:n])


def _to_fp16(src: Path, dst: Path) -> str:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
    with atomic.atomic_path(dst) as tmp:
        onnx.save(model, str(tmp))
    return dst.name


def _engine_stage(tmp: Path, models: dict[str, str], model_cfg, options: ConvertOptions, st: Stages) -> list[dict]:  # noqa: ANN001
    if not options.engine:
        return []
    from convert.engine import EngineConfig, build_engine
    from edge_t2i.runtime.backends.tensorrt import gpu_identity

    source = models[options.precision]
    dims = {"z": model_cfg.nz, "embedding": model_cfg.cond_dim}
    path = build_engine(tmp / source, tmp, dims, EngineConfig(options.precision, options.max_batch),
                        timing_cache=Path.home() / ".cache" / "edge-t2i" / "timing.cache")
    version, cc = gpu_identity()
    st.done("engine", f"{path.name} ({path.stat().st_size / 1e6:.1f} MB)")
    return [{"file": path.name, "precision": options.precision, "source": source, "tensorrt_version": version,
             "compute_capability": cc, "max_batch": options.max_batch}]


def _encoder_stage(tmp: Path, options: ConvertOptions, st: Stages) -> dict | None:
    if not options.with_encoder:
        return None
    from convert.encoder import export_text_encoder

    files = export_text_encoder(tmp)
    st.done("encoder", f"{files['model']} + {files['tokenizer']}")
    return files


def _manifest(tmp: Path, model_cfg, models: dict, engines: list, encoder: dict | None, record: dict,  # noqa: ANN001
              options: ConvertOptions, training: dict, parity: float, times: dict, source: Path) -> dict:
    io = {"inputs": [{"name": "z", "shape": ["batch", model_cfg.nz], "dtype": "float32"},
                     {"name": "embedding", "shape": ["batch", model_cfg.cond_dim], "dtype": "float32"}],
          "outputs": [{"name": "image", "shape": ["batch", 3, model_cfg.resolution, model_cfg.resolution],
                       "dtype": "float32"}]}
    names = [*models.values(), BANK_FILE, *(e["file"] for e in engines), *(encoder.values() if encoder else [])]
    if record.get("calibration"):
        names.append(CALIB_FILE)
    files = {n: {"sha256": sha256_file(tmp / n), "bytes": (tmp / n).stat().st_size} for n in names}
    return {
        "schema_version": SCHEMA_VERSION, "format": "edge-t2i pack",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "model": model_cfg.to_dict(), "io": io, "output_range": [-1.0, 1.0],
        "models": models, "engines": engines, "bank": BANK_FILE, "encoder": encoder,
        "files": files, "tools": tool_versions(),
        "export": {"opset": options.opset, "parity_max_abs_error": parity},
        "calibration": record.get("calibration"), "gate": record.get("gate"),
        "kept_in_float": record.get("kept_in_float", []), "qdq_nodes": record.get("qdq"),
        "training": {k: training.get(k) for k in ("steps", "images_seen", "train_seconds", "eval")},
        "source_checkpoint": str(source),
        "stage_seconds": times,
    }


def write_report(pack: Path, manifest: dict) -> None:
    """report.md and compare.png (FP32 row above INT8 row, same prompts and seeds)."""
    from edge_t2i.data.imagefolder import preview_grid, save_png

    lines = [f"# edge-t2i pack: {pack.name if not pack.name.startswith('.') else 'generator'}", "",
             f"- model: {manifest['model']['resolution']} px, ngf {manifest['model']['ngf']}, nz {manifest['model']['nz']}",
             f"- models: {', '.join(f'{k}: `{v}`' for k, v in manifest['models'].items())}",
             f"- engines: {', '.join(e['file'] for e in manifest['engines']) or 'none built (no TensorRT/GPU here)'}",
             f"- export parity (ONNX Runtime vs torch): max |err| {manifest['export']['parity_max_abs_error']:.2e}"]
    g = manifest.get("gate")
    if g:
        lines += ["", "## INT8 quality gate (INT8 vs FP32, same prompts and seeds)", "",
                  f"- result: **{'PASS' if g['passed'] else 'FAIL'}** — {g['reason']}",
                  f"- images: {g['count']} ({g['eval_prompts']} prompts x {g['config']['seeds_per_prompt']} seeds)", "",
                  "| attribute | FP32 | INT8 |", "|---|---|---|"]
        lines += [f"| {k} | {g['fp32'][k]:.1%} | {g['int8'][k]:.1%} |" for k in ("color", "shape", "size", "position", "all")]
        kept = manifest.get("kept_in_float") or []
        lines += ["", f"- layers kept in float: {', '.join(k['node'] for k in kept) or 'none'}",
                  f"- Q/DQ nodes: {manifest.get('qdq_nodes')}"]
    if (pack / ".compare_fp32.npy").exists():
        a, b = np.load(pack / ".compare_fp32.npy"), np.load(pack / ".compare_int8.npy")
        save_png(pack / "compare.png", preview_grid(np.concatenate([a, b]), columns=len(a), scale=2))
        (pack / ".compare_fp32.npy").unlink()
        (pack / ".compare_int8.npy").unlink()
        lines += ["", "![FP32 (top) vs INT8 (bottom)](compare.png)"]
    atomic.write_text(pack / "report.md", "\n".join(lines) + "\n")


def summary(manifest: dict, out: str | os.PathLike[str]) -> str:
    """The one-screen summary printed at the end of `edge-t2i convert`."""
    sizes = {n: f["bytes"] for n, f in manifest["files"].items()}
    rows = [f"pack: {out}  (schema {manifest['schema_version']})"]
    rows += [f"  {n:<32} {b / 1e6:8.2f} MB" for n, b in sizes.items()]
    g = manifest.get("gate")
    if g:
        rows.append(f"  gate: {'PASS' if g['passed'] else 'FAIL'}  PSNR {g['psnr_db']:.1f} dB  "
                    f"all-correct FP32 {g['fp32']['all']:.1%} -> INT8 {g['int8']['all']:.1%}")
        if manifest.get("kept_in_float"):
            rows.append(f"  kept in float: {', '.join(k['node'] for k in manifest['kept_in_float'])}")
    rows.append(f"  total {sum(manifest['stage_seconds'].values()):.0f}s  (see report.md, compare.png)")
    return "\n".join(rows)

