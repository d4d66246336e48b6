"""DF-GAN-style text-conditioned generator (NetG) and discriminator (NetD), in torch.

Source: Tao et al., "DF-GAN: A Simple and Effective Baseline for Text-to-Image Synthesis", CVPR 2022
(NetG/NetD names as in its code); the noise encoder follows BicycleGAN (Zhu et al., NeurIPS 2017).

Built for the edge: the generator uses only Gemm/Conv/Resize(nearest)/Mul/Add/
LeakyReLU/Tanh/Clip, no normalisation and no ConvTranspose, so ONNX Runtime and
TensorRT run and quantize it well. Text enters every block through deep fusion:
per-channel scale and shift predicted from the sentence embedding.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from edge_t2i.models.config import ModelConfig


def level_channels(base: int, resolution: int) -> list[tuple[int, int]]:
    """(feature side, channels) from 4x4 up to `resolution`: width halves as side doubles, capped at 8x."""
    out, side = [], 4
    while side <= resolution:
        out.append((side, base * min(8, resolution // side)))
        side *= 2
    return out


class Affine(nn.Module):
    """x * gamma(c) + beta(c), per channel and sample; starts as the identity (gamma 1, beta 0).

    With `as_batch_norm` (set by the ONNX export) the same arithmetic is written as one
    BatchNormalization over [1, B*C, H, W] (mean 0, variance 1, epsilon 0: exactly x * gamma + beta),
    one pass over the feature map where Mul + Add are two: ONNX Runtime's CPU kernels are
    memory-bound here (measured: the 16 Mul+Add pairs 11.8 ms -> 5.8 ms at batch 16, 1 thread).
    TensorRT's ONNX parser lowers a BatchNormalization with tensor scale/bias to elementwise layers."""

    as_batch_norm = False

    def __init__(self, cond_dim: int, channels: int, hidden: int):
        super().__init__()
        self.channels = channels
        self.fc1 = nn.Linear(cond_dim, hidden)
        self.fc2 = nn.Linear(hidden, 2 * channels)
        nn.init.zeros_(self.fc2.weight)
        with torch.no_grad():
            self.fc2.bias[:channels] = 1.0
            self.fc2.bias[channels:] = 0.0

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        # Static slices (not chunk) keep the exported graph free of shape arithmetic.
        h = self.fc2(F.relu(self.fc1(cond)))
        if self.as_batch_norm:
            side = [int(s) for s in x.shape[2:]]  # constants in the export: no Shape ops
            scale, shift = h[:, : self.channels].reshape(-1), h[:, self.channels :].reshape(-1)
            zero = scale.detach() * 0.0  # mean 0 and variance 1 of the batch size, without Shape ops in the graph
            y = F.batch_norm(x.reshape(1, -1, *side), zero, zero + 1.0, scale, shift, training=False, eps=0.0)
            return y.reshape(-1, self.channels, *side)
        h = h[:, :, None, None]
        return x * h[:, : self.channels] + h[:, self.channels :]


class TextAdapter(nn.Module):
    """Attribute bottleneck on the standardised sentence embedding e [B, cond_dim] -> [B, cond_dim].

    A linear classifier per attribute group (`groups`: class counts, e.g. shape 6, color 8, size 2,
    position 9, background 4 incl. "none") reads e; the most likely class of each group names one
    attribute tuple (the joint argmax of independent groups), and the output is that tuple's row of
    `table`: the standardised embedding of the canonical training caption with those attributes
    (rows in itertools.product order, first group slowest). A sentence the generator was never trained
    on is thus replaced by the training caption with the same attributes, an input the generator knows.
    Trained after the GAN, alone (train/adapter.py). Export: Gemm, Slice, ArgMax, Mul, Add, Gather:
    one table row read per sample."""

    table: torch.Tensor  # buffer [prod(groups), cond_dim]

    def __init__(self, cond_dim: int, groups: tuple[int, ...]):
        super().__init__()
        self.groups = tuple(groups)
        self.heads = nn.Linear(cond_dim, sum(self.groups))
        self.register_buffer("table", torch.zeros(math.prod(self.groups), cond_dim))

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        logits = self.heads(e)
        index, start = None, 0
        for n in self.groups:
            pick = logits[:, start:start + n].argmax(dim=1)
            index = pick if index is None else index * n + pick
            start += n
        return self.table[index]


class PhraseReader(nn.Module):
    """Attention-based multiple-instance pooling (Ilse et al., ICML 2018) over the embeddings of a
    prompt's word windows (runtime/reader.py has why and `phrase_windows`): windows float32 [W, dim]
    (L2-normalised, scaled by INPUT_SCALE inside) -> logits [sum(groups)], per attribute group the
    softmax-attention-weighted sum over windows of a linear classifier's logits. `index` turns them
    into the TextAdapter row of the attribute tuple read (joint argmax, itertools.product order)."""

    INPUT_SCALE = 10.0  # unit-norm embeddings -> entries of about +-1

    def __init__(self, cond_dim: int, groups: tuple[int, ...]):
        super().__init__()
        self.groups = tuple(groups)
        self.attention = nn.Linear(cond_dim, len(self.groups))
        self.classify = nn.Linear(cond_dim, sum(self.groups))

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        e = windows * self.INPUT_SCALE
        weights = torch.softmax(self.attention(e), dim=0)  # [W, groups]
        logits = self.classify(e)
        out, start = [], 0
        for k, n in enumerate(self.groups):
            out.append((weights[:, k:k + 1] * logits[:, start:start + n]).sum(0))
            start += n
        return torch.cat(out)

    def index(self, windows: torch.Tensor) -> torch.Tensor:
        logits, index, start = self(windows), None, 0
        for n in self.groups:
            pick = logits[start:start + n].argmax()
            index = pick if index is None else index * n + pick
            start += n
        assert index is not None
        return index


class Fusion(nn.Module):
    """DF-GAN's deep fusion: Affine -> LeakyReLU -> Affine -> LeakyReLU."""

    def __init__(self, cond_dim: int, channels: int, hidden: int):
        super().__init__()
        self.a1 = Affine(cond_dim, channels, hidden)
        self.a2 = Affine(cond_dim, channels, hidden)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.a1(x, cond), 0.2)
        return F.leaky_relu(self.a2(x, cond), 0.2)


class GBlock(nn.Module):
    """2x nearest upsample, then fuse -> conv3x3 -> fuse -> conv3x3, plus a 1x1 shortcut.

    Computed in the cheaper, identical order: nearest upsampling commutes with per-pixel operations,
    so the first fusion and the 1x1 shortcut run at the input resolution and are upsampled after
    (a quarter of their work and memory traffic; the function and the parameters are unchanged)."""

    def __init__(self, cin: int, cout: int, cond_dim: int, hidden: int):
        super().__init__()
        self.fuse1 = Fusion(cond_dim, cin, hidden)
        self.conv1 = nn.Conv2d(cin, cout, 3, 1, 1)
        self.fuse2 = Fusion(cond_dim, cout, hidden)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(self.fuse1(x, cond), scale_factor=2.0, mode="nearest")
        h = self.conv2(self.fuse2(self.conv1(h), cond))
        skip = self.shortcut(x) if self.shortcut is not None else x
        return F.interpolate(skip, scale_factor=2.0, mode="nearest") + h


class NetG(nn.Module):
    """(z [B, nz], embedding [B, cond_dim]) -> image [B, C, R, R] in [-1, 1]: C = config.channels, 3 (RGB) or 4
    (premultiplied RGBA: a sprite's colour already multiplied by its alpha, each mapped from [0, 1] to [-1, 1]).

    The output is clamp(tanh(x) * output_scale, -1, 1): with scale 1/0.9 the pure
    black and white of the data are reached at tanh = +-0.9, where its gradient
    has not vanished (targets at exactly +-1 made plain-tanh training collapse).
    The clamp applies in eval mode only (see forward).

    With `config.layered` the image is composited from two layers, as in LR-GAN (Yang et al.,
    ICLR 2017) and FineGAN (Singh et al., CVPR 2019): a background colour b [B, 3, 1, 1], one per
    image, read by a small MLP (`to_background`) from the fusion condition (sentence and noise) and
    the last feature map's spatial mean (what the trunk drew), and a
    foreground f [B, 3, R, R] (`to_rgb`) seen through an alpha mask a = sigmoid(`to_alpha`)
    [B, 1, R, R]: image = b + a * (f - b). A background is flat wherever a is 0 (a single-layer
    generator has to hold every background pixel at one value through all its convolutions), and
    an edge pixel is a mix of the object's and the background's colours, like an anti-aliased edge.
    Export: ReduceMean, Concat, Gemm, Relu, Tanh, Sigmoid, Sub, Mul, Add on top of the single-layer graph.
    """

    text_scale: torch.Tensor  # buffers, with text_norm
    text_shift: torch.Tensor

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        levels = level_channels(config.ngf, config.resolution)
        self.c0 = levels[0][1]
        # The 4x4 layout comes from this linear: with the sentence in it, text can place the object
        # (channel-wise fusion alone cannot choose *where*).
        self.fc = nn.Linear(config.nz + (config.cond_dim if config.text_in_fc else 0), self.c0 * 16)
        self.blocks = nn.ModuleList(
            GBlock(cin, cout, config.cond_dim + config.noise_in_fusion, config.fusion_hidden)
            for (_, cin), (_, cout) in zip(levels[:-1], levels[1:])
        )
        self.to_rgb = nn.Conv2d(levels[-1][1], config.channels, 3, 1, 1)  # RGB, or premultiplied RGBA
        if config.layered:
            self.to_alpha = nn.Conv2d(levels[-1][1], 1, 3, 1, 1)
            self.to_background = nn.Sequential(
                nn.Linear(config.cond_dim + config.noise_in_fusion + levels[-1][1], config.fusion_hidden), nn.ReLU(),
                nn.Linear(config.fusion_hidden, 3))
        if config.text_norm:
            # embedding * text_scale + text_shift: the training set's per-dimension standardisation.
            # Sentence embeddings share most of their direction (mean cosine 0.66 to the mean on the
            # shapes captions, per-dimension std 0.04), so raw, the text pathways learn ~20x slower than z.
            self.register_buffer("text_scale", torch.ones(config.cond_dim))
            self.register_buffer("text_shift", torch.zeros(config.cond_dim))
        self.text_adapter = TextAdapter(config.cond_dim, config.text_adapter) if config.text_adapter else None
        # Not part of forward: reads a prompt's word windows into an input for it (`read`, runtime/reader.py).
        self.phrase_reader = PhraseReader(config.cond_dim, config.text_adapter) if config.phrase_reader else None

    @torch.no_grad()
    def set_text_stats(self, embeddings: torch.Tensor, min_std: float = 1e-2) -> None:
        """Standardise with these (training) embeddings' mean and std (floored at `min_std`)."""
        if not self.config.text_norm:
            raise ValueError("this generator was configured without text_norm")
        scale = 1.0 / embeddings.std(0).clamp_min(min_std)
        self.text_scale.copy_(scale)
        self.text_shift.copy_(-embeddings.mean(0) * scale)

    def read(self, windows: torch.Tensor) -> torch.Tensor:
        """The phrase reader: a prompt's window embeddings float32 [W, cond_dim] -> the raw (not
        standardised) embedding [1, cond_dim] of the canonical caption of the attributes read, which the
        text adapter maps to itself. Raises ValueError without a phrase reader."""
        if self.phrase_reader is None or self.text_adapter is None:
            raise ValueError("this generator has no phrase reader (edge-t2i adapt trains one)")
        row = self.text_adapter.table[self.phrase_reader.index(windows)]
        return ((row - self.text_shift) / self.text_scale)[None]

    def features(self, z: torch.Tensor, embedding: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The trunk: (last feature map [B, ngf, R, R] after its LeakyReLU, fusion condition [B, cond_dim + k])."""
        if self.config.text_norm:
            embedding = embedding * self.text_scale + self.text_shift  # Mul + Add in the export
        if self.text_adapter is not None:
            embedding = self.text_adapter(embedding)
        h = torch.cat([z, embedding], dim=1) if self.config.text_in_fc else z
        x = self.fc(h).view(-1, self.c0, 4, 4)  # static shape: no Shape/Gather ops in the export
        # As in DF-GAN's code, noise can steer the fusion too: a shift in the last blocks is a
        # uniform colour change, which is what a caption that names no background leaves open.
        k = self.config.noise_in_fusion
        cond = torch.cat([embedding, z[:, :k]], dim=1) if k else embedding
        for block in self.blocks:
            x = block(x, cond)
        return F.leaky_relu(x, 0.2), cond

    def layers(self, x: torch.Tensor, cond: torch.Tensor) -> dict[str, torch.Tensor]:
        """The output heads on `features`: "pre" (foreground pre-tanh [B, 3, R, R]), "foreground"
        (tanh(pre) * output_scale); layered, also "alpha" [B, 1, R, R] in (0, 1), "background_pre"
        [B, 3] and "background" [B, 3, 1, 1] (tanh * output_scale)."""
        pre = self.to_rgb(x)
        out = {"pre": pre, "foreground": torch.tanh(pre) * self.config.output_scale}
        if self.config.layered:
            bg_pre = self.to_background(torch.cat([cond, x.mean(dim=(2, 3))], 1))
            out.update(alpha=torch.sigmoid(self.to_alpha(x)), background_pre=bg_pre,
                       background=(torch.tanh(bg_pre) * self.config.output_scale)[:, :, None, None])
        return out

    def forward(self, z: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        out = self.layers(*self.features(z, embedding))
        x = out["foreground"]
        if self.config.layered:
            x = out["background"] + out["alpha"] * (x - out["background"])
        if self.training:  # for the trainer's anti-saturation penalty and background term
            self.last_layers = out
        # Clamp only for inference and export: in training, a clamp has zero gradient once the
        # output overshoots, and a generator that saturates to black or white never returns.
        return x if self.training else x.clamp(-1.0, 1.0)


class DBlock(nn.Module):
    """Residual downsampling block: conv4x4/2 -> conv3x3, plus avg-pooled 1x1 shortcut."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 4, 2, 1)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.shortcut = nn.Conv2d(cin, cout, 1)
        self.gamma = nn.Parameter(torch.ones(1))  # 0 (as in DF-GAN) left D nearly linear for hundreds of steps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.conv2(F.leaky_relu(self.conv1(x), 0.2)), 0.2)
        return F.avg_pool2d(self.shortcut(x), 2) + self.gamma * h


class NetD(nn.Module):
    """Image features to 4x4, then a joint head on [features, tiled sentence] plus a
    projection term <pooled features, W c> that sharpens text-image matching.

    With `aux_classes` (training data that carries attribute labels), an auxiliary
    classifier (AC-GAN) reads the flattened 4x4 features, so position survives."""

    def __init__(self, config: ModelConfig, aux_classes: tuple[int, ...] = (), spectral: bool = True):
        super().__init__()
        self.aux_classes = tuple(aux_classes)
        levels = level_channels(config.ndf, config.resolution)[::-1]  # full resolution first
        self.conv_img = nn.Conv2d(config.channels, levels[0][1], 3, 1, 1)
        self.blocks = nn.Sequential(*(DBlock(cin, cout) for (_, cin), (_, cout) in zip(levels[:-1], levels[1:])))
        c = levels[-1][1]
        self.cond_proj = nn.Linear(config.cond_dim, 64)
        self.joint = nn.Sequential(
            nn.Conv2d(c + 64, 2 * config.ndf, 3, 1, 1), nn.LeakyReLU(0.2), nn.Conv2d(2 * config.ndf, 1, 4, 1, 0)
        )
        self.embed = nn.Linear(config.cond_dim, c, bias=False)
        self.aux = nn.Linear(c * 16, sum(self.aux_classes)) if self.aux_classes else None
        if spectral:  # bounds D's response to pixel intensity: without it G ran to pure black or white
            for m in list(self.modules()):
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    nn.utils.spectral_norm(m)

    def forward(self, image: torch.Tensor, embedding: torch.Tensor, with_aux: bool = False):  # noqa: ANN201
        """Realism-and-match score [B]; with `with_aux`, also attribute logits [B, sum(aux_classes)]."""
        feat = self.blocks(self.conv_img(image))
        c = self.cond_proj(embedding)[:, :, None, None].expand(-1, -1, feat.shape[2], feat.shape[3])
        joint = self.joint(torch.cat([feat, c], 1)).flatten(1).squeeze(1)
        projection = (feat.sum(dim=(2, 3)) * self.embed(embedding)).sum(1) / math.sqrt(feat.shape[1])
        score = joint + projection
        if not with_aux:
            return score
        if self.aux is None:
            raise ValueError("this discriminator has no auxiliary classifier")
        return score, self.aux(F.leaky_relu(feat, 0.2).flatten(1))


class NoiseEncoder(nn.Module):
    """Training only (BicycleGAN's cVAE-GAN, Zhu et al. 2017): a real image -> (mu, logvar) of the
    noise the generator should redraw it from.

    The reconstruction losses pair a generated image with a real one. With random noise, the
    best a generator can do there is one image per caption (the per-pixel median of that
    caption's images: always a gray background, whatever the noise); with the real image's own
    noise, what the caption leaves open (background, jitter) has to be carried by z, and a KL
    term keeps those noises distributed like N(0, I), so random noise draws them at inference."""

    def __init__(self, config: ModelConfig, dims: int, width: int = 16):
        super().__init__()
        layers: list[nn.Module] = []
        cin, side = config.channels, config.resolution
        while side > 4:
            cout = min(width * 2 ** len(layers[::2]), 8 * width)
            layers += [nn.Conv2d(cin, cout, 4, 2, 1), nn.LeakyReLU(0.2)]
            cin, side = cout, side // 2
        self.features = nn.Sequential(*layers)
        if not 0 < dims <= config.nz:
            raise ValueError(f"encoder dims {dims} must be in 1..{config.nz}")
        self.head = nn.Linear(cin * 16, 2 * dims)  # (mu, logvar) of the first `dims` noise dimensions
        nn.init.zeros_(self.head.weight)  # starts as the prior: z = noise, as without an encoder
        nn.init.zeros_(self.head.bias)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.head(self.features(image).flatten(1)).chunk(2, dim=1)
        return mu, logvar.clamp(-8.0, 4.0)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
