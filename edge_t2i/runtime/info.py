"""What a pack holds and which backends can run it on this machine (for `edge-t2i info`)."""

from __future__ import annotations

import os

from edge_t2i._io import sha256_file
from edge_t2i.errors import BackendError, MissingExtraError
from edge_t2i.runtime import cpu
from edge_t2i.runtime.manifest import read_manifest


def _loads_here(path: os.PathLike[str], intact: bool) -> dict:
    """What a real ONNX Runtime load of the model says here (not only that the file is intact)."""
    if not intact:
        return {"runs": False, "why": f"{os.path.basename(path)} is missing or fails its sha256"}
    from edge_t2i.runtime.backends.onnxruntime import OnnxRuntimeBackend

    try:
        OnnxRuntimeBackend(path, threads=1).close()
    except BackendError as exc:
        return {"runs": False, "why": str(exc)}
    return {"runs": True, "why": f"{os.path.basename(path)} loads in ONNX Runtime"}


def pack_info(pack_dir: str | os.PathLike[str]) -> dict:
    m = read_manifest(pack_dir)
    files: dict[str, dict] = {}
    for name, digest in m.files.items():
        path = m.path(name)
        exists = path.is_file()
        files[name] = {"bytes": path.stat().st_size if exists else 0, "exists": exists,
                       "ok": exists and sha256_file(path) == digest}
    from edge_t2i.runtime.backends.onnxruntime import available_providers
    from edge_t2i.runtime.backends.tensorrt import engine_fits, gpu_identity

    providers = available_providers()
    rows = []
    for e in m.engines:
        fits, why = engine_fits(e)
        rows.append({"backend": "tensorrt", "precision": e.precision, "runs": fits, "why": why})
    if not m.engines:
        try:
            version, cc = gpu_identity()
            here = f"TensorRT {version}, GPU sm{cc}"
        except (BackendError, MissingExtraError) as exc:
            here = str(exc)
        rows.append({"backend": "tensorrt", "precision": "-", "runs": False,
                     "why": f"no engine in the pack (convert --engine on the device); here: {here}"})
    for prec, name in m.models.items():
        cuda = "CUDAExecutionProvider" in providers
        rows.append({"backend": "onnxruntime-cuda", "precision": prec, "runs": cuda,
                     "why": name if cuda else "ONNX Runtime has no CUDA provider here"})
        variant = m.cpu_variants.get(prec)
        if variant is not None and any(f in cpu.cpu_flags() for f in variant.requires_any):
            name = variant.file  # what the runtime runs on this CPU (pipeline.cpu_model_for)
        rows.append({"backend": "onnxruntime", "precision": prec, **_loads_here(m.path(name), files[name]["ok"])})
    bank = 0
    if m.bank and files[m.bank]["ok"]:
        from edge_t2i.runtime.bank import PromptBank

        bank = len(PromptBank.load(m.path(m.bank)))
    return {"schema_version": m.schema_version, "resolution": m.resolution, "nz": m.nz,
            "conditioning": m.conditioning, "architecture": m.model.get("architecture", "dfgan-edge"),
            "files": files, "bank_prompts": bank, "encoder": m.encoder is not None,
            "phrase_reader": bool(m.encoder and "reader" in m.encoder),
            "int8_coverage": m.coverage.as_dict() if m.coverage else None,
            "gate": m.gate or None, "kept_in_float": m.records.get("kept_in_float", []), "backends": rows}
