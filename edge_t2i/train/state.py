"""Run state on disk: exact resume (state/ folder) and warm starts from another run or checkpoint.

A state folder holds safetensors of every module (g, d, g_ema, e) and optimiser
(opt_g, opt_d, opt_e), plus state.json (step, elapsed time, best score, config,
optimiser param groups). Never pickle.
"""

from __future__ import annotations

import json
import logging
from dataclasses import fields
from pathlib import Path

import torch

from edge_t2i import _io
from edge_t2i.errors import CheckpointError
from edge_t2i.models import checkpoint
from edge_t2i.models.networks import NetD, NetG, NoiseEncoder
from edge_t2i.train import layers
from edge_t2i.train.config import TrainConfig

log = logging.getLogger(__name__)
STATE_FILE = "state.json"
Named = list[tuple[str, torch.nn.Module]]
NamedOptimizers = list[tuple[str, torch.optim.Optimizer]]


def save_state(folder: Path, modules: Named, optimizers: NamedOptimizers, meta: dict) -> None:
    """Write `folder` atomically: each module's and optimiser's tensors, and `meta` + param groups as JSON."""
    with _io.atomic_dir(folder) as tmp:
        for name, module in modules:
            checkpoint.save_tensors(tmp / f"{name}.safetensors", module.state_dict())
        groups = {}
        for name, opt in optimizers:
            sd = opt.state_dict()
            flat = {f"{i}.{k}": v for i, s in sd["state"].items() for k, v in s.items()}
            checkpoint.save_tensors(tmp / f"{name}.safetensors", flat)
            groups[name] = sd["param_groups"]
        _io.write_json(tmp / STATE_FILE, {**meta, "param_groups": groups})


def read_meta(folder: Path) -> dict:
    """state.json of a state folder. Raises CheckpointError if it is missing or unreadable."""
    path = folder / STATE_FILE
    if not path.is_file():
        raise CheckpointError(f"cannot resume: {path} not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot resume: {path} is unreadable ({exc})") from exc


def saved_config(meta: dict) -> TrainConfig:
    """The TrainConfig a state was written with (fields this version no longer has are ignored)."""
    known = {f.name for f in fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in meta["config"].items() if k in known})


def load_state(folder: Path, modules: Named, optimizers: NamedOptimizers, meta: dict) -> None:
    """Load every module and optimiser of a state folder in place. An encoder (`e`) switched on
    after the state was saved starts fresh."""
    for name, module in modules:
        if name == "e" and not (folder / "e.safetensors").is_file():
            continue
        module.load_state_dict(checkpoint.load_tensors(folder / f"{name}.safetensors"))
    for name, opt in optimizers:
        if name not in meta["param_groups"]:
            continue
        flat = checkpoint.load_tensors(folder / f"{name}.safetensors")
        state: dict[int, dict] = {}
        for key, value in flat.items():
            i, k = key.split(".", 1)
            state.setdefault(int(i), {})[k] = value
        opt.load_state_dict({"state": state, "param_groups": meta["param_groups"][name]})


def fold_text_norm(state: dict, generator: NetG) -> dict:
    """Rewrite a raw-embedding generator's weights for `generator`'s standardised input, same function.

    With u = e * s + t, every linear W e + b that reads the embedding becomes (W / s) u + (b - (W / s) t)."""
    s, t = generator.text_scale, generator.text_shift
    nz, out = generator.config.nz, dict(state)
    out["text_scale"], out["text_shift"] = s.clone(), t.clone()
    for key, w in state.items():
        if key.endswith(".fc1.weight") or (key == "fc.weight" and generator.config.text_in_fc):
            cols = slice(nz, None) if key == "fc.weight" else slice(0, generator.config.cond_dim)
            w = w.clone()
            w[:, cols] = w[:, cols] / s
            bias_key = key[: -len("weight")] + "bias"
            out[key], out[bias_key] = w, state[bias_key] - w[:, cols] @ t
    return out


LAYER_HEADS = ("to_alpha.", "to_background.")  # a layered generator's weights a single-layer one lacks
WIDEN_STD = 0.01  # new fusion inputs start small but not zero: with zero, neither they nor an encoder get a signal


def widen_fusion(state: dict, generator: NetG) -> dict:
    """Give a generator trained with fewer noise inputs to its fusion MLPs the extra input columns
    `generator` has (small random weights; the same random columns for G and its EMA)."""
    out, gen = dict(state), torch.Generator().manual_seed(0)
    for key, target in generator.state_dict().items():
        w = state.get(key)
        if key.endswith(".fc1.weight") and w is not None and w.shape[1] < target.shape[1]:
            extra = torch.randn(w.shape[0], target.shape[1] - w.shape[1], generator=gen) * WIDEN_STD
            out[key] = torch.cat([w, extra], 1)
    return out


def _read_source(source: Path) -> tuple[dict, dict, dict | None]:
    """(G, EMA G, D or None) weights of a run's state/ folder or of a checkpoint folder."""
    if (source / "g.safetensors").is_file():
        return (checkpoint.load_tensors(source / "g.safetensors"), checkpoint.load_tensors(source / "g_ema.safetensors"),
                checkpoint.load_tensors(source / "d.safetensors"))
    if (source / checkpoint.GENERATOR_FILE).is_file():
        g = checkpoint.load_tensors(source / checkpoint.GENERATOR_FILE)
        return g, g, None
    raise CheckpointError(f"cannot warm start from {source}: it holds neither g.safetensors (a run's "
                          f"state/ folder) nor {checkpoint.GENERATOR_FILE} (a checkpoint folder)")


def warm_start(source: Path, g: NetG, g_ema: NetG, d: NetD, e: NoiseEncoder | None,
               embeddings: torch.Tensor | None = None) -> None:
    """Start a new run from another run's weights (its state/ folder: G, EMA and D; or a checkpoint
    folder: the EMA generator for both). Optimisers start fresh. A generator trained on raw
    embeddings is folded into this one's standardised input (fold_text_norm), one with fewer fusion
    inputs widened (widen_fusion); a layered `g` from a single-layer source gets its new heads fitted
    to the EMA's images (layers.fit_heads on captions of `embeddings` [N, cond_dim]) and copied to G.
    Raises CheckpointError if the weights do not fit."""
    g_state, g_ema_state, d_state = _read_source(source)
    new_layers = g.config.layered and "to_alpha.weight" not in g_ema_state
    if new_layers and embeddings is None:
        raise CheckpointError(f"{source} holds a single-layer generator: fitting the layered heads needs captions")
    for module, state in ((g, g_state), (g_ema, g_ema_state)):
        if g.config.text_norm and "text_scale" not in state:
            state = fold_text_norm(state, g)
        state = widen_fusion(state, g)
        if new_layers:  # the heads' initial values; fitted below
            state = {**state, **{k: v for k, v in g.state_dict().items() if k.startswith(LAYER_HEADS)}}
        try:
            module.load_state_dict(state)
        except RuntimeError as exc:
            raise CheckpointError(f"cannot warm start from {source}: {str(exc).splitlines()[0]}") from exc
    if new_layers:
        assert embeddings is not None
        fit = layers.fit_heads(g_ema, embeddings)
        log.info("layered heads fitted to %s's images: L1 %.4f, background L1 %.4f", source, fit["l1"],
                 fit["background_l1"])
        g.load_state_dict({**g.state_dict(), **{k: v for k, v in g_ema.state_dict().items()
                                                 if k.startswith(LAYER_HEADS)}})
    if d_state is not None:
        try:
            d.load_state_dict(d_state)
        except RuntimeError as exc:
            raise CheckpointError(f"cannot warm start D from {source}: {str(exc).splitlines()[0]}") from exc
    if e is not None and (source / "e.safetensors").is_file():
        e.load_state_dict(checkpoint.load_tensors(source / "e.safetensors"))
