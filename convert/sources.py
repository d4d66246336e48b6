"""Where a generator comes from: each source yields the pack's FP32 ONNX model, its conditioning, its bank
and the quality gate that fits it, and convert/pack.py runs the same stages on all of them.

| source                        | made by            | conditioning | bank                        | gate     |
|-------------------------------|--------------------|--------------|-----------------------------|----------|
| this project's checkpoint     | `own_checkpoint`   | sentence     | prompt files, MiniLM        | oracle on shapes data, else fidelity |
| DF-GAN NetG state dict        | `dfgan_checkpoint` | sentence     | --bank-embeddings (yours)   | fidelity |
| DCGAN-tutorial state dict     | `dcgan_checkpoint` | none         | none                        | fidelity |
| any ONNX generator            | `onnx_model`       | sentence / none (as --io says) | --bank-embeddings | fidelity |

Calibration and the gate never share a prompt (own checkpoints: separate prompt files, checked disjoint;
user banks: disjoint halves) nor a seed (calibration z from its own seed, the gate's from seed_offset on).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edge_t2i import calib
from edge_t2i.convert.gate import FidelityGate, Gate, OracleGate
from edge_t2i.data.prompts import normalize_prompt, read_prompts
from edge_t2i.errors import ConvertError, require
from edge_t2i.runtime.bank import PromptBank

if TYPE_CHECKING:
    from edge_t2i.convert.pack import ConvertOptions, Stages


@dataclass(frozen=True)
class Exported:
    """The FP32 model a source wrote: its configuration record, parity with its reference, export notes."""

    model: dict[str, Any]     # the manifest's "model": architecture, resolution, nz, cond_dim (0: unconditional)
    parity: float             # max |ONNX Runtime - reference| on sample inputs
    export: dict[str, Any]    # reference, opset, note


@dataclass
class Source:
    """What the conversion needs of a generator (convert/pack.py `convert`)."""

    description: str                                     # for the log
    inputs: tuple[str | os.PathLike[str], ...]           # paths `--out` may not overlap
    conditioning: str                                    # "sentence" | "none"
    export: Callable[[Path, Stages], Exported]           # writes the FP32 ONNX model to the path given
    calib_embeddings: np.ndarray                         # float32 [P, d] ([1, 0] unconditional)
    make_gate: Callable[[int], Gate]                     # nz -> the gate that fits this generator
    gate_kind: str = "fidelity"                          # what make_gate makes: "oracle" | "fidelity"
    bank: PromptBank | None = None
    bank_source: dict[str, Any] | None = None            # a user bank: its file name, sha256, encoder
    checkpoint_dir: Path | None = None                   # own checkpoints: the text encoder's phrase reader
    training: dict[str, Any] = field(default_factory=dict)


def _fidelity_gate(options: ConvertOptions, embeddings: np.ndarray | None, calib_prompts: int) -> Callable[[int], Gate]:
    return lambda nz: FidelityGate(embeddings, nz, options.fidelity_config, calib_prompts)


def oracle_applies(training: dict, requested: str) -> bool:
    """Whether the attribute oracle can judge a checkpoint trained with `training` (its config.json record):
    only on this project's shapes data. `requested`: auto | oracle | fidelity (--gate)."""
    if requested != "auto":
        return requested == "oracle"
    kind = training.get("dataset_kind")
    if kind is not None:
        return kind == "shapes"
    from edge_t2i.data.imagefolder import is_our_dataset  # older checkpoints: the data folder, if it is here

    data = (training.get("config") or {}).get("data")
    if isinstance(data, str) and data and Path(data).is_dir():
        return is_our_dataset(Path(data))
    return True  # checkpoints before the dataset was recorded were all trained on shapes data (as before)


def _training_captions(training: dict) -> tuple[list[str], list[str], list[str]] | None:
    """For a generator trained on general data: (bank, calibration, evaluation) prompts from its training folder's
    captions, when that folder is here: every distinct caption for the bank, and two disjoint seeded samples of
    up to 256 and 128 of them. Raises ConvertError when the folder is gone (the shipped prompt sets are shapes
    captions, which say nothing about such a generator)."""
    from edge_t2i.data.imagefolder import read_imagefolder

    data = (training.get("config") or {}).get("data")
    if not (isinstance(data, str) and data and (Path(data) / "metadata.jsonl").is_file()):
        raise ConvertError("this generator was trained on general data and its training folder is not here: pass "
                           "--prompts, --calib-prompts and --eval-prompts (one caption a line; the shipped sets are "
                           "shapes captions)")
    texts = sorted({normalize_prompt(t) for t in read_imagefolder(data).texts})
    order = np.random.default_rng(0).permutation(len(texts))
    n_eval = min(128, len(texts) // 3)
    evaluation = [texts[i] for i in sorted(order[:n_eval])]
    calibration = [texts[i] for i in sorted(order[n_eval:n_eval + 256])]
    if not evaluation or not calibration:
        raise ConvertError(f"{data} has {len(texts)} distinct captions: too few to calibrate and gate; pass "
                           "--calib-prompts and --eval-prompts")
    logging.getLogger("edge_t2i").info("  prompts: %d captions of %s (bank), %d for calibration, %d for the gate",
                                       len(texts), data, len(calibration), len(evaluation))
    return texts, calibration, evaluation


def own_checkpoint(checkpoint_dir: str | os.PathLike[str], options: ConvertOptions) -> Source:
    """This project's checkpoint folder (config.json + generator.safetensors) with MiniLM prompt files.
    Raises: CheckpointError, DataError (bad prompt files), ConvertError (calibration and gate prompts overlap)."""
    from edge_t2i.models.checkpoint import read_training_info
    from edge_t2i.models.config import ModelConfig
    from edge_t2i.models.text_encoder import ENCODER_NAME, encode

    checkpoint_dir = Path(checkpoint_dir)
    ModelConfig.load(checkpoint_dir / "config.json")
    training = read_training_info(checkpoint_dir)
    given = options.prompts and options.calib_prompts and options.eval_prompts
    own = _training_captions(training) if not (given or oracle_applies(training, options.gate_kind)) else None
    bank_prompts = read_prompts(options.prompts) if options.prompts else own[0] if own else read_prompts(
        calib.default_prompts("bank"))
    calib_prompts = read_prompts(options.calib_prompts) if options.calib_prompts else own[1] if own else read_prompts(
        calib.default_prompts("calibration"))
    eval_prompts = read_prompts(options.eval_prompts) if options.eval_prompts else own[2] if own else read_prompts(
        calib.default_prompts("eval"))
    overlap = {normalize_prompt(p) for p in calib_prompts} & {normalize_prompt(p) for p in eval_prompts}
    if overlap:
        raise ConvertError(f"calibration and evaluation prompts must be disjoint; both hold {sorted(overlap)[0]!r}")
    eval_embeddings = encode(eval_prompts)
    oracle = oracle_applies(training, options.gate_kind)
    if oracle:
        def make_gate(nz: int) -> Gate:
            return OracleGate(eval_prompts, eval_embeddings, nz, options.gate_config)
    else:
        make_gate = _fidelity_gate(options, eval_embeddings, len(calib_prompts))

    def export(fp32: Path, st: Stages) -> Exported:
        from edge_t2i.convert.export import export_onnx

        res = export_onnx(checkpoint_dir, fp32, opset=options.opset)
        st.done("export", f"{fp32.name}: ONNX Runtime vs torch max |err| {res.max_abs_error:.2e}")
        return Exported(ModelConfig.load(checkpoint_dir / "config.json").to_dict(), res.max_abs_error,
                        {"reference": "torch", "opset": options.opset})

    inputs = (checkpoint_dir, *(p for p in (options.prompts, options.calib_prompts, options.eval_prompts) if p))
    return Source(f"checkpoint {checkpoint_dir.name}", inputs, "sentence", export, encode(calib_prompts), make_gate,
                  "oracle" if oracle else "fidelity", PromptBank(bank_prompts, encode(bank_prompts), ENCODER_NAME),
                  None, checkpoint_dir,
                  {k: training.get(k) for k in ("steps", "images_seen", "train_seconds", "eval", "dataset_kind")})


def _user_bank(path: str | os.PathLike[str], seed: int) -> tuple[PromptBank, dict, np.ndarray, np.ndarray]:
    """A --bank-embeddings file: (bank, its record, calibration rows, evaluation rows: disjoint halves)."""
    from edge_t2i import _io
    from edge_t2i.convert.bank_input import read_user_bank

    user = read_user_bank(path)
    calib_rows, eval_rows = user.split(seed)
    record = {"file": user.path.name, "sha256": _io.sha256_file(user.path), "encoder": user.encoder,
              "prompts": len(user.prompts), "dim": user.dim}
    return (PromptBank(user.prompts, user.embeddings, user.encoder), record, user.embeddings[calib_rows],
            user.embeddings[eval_rows])


def dfgan_checkpoint(checkpoint: str | os.PathLike[str], bank_embeddings: str | os.PathLike[str],
                     options: ConvertOptions, resolution: int | None = None, ngf: int | None = None,
                     nz: int | None = None, cond_dim: int | None = None) -> Source:
    """A DF-GAN checkpoint file (edge_t2i.models.dfgan, read with weights_only=True) and the user's bank.
    Raises: CheckpointError, DataError (bank file), ConvertError (bank vectors of another size)."""
    require("torch", "convert", "Converting a DF-GAN checkpoint")
    from edge_t2i.models.dfgan import build_checked, read_state, resolve_config

    bank, record, calib_rows, eval_rows = _user_bank(bank_embeddings, options.seed)
    state = read_state(checkpoint)
    config = resolve_config(state, resolution, ngf, nz, cond_dim)
    if config.cond_dim != bank.dim:
        raise ConvertError(f"the DF-GAN generator takes {config.cond_dim}-d sentence vectors (--cond-dim) but "
                           f"--bank-embeddings holds {bank.dim}-d ones: the bank must come from the text encoder "
                           "the generator was trained with (DF-GAN: its DAMSM encoder, 256-d)")
    model = build_checked(state, config, checkpoint)

    def export(fp32: Path, st: Stages) -> Exported:
        from edge_t2i.convert.export import export_module

        res = export_module(model, fp32, config.nz, config.cond_dim, options.opset, embeddings=bank.embeddings[:4])
        st.done("export", f"{fp32.name}: DF-GAN NetG ({config.flags()}), ONNX Runtime vs torch max |err| "
                          f"{res.max_abs_error:.2e}")
        return Exported({**config.to_dict()}, res.max_abs_error,
                        {"reference": "torch (DF-GAN NetG rebuilt from the checkpoint)", "opset": options.opset})

    return Source(f"DF-GAN checkpoint {Path(checkpoint).name}", (checkpoint, bank_embeddings), "sentence", export,
                  calib_rows, _fidelity_gate(options, eval_rows, len(calib_rows)), bank=bank, bank_source=record)


def dcgan_checkpoint(checkpoint: str | os.PathLike[str], options: ConvertOptions, resolution: int | None = None,
                     ngf: int | None = None, nz: int | None = None) -> Source:
    """A DCGAN-tutorial generator state dict (edge_t2i.models.dcgan, read with weights_only=True): unconditional,
    so the pack has no bank and the gate compares images from seeds alone.
    Raises: CheckpointError."""
    require("torch", "convert", "Converting a DCGAN checkpoint")
    from edge_t2i.models.dcgan import build_checked, read_state, resolve_config

    state = read_state(checkpoint)
    config = resolve_config(state, resolution, ngf, nz)
    model = build_checked(state, config, checkpoint)

    def export(fp32: Path, st: Stages) -> Exported:
        from edge_t2i.convert.export import export_module

        res = export_module(model, fp32, config.nz, 0, options.opset)
        st.done("export", f"{fp32.name}: DCGAN Generator ({config.flags()}), ONNX Runtime vs torch max |err| "
                          f"{res.max_abs_error:.2e}")
        return Exported({**config.to_dict(), "cond_dim": 0}, res.max_abs_error,
                        {"reference": "torch (DCGAN Generator rebuilt from the checkpoint)", "opset": options.opset})

    return Source(f"DCGAN checkpoint {Path(checkpoint).name}", (checkpoint,), "none", export,
                  np.zeros((1, 0), np.float32), _fidelity_gate(options, None, 0))


def onnx_model(model_path: str | os.PathLike[str], spec, bank_embeddings: str | os.PathLike[str] | None,  # noqa: ANN001
               options: ConvertOptions) -> Source:
    """The user's ONNX generator, IO named by `spec` (onnx_import.IOSpec): with an embedding input and
    `bank_embeddings`, or unconditional (no embedding in `spec`, no bank).
    Raises: ConvertError (no such file; a bank for an unconditional model or none for a conditional one),
    DataError (bank file)."""
    from edge_t2i.convert.onnx_import import import_onnx

    path = Path(model_path)
    if not path.is_file():
        raise ConvertError(f"ONNX model {path} not found")
    if spec.conditional and bank_embeddings is None:
        raise ConvertError("an ONNX model with an embedding input needs --bank-embeddings FILE: the prompts and "
                           "vectors of the text encoder it was trained with (docs/pack-spec.md); an unconditional "
                           "model names no embedding in --io (z=NAME,image=NAME)")
    if not spec.conditional and bank_embeddings is not None:
        raise ConvertError("--io names no 'embedding' but --bank-embeddings is given: name the model's sentence "
                           "input (embedding=NAME), or drop --bank-embeddings for an unconditional generator")
    bank, record, calib_rows, eval_rows = (_user_bank(bank_embeddings, options.seed) if bank_embeddings is not None
                                           else (None, None, np.zeros((1, 0), np.float32), None))

    def export(fp32: Path, st: Stages) -> Exported:
        res = import_onnx(path, fp32, spec, bank.dim if bank else 0, bank.embeddings[:4] if bank else None,
                          seed=options.seed)
        st.done("import", f"{fp32.name}: {res.resolution} px, nz {res.nz}, embedding {res.cond_dim or 'none'}; "
                          f"output {res.output_min:.2f}..{res.output_max:.2f}; vs {path.name} max |err| "
                          f"{res.max_abs_error:.2e}" + (f"; note: {res.note}" if res.note else ""))
        model = {"architecture": "onnx", "resolution": res.resolution, "nz": res.nz, "cond_dim": res.cond_dim,
                 "user_io": spec.as_dict()}
        return Exported(model, res.max_abs_error, {"reference": f"the user's ONNX model {path.name}",
                                                   "opset": res.opset, "ir_version": res.ir_version, "note": res.note})

    inputs = (model_path, *([bank_embeddings] if bank_embeddings is not None else []))
    return Source(f"ONNX model {path.name}", inputs, "sentence" if spec.conditional else "none", export, calib_rows,
                  _fidelity_gate(options, eval_rows, len(calib_rows) if bank else 0), bank=bank, bank_source=record)
