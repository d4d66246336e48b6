"""Time and peak memory of loading a prompt bank of N prompts (the runtime's bound: MAX_BANK_ENTRIES).

Writes a bank of N distinct prompts of ~40 characters with random 384-d float16 embeddings (the size MiniLM gives),
then loads it in a fresh process (as `load(pack)` reads a pack's bank: header first, data streamed, sha256 checked)
and reports seconds and the peak resident memory of that process, against an empty process's.

    python benchmarks/bank_scale.py --prompts 1000000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge_t2i import _io  # noqa: E402
from edge_t2i.runtime.bank import BANK_FORMAT, NORMALIZATION  # noqa: E402

CHILD = """
import sys, time
from edge_t2i.runtime.bank import PromptBank

def peak_mb():  # VmHWM: this process's own peak (ru_maxrss carries the parent's across exec on Linux)
    line = next(x for x in open("/proc/self/status") if x.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024

base = peak_mb()
t = time.perf_counter()
bank = PromptBank.load(sys.argv[1])
seconds = time.perf_counter() - t
prompts = [bank.texts[i] for i in range(0, len(bank), max(1, len(bank) // 1000))]
t = time.perf_counter()
for p in prompts:
    bank.lookup(p)
exact_us = (time.perf_counter() - t) / len(prompts) * 1e6
t = time.perf_counter(); bank.nearest(bank.embeddings[7] + 0.01); nearest_ms = (time.perf_counter() - t) * 1e3
print(len(bank), round(seconds, 2), round(base), round(peak_mb()), round(exact_us, 1), round(nearest_ms, 1))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=384)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bank.safetensors"
        rng = np.random.default_rng(0)
        emb = rng.standard_normal((a.prompts, a.dim), dtype=np.float32)
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        prompts = [f"a {i} coloured shape number {i * 7919 % 100003} here" for i in range(a.prompts)]
        meta = {"format": BANK_FORMAT, "normalization": NORMALIZATION, "encoder": "random", "dim": str(a.dim),
                "prompts": json.dumps(prompts)}
        _io.write_safetensors(path, {"embeddings": emb.astype(np.float16)}, meta)
        del emb, prompts
        size_mb = path.stat().st_size / 1e6
        out = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, check=True,
                             cwd=Path(__file__).resolve().parents[1]).stdout.split()
    n, seconds, base, peak, exact_us, nearest_ms = out
    print(f"bank of {int(n):,} prompts x {a.dim}-d float16 ({size_mb:.0f} MB file): loaded in {seconds} s, peak "
          f"resident {peak} MB ({int(peak) - int(base)} MB over the empty process's {base} MB); a bank hit "
          f"{exact_us} us, nearest {nearest_ms} ms")


if __name__ == "__main__":
    main()
