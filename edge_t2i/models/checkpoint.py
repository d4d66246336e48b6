"""Checkpoints: safetensors weights + config.json, never pickle.

A checkpoint folder (what `convert` and `sample` read) holds the EMA generator:
    config.json             {"model": ModelConfig, "training": {...}}
    generator.safetensors
A run's `state/` folder adds what exact resumption needs (G, D, optimizers, step).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from edge_t2i import _io
from edge_t2i.errors import CheckpointError, require
from edge_t2i.models.config import ModelConfig

GENERATOR_FILE = "generator.safetensors"
CONFIG_FILE = "config.json"


def save_tensors(path: Path, tensors: dict, metadata: dict[str, str] | None = None) -> None:
    st = require("safetensors.torch", "train", "Saving a checkpoint")
    with _io.atomic_path(path) as tmp:
        st.save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp), metadata=metadata)


def load_tensors(path: Path) -> dict:
    st = require("safetensors.torch", "train", "Loading a checkpoint")
    if not path.is_file():
        raise CheckpointError(f"{path} not found")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes): the checkpoint was not written completely")
    try:
        return st.load_file(str(path), device="cpu")
    except Exception as exc:  # safetensors raises its own SafetensorError / OSError subclasses
        raise CheckpointError(f"{path} is not a valid safetensors file ({exc})") from exc


def load_legacy_torch(path: Path) -> dict:
    """A .pt/.pth state dict, only through torch.load(weights_only=True): no code runs."""
    torch = require("torch", "train", "Loading a .pt checkpoint")
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        # torch's message runs over several lines; the CLI prints one: keep the unpickler's reason
        reason = " ".join(str(exc).split("WeightsUnpickler error:")[-1].split("Check the documentation")[0].split())
        raise CheckpointError(
            f"refusing {path}: it is not a plain weights file that loads with weights_only=True "
            f"(it may contain code; convert it to safetensors in a trusted environment) ({reason[:300]})") from exc
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path} does not hold a state dict")
    return obj


def save_generator(folder: str | os.PathLike[str], generator, training: dict | None = None) -> Path:  # noqa: ANN001
    """Write a checkpoint folder (config.json + generator.safetensors)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_tensors(folder / GENERATOR_FILE, generator.state_dict(), {"format": "edge-t2i generator"})
    _io.write_json(folder / CONFIG_FILE, {"model": generator.config.to_dict(), "training": training or {}})
    return folder


def load_generator(folder: str | os.PathLike[str]):  # noqa: ANN201 - returns networks.NetG
    """Rebuild the generator (NetG, eval mode) of a checkpoint folder: config.json + generator.safetensors
    (or a legacy .pt/.pth read with weights_only=True).

    Raises: CheckpointError (missing or corrupt files, another architecture, a shape that does not
    fit config.json, NaN/inf weights), MissingExtraError (extra `train`)."""
    require("torch", "train", "Loading a checkpoint")
    from edge_t2i.models.networks import NetG

    folder = Path(folder)
    if not folder.exists():
        raise CheckpointError(f"checkpoint {folder} not found")
    if folder.is_file():
        raise CheckpointError(f"{folder} is a file: pass the checkpoint folder (config.json + {GENERATOR_FILE})")
    config = ModelConfig.load(folder / CONFIG_FILE)
    weights = folder / GENERATOR_FILE
    legacy = [p for p in (folder / "generator.pt", folder / "generator.pth") if p.exists()]
    state = load_tensors(weights) if weights.exists() or not legacy else load_legacy_torch(legacy[0])
    model = NetG(config)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{folder}: weights do not fit the configured architecture "
            f"(missing {missing[:3]}{'...' if len(missing) > 3 else ''}, "
            f"unexpected {unexpected[:3]}{'...' if len(unexpected) > 3 else ''})")
    for name, tensor in state.items():
        if tuple(tensor.shape) != tuple(expected[name].shape):
            raise CheckpointError(f"{folder}: '{name}' has shape {tuple(tensor.shape)}, "
                                  f"config.json implies {tuple(expected[name].shape)}")
    check_finite(state, folder)
    model.load_state_dict(state)
    return model.eval()


def check_state(state: dict, expected: dict, arch: str, hint: str, where: object, float_only: bool = True) -> None:
    """Check a state dict read from `where` against the module's own `expected` one: every tensor there, none left
    over, every shape equal, (with `float_only`) every tensor floating point, and no NaN/inf.
    Raises: CheckpointError naming the first missing, unexpected or mis-shaped tensor, with `hint` appended."""
    missing = [name for name in expected if name not in state]
    if missing:
        raise CheckpointError(f"{where}: tensor '{missing[0]}' of {arch} is missing from the checkpoint "
                              f"({len(missing)} missing in all){hint}")
    unexpected = [name for name in state if name not in expected]
    if unexpected:
        raise CheckpointError(f"{where}: tensor '{unexpected[0]}' is not part of {arch} "
                              f"({len(unexpected)} unexpected in all){hint}")
    for name, tensor in expected.items():
        if tuple(state[name].shape) != tuple(tensor.shape):
            raise CheckpointError(f"{where}: tensor '{name}' has shape {list(state[name].shape)}, {arch} needs "
                                  f"{list(tensor.shape)}{hint}")
        if float_only and not state[name].is_floating_point():
            raise CheckpointError(f"{where}: tensor '{name}' is {state[name].dtype}, not floating point")
    check_finite({k: v for k, v in state.items() if v.is_floating_point()}, where)


def check_finite(state: dict, where: object) -> None:
    """Raise CheckpointError naming the first floating-point tensor with NaN or inf values
    (what a diverged run saves): such weights would produce garbage images, not an error."""
    for name, tensor in state.items():
        if tensor.is_floating_point() and not bool(tensor.isfinite().all()):
            count = int((~tensor.isfinite()).sum())
            raise CheckpointError(f"{where}: tensor '{name}' holds {count} NaN/inf value(s): the run diverged; "
                                  "use an earlier checkpoint")


def read_training_info(folder: str | os.PathLike[str]) -> dict:
    try:
        return json.loads((Path(folder) / CONFIG_FILE).read_text(encoding="utf-8")).get("training", {})
    except (OSError, ValueError):
        return {}
