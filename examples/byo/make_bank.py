"""Write a `--bank-embeddings` file: prompts and their vectors from "your own text encoder".

    python examples/byo/make_bank.py --prompts my_prompts.txt --dim 256 --out /tmp/dfgan/bank.safetensors

The format (docs/pack-spec.md, "Your own text encoder's bank"): safetensors with one tensor,
`embeddings` float32 [N, d], and the metadata keys `prompts` (a JSON list of the N prompts, row i is
prompt i) and `encoder` (a name for people). Here the vectors are random (seeded by the prompt text)
as a stand-in; with a real model, put your encoder's sentence vectors there instead (DF-GAN: the
256-d DAMSM sentence embedding, `sent_emb` of its RNN_ENCODER). Without --prompts, `--count`
numbered prompts are made.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np


def fake_encoder(prompts: list[str], dim: int) -> np.ndarray:
    """float32 [N, dim]: a unit vector per prompt, seeded by its text (same prompt, same vector)."""
    rows = []
    for text in prompts:
        seed = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")
        v = np.random.default_rng(seed).standard_normal(dim)
        rows.append(v / np.linalg.norm(v))
    return np.asarray(rows, np.float32)


def write_bank(out: Path, prompts: list[str], embeddings: np.ndarray, encoder: str = "example random encoder") -> Path:
    """Write the safetensors bank file `out` (prompts in the metadata); returns it."""
    from edge_t2i._io import write_safetensors  # or: safetensors.numpy.save_file(tensors, out, metadata)

    out.parent.mkdir(parents=True, exist_ok=True)
    write_safetensors(out, {"embeddings": np.asarray(embeddings, np.float32)},
                      {"prompts": json.dumps(prompts, ensure_ascii=False), "encoder": encoder})
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--dim", type=int, default=256, help="vector size (DF-GAN's DAMSM: 256)")
    p.add_argument("--prompts", type=Path, help="one prompt a line")
    p.add_argument("--count", type=int, default=256, help="without --prompts: how many numbered prompts")
    a = p.parse_args(argv)
    if a.prompts:
        prompts = [x.strip() for x in a.prompts.read_text(encoding="utf-8").splitlines() if x.strip()]
    else:
        prompts = [f"a bird, example prompt {i}" for i in range(a.count)]
    print(write_bank(a.out, prompts, fake_encoder(prompts, a.dim)))


if __name__ == "__main__":
    main()
