"""The public DF-GAN generator, rebuilt from its published architecture with its parameter names,
and a loader for the checkpoints its code writes.

Source: Tao et al., "DF-GAN: A Simple and Effective Baseline for Text-to-Image Synthesis", CVPR 2022,
and its code (github.com/tobran/DF-GAN, `code/models/GAN.py`: NetG, G_Block, DFBLK, Affine;
`code/lib/utils.py`: save_models). Written here from that description; the state dict keys are the
public ones, so a checkpoint trained with that code loads unchanged:

    fc                                     Linear(nz -> 8*ngf*4*4), reshaped to [B, 8*ngf, 4, 4]
    GBlocks.{i}.c1 / c2 / c_sc             3x3, 3x3 and (when channels change) 1x1 shortcut convs
    GBlocks.{i}.fuse{1,2}.affine{0,1}.fc_{gamma,beta}.linear{1,2}
                                           the deep-fusion MLPs of the condition [noise, sentence]
    to_rgb.1                               LeakyReLU(0.2) -> Conv3x3 -> tanh

A block: 2x nearest upsample, then shortcut(x) + c2(fuse2(c1(fuse1(x)))), where a fusion is
Affine -> LeakyReLU(0.2) -> Affine -> LeakyReLU(0.2) and Affine(x) = gamma(cond) * x + beta(cond) per
channel. The condition every fusion sees is cat(noise, sentence), [B, nz + cond_dim].

Its checkpoints are `torch.save({'model': {'netG': state_dict, 'netD': ..., 'netC': ...},
'optimizers': ..., 'epoch': n})`, with a `module.` prefix on each key when trained with DDP.
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from edge_t2i.errors import CheckpointError

ARCHITECTURE = "dfgan"
RESOLUTIONS = (32, 64, 128, 256, 512)  # the public code's channel plan needs >= 32 px (8*ngf at 4x4)
SOURCE = "DF-GAN (Tao et al., CVPR 2022), github.com/tobran/DF-GAN code/models/GAN.py NetG"


@dataclass(frozen=True)
class DFGANConfig:
    """The public NetG's constructor arguments: NetG(ngf, nz, cond_dim, imsize, ch_size=3).

    The released models use ngf 32, nz 100, cond_dim 256 (DAMSM sentence vectors), 256 px."""

    resolution: int = 256   # output side in pixels (the public code's `imsize`)
    ngf: int = 32           # width: channels at full resolution; 8*ngf at 4x4
    nz: int = 100           # noise size
    cond_dim: int = 256     # sentence embedding size (DAMSM: 256)
    architecture: str = ARCHITECTURE

    def __post_init__(self) -> None:
        if self.resolution not in RESOLUTIONS:
            raise CheckpointError(f"--resolution must be one of {RESOLUTIONS} for DF-GAN, got {self.resolution}")
        for name in ("ngf", "nz", "cond_dim"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 4096:
                raise CheckpointError(f"--{name.replace('_', '-')} must be an integer in 1..4096, got {value!r}")
        if self.architecture != ARCHITECTURE:
            raise CheckpointError(f"architecture {self.architecture!r} is not {ARCHITECTURE!r}")

    def to_dict(self) -> dict:
        return {**asdict(self), "source": SOURCE}

    @classmethod
    def from_dict(cls, data: dict) -> DFGANConfig:
        return cls(**{k: data[k] for k in ("resolution", "ngf", "nz", "cond_dim") if k in data})

    def flags(self) -> str:
        return f"--resolution {self.resolution} --ngf {self.ngf} --nz {self.nz} --cond-dim {self.cond_dim}"


def block_channels(ngf: int, resolution: int) -> list[tuple[int, int]]:
    """(in, out) channels of each upsampling block, 4x4 -> resolution: widths ngf * min(2^k, 8) for the
    log2(resolution) - 1 levels, widest first (the public `get_G_in_out_chs`)."""
    levels = int(math.log2(resolution)) - 1
    widths = [ngf * min(2**k, 8) for k in reversed(range(levels))]
    return list(zip(widths[:-1], widths[1:]))


def _mlp(cond_dim: int, last: nn.Linear) -> nn.Sequential:
    """Linear(cond_dim -> C) -> ReLU -> `last` (C -> C), named linear1 / relu1 / linear2 as in the public code."""
    return nn.Sequential(OrderedDict([("linear1", nn.Linear(cond_dim, last.in_features)), ("relu1", nn.ReLU()),
                                      ("linear2", last)]))


class Affine(nn.Module):
    """gamma(cond) * x + beta(cond), per sample and channel; gamma and beta are two-layer MLPs
    (Linear -> ReLU -> Linear, hidden width = channels), initialised to gamma 1, beta 0."""

    def __init__(self, cond_dim: int, channels: int):
        super().__init__()
        gamma_out, beta_out = nn.Linear(channels, channels), nn.Linear(channels, channels)
        nn.init.zeros_(gamma_out.weight)
        nn.init.ones_(gamma_out.bias)
        nn.init.zeros_(beta_out.weight)
        nn.init.zeros_(beta_out.bias)
        self.fc_gamma = _mlp(cond_dim, gamma_out)
        self.fc_beta = _mlp(cond_dim, beta_out)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        # Broadcasting (not expand(x.size())) keeps Shape ops out of the exported graph; same arithmetic.
        return self.fc_gamma(cond)[:, :, None, None] * x + self.fc_beta(cond)[:, :, None, None]


class DFBLK(nn.Module):
    """Deep fusion: Affine -> LeakyReLU(0.2) -> Affine -> LeakyReLU(0.2)."""

    def __init__(self, cond_dim: int, channels: int):
        super().__init__()
        self.affine0 = Affine(cond_dim, channels)
        self.affine1 = Affine(cond_dim, channels)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.affine0(x, cond), 0.2)
        return F.leaky_relu(self.affine1(x, cond), 0.2)


class GBlock(nn.Module):
    """2x nearest upsample, then shortcut(x) + c2(fuse2(c1(fuse1(x)))); the shortcut is a 1x1 conv
    when the width changes, else the identity."""

    def __init__(self, cond_dim: int, in_ch: int, out_ch: int):
        super().__init__()
        self.c1 = nn.Conv2d(in_ch, out_ch, 3, 1, 1)
        self.c2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1)
        self.fuse1 = DFBLK(cond_dim, in_ch)
        self.fuse2 = DFBLK(cond_dim, out_ch)
        self.c_sc = nn.Conv2d(in_ch, out_ch, 1, 1, 0) if in_ch != out_ch else None

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        shortcut = self.c_sc(x) if self.c_sc is not None else x
        return shortcut + self.c2(self.fuse2(self.c1(self.fuse1(x, cond)), cond))


class DFGANGenerator(nn.Module):
    """DF-GAN's NetG. `forward(z float32 [B, nz], sentence float32 [B, cond_dim])` -> image float32
    [B, 3, R, R] in [-1, 1] (tanh)."""

    def __init__(self, config: DFGANConfig):
        super().__init__()
        self.config = config
        self.fc = nn.Linear(config.nz, config.ngf * 8 * 4 * 4)
        cond = config.nz + config.cond_dim
        self.GBlocks = nn.ModuleList(GBlock(cond, i, o) for i, o in block_channels(config.ngf, config.resolution))
        out_ch = block_channels(config.ngf, config.resolution)[-1][1]
        self.to_rgb = nn.Sequential(nn.LeakyReLU(0.2), nn.Conv2d(out_ch, 3, 3, 1, 1), nn.Tanh())

    def forward(self, z: torch.Tensor, sentence: torch.Tensor) -> torch.Tensor:
        x = self.fc(z).reshape(-1, 8 * self.config.ngf, 4, 4)
        cond = torch.cat((z, sentence), dim=1)
        for block in self.GBlocks:
            x = block(x, cond)
        return self.to_rgb(x)


def generator_state(obj: object, where: object) -> dict:
    """The NetG state dict inside what the public code saves: {'model': {'netG': sd}}, {'netG': sd}, or a
    bare state dict; a DDP `module.` prefix is removed. Raises CheckpointError for anything else."""
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        if "netG" not in obj["model"]:
            raise CheckpointError(f"{where}: its 'model' holds no 'netG' (it holds {sorted(map(str, obj['model']))[:5]}): "
                                  "expected a DF-GAN checkpoint {'model': {'netG': state_dict, ...}}")
        obj = obj["model"]["netG"]
    elif isinstance(obj, dict) and "netG" in obj:
        obj = obj["netG"]
    if not isinstance(obj, dict) or not obj:
        raise CheckpointError(f"{where}: expected a DF-GAN checkpoint ({{'model': {{'netG': state_dict}}}} or a "
                              "state dict of tensors)")
    state = {}
    for key, value in obj.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{where}: {key!r} holds a {type(value).__name__}, not a tensor: expected NetG's state "
                                  "dict (a DF-GAN checkpoint {'model': {'netG': state_dict}}, or the bare state dict)")
        state[key[len("module."):] if key.startswith("module.") else key] = value
    return state


def infer_config(state: dict) -> DFGANConfig | None:
    """The NetG configuration the tensor shapes imply, or None if they do not look like DF-GAN's."""
    try:
        fc = state["fc.weight"]
        blocks = {int(k.split(".")[1]) for k in state if k.startswith("GBlocks.")}
        cond = state["GBlocks.0.fuse1.affine0.fc_gamma.linear1.weight"].shape[1]
        nz, ngf = int(fc.shape[1]), int(fc.shape[0]) // (8 * 16)
        return DFGANConfig(resolution=4 * 2 ** len(blocks), ngf=ngf, nz=nz, cond_dim=int(cond) - nz)
    except (KeyError, ValueError, IndexError, AttributeError, CheckpointError):
        return None


def read_state(path: str | os.PathLike[str]) -> dict:
    """NetG's tensors from a DF-GAN checkpoint file: a `.pth`/`.pt` read only with
    `torch.load(weights_only=True)` (a pickle that needs code is refused, never run), or a `.safetensors`.

    Returns: {public parameter name: tensor}, `module.` prefixes removed.
    Raises: CheckpointError (missing, empty, a folder, refused pickle, no NetG state dict inside)."""
    from edge_t2i.models.checkpoint import load_legacy_torch, load_tensors

    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"DF-GAN checkpoint {path} not found")
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder: --arch dfgan takes the checkpoint file the DF-GAN code saved "
                              "(e.g. state_epoch_1220.pth)")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes): the checkpoint was not written completely")
    obj = load_tensors(path) if path.suffix == ".safetensors" else load_legacy_torch(path)
    return generator_state(obj, path)


def resolve_config(state: dict, resolution: int | None = None, ngf: int | None = None, nz: int | None = None,
                   cond_dim: int | None = None) -> DFGANConfig:
    """The configuration to build: each value given, else the one the checkpoint's shapes imply.

    Raises: CheckpointError (a value not given that the shapes do not tell, or an invalid value)."""
    implied = infer_config(state)
    given = {"resolution": resolution, "ngf": ngf, "nz": nz, "cond_dim": cond_dim}
    values: dict[str, int] = {}
    for name, value in given.items():
        if value is None:
            if implied is None:
                raise CheckpointError(f"cannot tell --{name.replace('_', '-')} from the checkpoint (it does not look "
                                      "like DF-GAN's NetG): give --resolution, --ngf, --nz and --cond-dim")
            value = getattr(implied, name)
        values[name] = value
    return DFGANConfig(values["resolution"], values["ngf"], values["nz"], values["cond_dim"])


def build_checked(state: dict, config: DFGANConfig, where: object) -> DFGANGenerator:
    """NetG(config) with `state` loaded, eval mode, after checking that every tensor it needs is there,
    none is left over, every shape fits and no value is NaN/inf.

    Raises: CheckpointError naming the first missing, unexpected or mis-shaped tensor (in NetG's
    parameter order), with the flags the checkpoint's shapes imply when they differ from `config`."""
    from edge_t2i.models.checkpoint import check_state

    model = DFGANGenerator(config)
    expected = model.state_dict()
    implied = infer_config(state)
    hint = f"; the checkpoint's shapes imply {implied.flags()}" if implied and implied != config else ""
    arch = f"DF-GAN NetG({config.flags()})"
    check_state(state, expected, arch, hint, where)
    model.load_state_dict(state)
    return model.eval()


def load_dfgan(path: str | os.PathLike[str], resolution: int | None = None, ngf: int | None = None,
               nz: int | None = None, cond_dim: int | None = None) -> DFGANGenerator:
    """Read a DF-GAN checkpoint file and rebuild its generator (eval mode, float32); values not given
    are taken from the checkpoint's shapes. Raises: CheckpointError (see `read_state`, `build_checked`)."""
    state = read_state(path)
    return build_checked(state, resolve_config(state, resolution, ngf, nz, cond_dim), path)
