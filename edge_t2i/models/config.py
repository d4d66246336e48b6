"""The model configuration: torch-free, so the runtime and packs can read it too."""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from edge_t2i.errors import CheckpointError

RESOLUTIONS = (32, 64, 128, 256)
ARCHITECTURE = "dfgan-edge"


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild the generator (and discriminator) from a checkpoint."""

    resolution: int = 64      # output side in pixels
    ngf: int = 16             # generator width: channels at full resolution
    ndf: int = 16             # discriminator width
    nz: int = 100             # noise size
    cond_dim: int = 384       # sentence embedding size (all-MiniLM-L6-v2)
    fusion_hidden: int = 128  # hidden width of the deep-fusion MLPs
    output_scale: float = 1.0 / 0.9  # tanh(x) * scale, clamped to [-1, 1]: see networks.NetG
    text_in_fc: bool = True   # the first linear sees [z, embedding]: text can choose the layout
    text_norm: bool = False   # standardise the embedding (training-set mean/std, stored as buffers)
    noise_in_fusion: int = 0  # leading noise dimensions the deep-fusion MLPs see next to the sentence
    text_adapter: tuple[int, ...] = ()  # class counts of the attribute adapter's groups (networks.TextAdapter); (): none
    phrase_reader: int = 0    # words per window of the phrase reader (networks.PhraseReader); 0: none
    layered: bool = False     # composite a flat background colour and an alpha-masked foreground (networks.NetG)
    channels: int = 3         # 3: RGB; 4: premultiplied RGBA (sprites with alpha, `train --rgba`)
    architecture: str = ARCHITECTURE
    version: int = 1

    def __post_init__(self) -> None:
        if self.resolution not in RESOLUTIONS:
            raise CheckpointError(f"resolution must be one of {RESOLUTIONS}, got {self.resolution}")
        for name in ("ngf", "ndf", "nz", "cond_dim", "fusion_hidden"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise CheckpointError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(self.noise_in_fusion, int) or not 0 <= self.noise_in_fusion <= self.nz:
            raise CheckpointError(f"noise_in_fusion must be in 0..nz ({self.nz}), got {self.noise_in_fusion!r}")
        if isinstance(self.text_adapter, list):  # from JSON
            object.__setattr__(self, "text_adapter", tuple(self.text_adapter))
        groups = self.text_adapter
        if not isinstance(groups, tuple) or len(groups) > 16 or not all(
                isinstance(n, int) and not isinstance(n, bool) and 2 <= n <= 1024 for n in groups):
            raise CheckpointError(f"text_adapter must be a list of up to 16 class counts in 2..1024, got {groups!r}")
        if math.prod(groups) > 1_000_000:  # the adapter holds one embedding per attribute tuple
            raise CheckpointError(f"text_adapter's groups make {math.prod(groups):,} attribute tuples (at most 1,000,000)")
        if isinstance(self.phrase_reader, bool) or not isinstance(self.phrase_reader, int) or not (
                0 <= self.phrase_reader <= 16) or (self.phrase_reader and not (groups and self.text_norm)):
            raise CheckpointError(f"phrase_reader must be 0..16 words, and needs text_adapter and text_norm, "
                                  f"got {self.phrase_reader!r}")
        if not isinstance(self.layered, bool):
            raise CheckpointError(f"layered must be true or false, got {self.layered!r}")
        if isinstance(self.channels, bool) or self.channels not in (3, 4) or (self.channels == 4 and self.layered):
            raise CheckpointError(f"channels must be 3 (RGB) or 4 (RGBA, not layered), got {self.channels!r}")
        if self.architecture != ARCHITECTURE:
            raise CheckpointError(f"architecture '{self.architecture}' is not '{ARCHITECTURE}'")
        if not 1.0 <= self.output_scale <= 2.0:
            raise CheckpointError(f"output_scale must be in [1, 2], got {self.output_scale}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: object) -> ModelConfig:
        if not isinstance(data, dict):
            raise CheckpointError("model config must be a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise CheckpointError(f"unknown model config keys {unknown}: is this an edge-t2i checkpoint?")
        try:
            return cls(**data)
        except TypeError as exc:
            raise CheckpointError(f"bad model config: {exc}") from exc

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ModelConfig:
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"{path} not found: a checkpoint folder holds config.json")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"{path} is not valid JSON ({exc})") from exc
        return cls.from_dict(data.get("model", data) if isinstance(data, dict) else data)
