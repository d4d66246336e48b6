"""Write a DF-GAN checkpoint with random weights, laid out as the public DF-GAN code saves it.

    python examples/byo/make_dfgan_checkpoint.py --out /tmp/dfgan/state_epoch_000.pth --resolution 256 --ngf 32

The file is `torch.save({'model': {'netG': state_dict}, 'epoch': 0})` with the public NetG parameter
names (github.com/tobran/DF-GAN, code/lib/utils.py save_models; `--ddp` adds the `module.` prefix a
DistributedDataParallel run saves). The fusion MLPs' last layers get small random weights instead of
the identity initialisation, so the image depends on the sentence vector as a trained model's does.
A stand-in for a real checkpoint: `edge-t2i convert FILE --arch dfgan ...` reads both the same way.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def make_checkpoint(out: Path, resolution: int = 256, ngf: int = 32, nz: int = 100, cond_dim: int = 256,
                    seed: int = 0, ddp: bool = False) -> Path:
    """Write the checkpoint file `out`; returns it."""
    import torch

    from edge_t2i.models.dfgan import DFGANConfig, DFGANGenerator

    torch.manual_seed(seed)
    net = DFGANGenerator(DFGANConfig(resolution=resolution, ngf=ngf, nz=nz, cond_dim=cond_dim))
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith("linear2.weight"):
                p.normal_(0.0, 0.05)
    state = {("module." if ddp else "") + k: v for k, v in net.state_dict().items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": {"netG": state}, "epoch": 0}, out)
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--resolution", type=int, default=256)
    p.add_argument("--ngf", type=int, default=32)
    p.add_argument("--nz", type=int, default=100)
    p.add_argument("--cond-dim", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ddp", action="store_true", help="prefix every key with 'module.' as a DDP run saves it")
    a = p.parse_args(argv)
    print(make_checkpoint(a.out, a.resolution, a.ngf, a.nz, a.cond_dim, a.seed, a.ddp))


if __name__ == "__main__":
    main()
