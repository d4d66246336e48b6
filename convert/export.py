"""Stage 1: a torch generator to ONNX (torch.onnx TorchScript exporter), checked against torch.

`export_onnx` exports this project's checkpoints; `export_module` any generator module with inputs
(z, embedding), such as the DF-GAN NetG of edge_t2i.models.dfgan, or z alone (an unconditional generator such
as the DCGAN of edge_t2i.models.dcgan: cond_dim 0).

The exported graph has inputs `z` float32 [B, nz] and (cond_dim > 0) `embedding` float32 [B, cond_dim] and
the output `image` float32 [B, 3, R, R] in [-1, 1], with a dynamic batch dimension.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_t2i import _io
from edge_t2i.errors import ConvertError, require
from edge_t2i.progress import third_party_quiet

DEFAULT_OPSET = 17
PARITY_TOLERANCE = 1e-4


@dataclass(frozen=True)
class ExportResult:
    path: Path
    max_abs_error: float   # ONNX Runtime vs torch on random inputs
    opset: int


def export_onnx(checkpoint_dir: str | os.PathLike[str], out: str | os.PathLike[str],
                opset: int = DEFAULT_OPSET, parity_batch: int = 4, seed: int = 0) -> ExportResult:
    """Export a checkpoint folder's generator to `out` (written atomically) and check it, as `export_module`.

    Returns: ExportResult (path, max |ONNX Runtime - torch|, opset).
    Raises: ConvertError (opset outside 13..23, export or checker failure, parity above
    PARITY_TOLERANCE), CheckpointError, MissingExtraError (extra `convert`)."""
    require("torch", "convert", "ONNX export")
    from edge_t2i.models.checkpoint import load_generator
    from edge_t2i.models.networks import Affine

    check_opset(opset)
    model = load_generator(checkpoint_dir)
    for module in model.modules():  # the fusion's multiply-add as one BatchNormalization (same arithmetic)
        if isinstance(module, Affine):
            module.as_batch_norm = True
    return export_module(model, out, model.config.nz, model.config.cond_dim, opset, parity_batch, seed)


def check_opset(opset: int) -> None:
    if not 13 <= opset <= 23:
        raise ConvertError(f"--opset must be between 13 and 23, got {opset}")


def export_module(model, out: str | os.PathLike[str], nz: int, cond_dim: int, opset: int = DEFAULT_OPSET,  # noqa: ANN001
                  parity_batch: int = 4, seed: int = 0, embeddings: np.ndarray | None = None) -> ExportResult:
    """Export any torch generator `model(z float32 [B, nz], embedding float32 [B, cond_dim]) -> image float32
    [B, 3, H, W]` (or `model(z)` for cond_dim 0: unconditional) to `out` (written atomically) with inputs `z`,
    `embedding` (not for cond_dim 0), output `image` and a dynamic batch, and check it: the ONNX checker (full_check), then ONNX Runtime vs torch on `parity_batch`
    inputs (seeded normal z; rows of `embeddings` if given, else random unit vectors).

    Returns: ExportResult (path, max |ONNX Runtime - torch|, opset).
    Raises: ConvertError (opset outside 13..23, export or checker failure, parity above
    PARITY_TOLERANCE), MissingExtraError (extra `convert`)."""
    torch = require("torch", "convert", "ONNX export")
    onnx = require("onnx", "convert", "ONNX export")
    check_opset(opset)
    model = model.eval()
    z = torch.randn(parity_batch, nz, generator=torch.Generator().manual_seed(seed))
    if cond_dim == 0:
        emb = None
    elif embeddings is not None:
        emb = torch.from_numpy(np.ascontiguousarray(np.resize(embeddings, (parity_batch, cond_dim)), np.float32))
    else:
        emb = torch.nn.functional.normalize(
            torch.randn(parity_batch, cond_dim, generator=torch.Generator().manual_seed(seed + 1)), dim=1)
    with _io.atomic_path(out) as tmp:
        try:
            with third_party_quiet():  # e.g. TracerWarning: Affine reads the (static) feature side as ints on purpose
                names = ["z"] if emb is None else ["z", "embedding"]
                torch.onnx.export(
                    model, (z,) if emb is None else (z, emb), str(tmp), input_names=names, output_names=["image"],
                    dynamic_axes={**{n: {0: "batch"} for n in names}, "image": {0: "batch"}},
                    opset_version=opset, do_constant_folding=True, dynamo=False,
                )
            proto = onnx.load(str(tmp))
            onnx.checker.check_model(proto, full_check=True)
        except Exception as exc:
            raise ConvertError(f"ONNX export failed: {exc}") from exc
        proto.producer_name = "edge-t2i"
        onnx.save(proto, str(tmp))
        err = parity(tmp, model, z, emb)
        if not err <= PARITY_TOLERANCE:  # NaN fails too
            raise ConvertError(f"exported ONNX differs from torch by {err:.2e} (> {PARITY_TOLERANCE:g})")
    return ExportResult(Path(out), err, opset)


def parity(onnx_path: Path, model, z, emb) -> float:  # noqa: ANN001
    """Max abs difference between ONNX Runtime and torch outputs (`emb` None: an unconditional generator)."""
    import onnxruntime as ort
    import torch

    with torch.no_grad():
        ref = (model(z) if emb is None else model(z, emb)).numpy()
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    feeds = {"z": z.numpy()} if emb is None else {"z": z.numpy(), "embedding": emb.numpy()}
    out = sess.run(["image"], feeds)[0]
    return float(np.abs(out - ref).max())
