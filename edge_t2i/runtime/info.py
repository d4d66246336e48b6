"""What a pack holds and which backends can run it on this machine (for `edge-t2i info`)."""

from __future__ import annotations

import os

from edge_t2i.errors import BackendError, MissingExtraError
from edge_t2i.runtime.pack import read_manifest, sha256_file


def _tensorrt_here() -> tuple[bool, str]:
    try:
        from edge_t2i.runtime.backends.tensorrt import gpu_identity

        version, cc = gpu_identity()
        return True, f"TensorRT {version}, GPU sm{cc}"
    except (BackendError, MissingExtraError) as exc:
        return False, str(exc)


def pack_info(pack_dir: str | os.PathLike[str]) -> dict:
    m = read_manifest(pack_dir)
    files = {}
    for name, digest in m.files.items():
        path = m.path(name)
        exists = path.is_file()
        files[name] = {"bytes": path.stat().st_size if exists else 0, "ok": exists and sha256_file(path) == digest}
    from edge_t2i.runtime.backends.onnxruntime import available_providers

    providers = available_providers()
    trt_ok, trt_why = _tensorrt_here()
    rows = []
    for e in m.engines:
        fits = trt_ok and trt_why == f"TensorRT {e.tensorrt_version}, GPU sm{e.compute_capability}"
        rows.append({"backend": "tensorrt", "precision": e.precision, "runs": fits,
                     "why": f"{e.file}: built for TensorRT {e.tensorrt_version} sm{e.compute_capability}; here: {trt_why}"})
    if not m.engines:
        rows.append({"backend": "tensorrt", "precision": "-", "runs": False,
                     "why": f"no engine in the pack (convert --engine on the device); here: {trt_why}"})
    for prec, name in m.models.items():
        cuda = "CUDAExecutionProvider" in providers
        rows.append({"backend": "onnxruntime-cuda", "precision": prec, "runs": cuda,
                     "why": name if cuda else "ONNX Runtime has no CUDA provider here"})
        rows.append({"backend": "onnxruntime", "precision": prec, "runs": files[name]["ok"], "why": name})
    bank = 0
    if m.bank and files[m.bank]["ok"]:
        from edge_t2i.runtime.bank import PromptBank

        bank = len(PromptBank.load(m.path(m.bank)))
    return {"schema_version": m.raw["schema_version"], "resolution": m.resolution, "nz": m.nz,
            "files": files, "bank_prompts": bank, "encoder": m.encoder is not None,
            "gate": m.gate or None, "kept_in_float": m.raw.get("kept_in_float", []), "backends": rows}
