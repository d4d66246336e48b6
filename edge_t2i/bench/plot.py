"""The benchmark's picture: throughput bars, frame-time p50/p99 against a 90 Hz frame, sustained run."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from edge_t2i import _io
from edge_t2i.errors import require


def plot(result: dict, out: str | os.PathLike[str]) -> Path:
    """Throughput bars per batch size, and frame-time distributions at batch 1 (and over time if sustained)."""
    matplotlib = require("matplotlib", "bench", "The benchmark plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    names = list(dict.fromkeys(r["config"] for r in rows))
    batches = sorted({r["batch"] for r in rows})
    ncols = 3 if result.get("sustained") else 2
    fig, axes = plt.subplots(1, ncols, figsize=(6 * ncols, 4.2 + 0.12 * len(names)))
    width = 0.8 / len(names)
    for i, n in enumerate(names):
        vals = [next((r["images_per_s"] for r in rows if r["config"] == n and r["batch"] == b), 0) for b in batches]
        axes[0].bar(np.arange(len(batches)) + i * width, vals, width, label=n)
    axes[0].set_xticks(np.arange(len(batches)) + width * (len(names) - 1) / 2, [f"batch {b}" for b in batches])
    axes[0].set_ylabel("images / s (end to end)")
    axes[0].set_title("throughput")
    axes[0].legend(fontsize=7, loc="upper left", bbox_to_anchor=(0, -0.12), ncol=2, frameon=False)
    b1 = [r for r in rows if r["batch"] == min(batches)]
    axes[1].barh([r["config"] for r in b1], [r["p50_ms"] for r in b1], color="tab:blue", label="p50")
    axes[1].barh([r["config"] for r in b1], [r["p99_ms"] - r["p50_ms"] for r in b1], left=[r["p50_ms"] for r in b1],
                 color="tab:orange", label="p99")
    axes[1].axvline(1000 / 90, color="red", linestyle="--", label="90 Hz frame (11.1 ms)")
    axes[1].set_xlabel(f"frame time at batch {min(batches)} (ms)")
    axes[1].set_title("frame time p50 / p99")
    axes[1].legend(fontsize=8)
    if result.get("sustained"):
        s = result["sustained"]
        axes[2].plot(s["t_s"], s["frame_ms"], lw=0.5)
        axes[2].set_xlabel("time (s)")
        axes[2].set_ylabel("frame time (ms)")
        axes[2].set_title(f"sustained: {s['config']}")
    fig.suptitle(f"edge-t2i bench — {result['machine'].get('cpu', '')}", fontsize=10)
    fig.tight_layout()
    with _io.atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return Path(out)
