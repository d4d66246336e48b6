"""Optional: the text encoder (all-MiniLM-L6-v2) as ONNX + INT8 for the device.

With `convert --with-encoder` a pack can encode prompts that are not in its bank,
using ONNX Runtime and the `tokenizers` package (no torch on the device).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from edge_t2i import _io
from edge_t2i.errors import ConvertError, require
from edge_t2i.progress import third_party_quiet

ENCODER_FILE = "encoder.int8.onnx"
TOKENIZER_FILE = "tokenizer.json"
READER_FILE = "reader.onnx"
READER_PARITY = 1e-4  # max |ONNX Runtime - torch| of the reader's embedding on random windows


def export_text_encoder(out_dir: Path, opset: int = 17) -> dict[str, str]:
    """Write encoder.int8.onnx (dynamic INT8 weights) and tokenizer.json into `out_dir`."""
    torch = require("torch", "convert", "Exporting the text encoder")
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from edge_t2i.models import text_encoder as text

    st_model = text._model()
    transformer = st_model[0].auto_model.eval()

    class Hidden(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.m = transformer

        def forward(self, input_ids, attention_mask, token_type_ids):  # noqa: ANN001, ANN201
            return self.m(input_ids=input_ids, attention_mask=attention_mask,
                          token_type_ids=token_type_ids).last_hidden_state

    ids = torch.ones(2, 8, dtype=torch.long)
    with tempfile.TemporaryDirectory() as tmpdir:
        fp32 = Path(tmpdir) / "encoder.fp32.onnx"
        try:
            with third_party_quiet():
                torch.onnx.export(Hidden(), (ids, torch.ones_like(ids), torch.zeros_like(ids)), str(fp32),
                                  input_names=["input_ids", "attention_mask", "token_type_ids"],
                                  output_names=["last_hidden_state"], opset_version=opset, dynamo=False,
                                  dynamic_axes={n: {0: "batch", 1: "tokens"} for n in
                                                ("input_ids", "attention_mask", "token_type_ids", "last_hidden_state")})
        except Exception as exc:
            raise ConvertError(f"text encoder export failed: {exc}") from exc
        with _io.atomic_path(out_dir / ENCODER_FILE) as tmp, third_party_quiet():
            quantize_dynamic(str(fp32), str(tmp), weight_type=QuantType.QInt8, per_channel=True,
                             op_types_to_quantize=["MatMul", "Gemm", "Gather"])
    shutil.copyfile(text.model_dir() / "tokenizer.json", out_dir / TOKENIZER_FILE)
    return {"model": ENCODER_FILE, "tokenizer": TOKENIZER_FILE}


def export_phrase_reader(checkpoint_dir: Path, out_dir: Path, opset: int = 17) -> str | None:
    """Write reader.onnx (runtime/reader.py: windows float32 [W, dim] -> embedding float32 [1, dim]) for a
    checkpoint with a phrase reader, checked against torch on random windows; None without one.
    Raises: ConvertError (export failure or parity above READER_PARITY), CheckpointError, MissingExtraError."""
    torch = require("torch", "convert", "Exporting the phrase reader")
    import numpy as np
    import onnxruntime as ort

    from edge_t2i.models.checkpoint import load_generator

    g = load_generator(checkpoint_dir)
    if not g.config.phrase_reader:
        return None

    class Reader(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.g = g

        def forward(self, windows):  # noqa: ANN001, ANN201
            return self.g.read(windows)

    windows = torch.nn.functional.normalize(torch.randn(7, g.config.cond_dim, generator=torch.Generator().manual_seed(0)), dim=1)
    with _io.atomic_path(out_dir / READER_FILE) as tmp:
        try:
            with third_party_quiet():
                torch.onnx.export(Reader().eval(), (windows,), str(tmp), input_names=["windows"],
                                  output_names=["embedding"], dynamic_axes={"windows": {0: "windows"}},
                                  opset_version=opset, dynamo=False)
        except Exception as exc:
            raise ConvertError(f"phrase reader export failed: {exc}") from exc
        session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        for rows in (windows, windows[:1]):
            with torch.no_grad():
                ref = g.read(rows).numpy()
            err = float(np.abs(session.run(["embedding"], {"windows": rows.numpy()})[0] - ref).max())
            if not err <= READER_PARITY:
                raise ConvertError(f"exported phrase reader differs from torch by {err:.2e} (> {READER_PARITY:g})")
    return READER_FILE
