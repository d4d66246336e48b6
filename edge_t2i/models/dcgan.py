"""The DCGAN generator of the PyTorch DCGAN tutorial, rebuilt with its parameter names, and a loader for
the state dicts its training code saves: an unconditional generator (noise alone -> image).

Source: Radford et al., "Unsupervised Representation Learning with Deep Convolutional GANs", ICLR 2016, and
the PyTorch tutorial's `Generator` (pytorch.org/tutorials/beginner/dcgan_faces_tutorial.html), which many
trained DCGANs on PyPI and GitHub copy (e.g. PyPI `gan-face-generate` 1.1.1, `weights.tar` key
`netG_state_dict`). For a 64 px image, `main` is:

    main.0    ConvTranspose2d(nz -> 8 ngf, 4, stride 1, pad 0)   1 -> 4 px      main.1  BatchNorm2d, main.2 ReLU
    main.3    ConvTranspose2d(8 ngf -> 4 ngf, 4, 2, 1)           4 -> 8 px      main.4  BatchNorm2d, main.5 ReLU
    main.6    ConvTranspose2d(4 ngf -> 2 ngf, 4, 2, 1)           8 -> 16 px     main.7  BatchNorm2d, main.8 ReLU
    main.9    ConvTranspose2d(2 ngf -> ngf, 4, 2, 1)             16 -> 32 px    main.10 BatchNorm2d, main.11 ReLU
    main.12   ConvTranspose2d(ngf -> nc, 4, 2, 1) -> Tanh        32 -> 64 px

all without bias. Other resolutions add (or drop) one stride-2 block per factor of 2 (32 px: 4 ConvTranspose).
The tutorial feeds z as [B, nz, 1, 1]; this module takes z [B, nz] like every pack does.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from edge_t2i.errors import CheckpointError

ARCHITECTURE = "dcgan"
RESOLUTIONS = (32, 64, 128, 256)
SOURCE = "DCGAN (Radford et al., ICLR 2016), PyTorch DCGAN tutorial Generator"
STATE_KEYS = ("netG_state_dict", "netG", "generator", "state_dict", "G")  # where trainers put G's state dict


@dataclass(frozen=True)
class DCGANConfig:
    """The tutorial Generator's hyper-parameters: nz 100, ngf 64, nc 3 give its 64 px, 3.58 M-parameter model."""

    resolution: int = 64   # output side in pixels
    ngf: int = 64          # channels of the last hidden layer; the first has ngf * resolution / 8
    nz: int = 100          # noise size
    channels: int = 3      # image channels (nc)
    architecture: str = ARCHITECTURE

    def __post_init__(self) -> None:
        if self.resolution not in RESOLUTIONS:
            raise CheckpointError(f"--resolution must be one of {RESOLUTIONS} for DCGAN, got {self.resolution}")
        for name in ("ngf", "nz"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 4096:
                raise CheckpointError(f"--{name} must be an integer in 1..4096, got {value!r}")
        if self.channels != 3:
            raise CheckpointError(f"a pack's image is RGB: the DCGAN generator has {self.channels} output channels")

    @property
    def blocks(self) -> int:
        """ConvTranspose layers: one 1 -> 4 px, then one per doubling up to the resolution."""
        return self.resolution.bit_length() - 2

    def flags(self) -> str:
        return f"--resolution {self.resolution} --ngf {self.ngf} --nz {self.nz}"

    def to_dict(self) -> dict:
        return {**asdict(self), "source": SOURCE}


def channel_plan(config: DCGANConfig) -> list[int]:
    """Channels after each ConvTranspose: 64 px, ngf 64 -> [512, 256, 128, 64, 3]."""
    hidden = [config.ngf * 2 ** (config.blocks - 2 - i) for i in range(config.blocks - 1)]
    return [*hidden, config.channels]


class DCGANGenerator(nn.Module):
    """z float32 [B, nz] -> image float32 [B, 3, R, R] in [-1, 1] (tanh)."""

    def __init__(self, config: DCGANConfig):
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        inputs = config.nz
        for i, out in enumerate(channel_plan(config)):
            first, last = i == 0, i == config.blocks - 1
            layers.append(nn.ConvTranspose2d(inputs, out, 4, 1 if first else 2, 0 if first else 1, bias=False))
            layers += [nn.Tanh()] if last else [nn.BatchNorm2d(out), nn.ReLU(True)]
            inputs = out
        self.main = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z.reshape(z.shape[0], self.config.nz, 1, 1))


def generator_state(obj: object, where: object) -> dict:
    """G's state dict inside what a DCGAN trainer saves ({'netG_state_dict': sd, ...}, {'netG': sd}, or a bare
    state dict); a DDP `module.` prefix is removed. Raises CheckpointError for anything else."""
    if isinstance(obj, dict):
        for key in STATE_KEYS:
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj:
        raise CheckpointError(f"{where}: expected a DCGAN checkpoint ({{'netG_state_dict': state_dict}} or a state "
                              "dict of tensors)")
    state = {}
    for key, value in obj.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            keys = sorted(map(str, obj))[:5]
            raise CheckpointError(f"{where}: {key!r} holds a {type(value).__name__}, not a tensor: expected the "
                                  f"generator's state dict under one of {', '.join(STATE_KEYS)} (it holds {keys})")
        state[key[len("module."):] if key.startswith("module.") else key] = value
    return state


def infer_config(state: dict) -> DCGANConfig | None:
    """The configuration the tensor shapes imply, or None if they do not look like the tutorial's Generator."""
    try:
        convs = sorted((int(k.split(".")[1]), v) for k, v in state.items()
                       if k.startswith("main.") and k.endswith(".weight") and v.ndim == 4)
        first, last = convs[0][1], convs[-1][1]
        return DCGANConfig(resolution=2 ** (len(convs) + 1), ngf=int(last.shape[0]), nz=int(first.shape[0]),
                           channels=int(last.shape[1]))
    except (KeyError, ValueError, IndexError, AttributeError, CheckpointError):
        return None


def read_state(path: str | os.PathLike[str]) -> dict:
    """G's tensors from a DCGAN checkpoint file, read only with `torch.load(weights_only=True)` (a pickle that
    needs code is refused, never run), or a `.safetensors`.
    Raises: CheckpointError (missing, empty, a folder, refused pickle, no state dict inside)."""
    from edge_t2i.models.checkpoint import load_legacy_torch, load_tensors

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"DCGAN checkpoint {path} not found (or not a file)")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes): the checkpoint was not written completely")
    obj = load_tensors(path) if path.suffix == ".safetensors" else load_legacy_torch(path)
    return generator_state(obj, path)


def resolve_config(state: dict, resolution: int | None = None, ngf: int | None = None,
                   nz: int | None = None) -> DCGANConfig:
    """Each value given, else the one the checkpoint's shapes imply. Raises: CheckpointError."""
    implied = infer_config(state)
    values = {"resolution": resolution, "ngf": ngf, "nz": nz}
    for name, value in values.items():
        if value is None:
            if implied is None:
                raise CheckpointError(f"cannot tell --{name} from the checkpoint (it does not look like the DCGAN "
                                      "tutorial's Generator): give --resolution, --ngf and --nz")
            values[name] = getattr(implied, name)
    return DCGANConfig(values["resolution"], values["ngf"], values["nz"])  # type: ignore[arg-type]


def build_checked(state: dict, config: DCGANConfig, where: object) -> DCGANGenerator:
    """Generator(config) with `state` loaded, eval mode (BatchNorm uses its running statistics), after checking
    that every tensor is there, none is left over, every shape fits and no value is NaN/inf.
    Raises: CheckpointError naming the first missing, unexpected or mis-shaped tensor."""
    from edge_t2i.models.checkpoint import check_state

    model = DCGANGenerator(config)
    expected = model.state_dict()
    implied = infer_config(state)
    hint = f"; the checkpoint's shapes imply {implied.flags()}" if implied and implied != config else ""
    arch = f"DCGAN Generator({config.flags()})"
    check_state(state, expected, arch, hint, where, float_only=False)  # BatchNorm's num_batches_tracked is int64
    model.load_state_dict(state)
    return model.eval()


def load_dcgan(path: str | os.PathLike[str], resolution: int | None = None, ngf: int | None = None,
               nz: int | None = None) -> DCGANGenerator:
    """Read a DCGAN checkpoint file and rebuild its generator (eval mode, float32).
    Raises: CheckpointError (see `read_state`, `build_checked`)."""
    state = read_state(path)
    return build_checked(state, resolve_config(state, resolution, ngf, nz), path)
