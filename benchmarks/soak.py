"""Soak test: generate for a long time and check that memory, threads and file handles stay flat.

    python benchmarks/soak.py build/shapes64 --frames 100000 [--async] [--json soak.json]

Resident memory is sampled after warm-up and every `--every` frames; the report
gives start, end, max and the slope over the second half (growth per 10k frames).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time

import numpy as np


def open_files() -> int:
    try:
        return len(os.listdir(f"/proc/{os.getpid()}/fd"))
    except OSError:
        return -1


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def soak(pack: str, frames: int, every: int, use_async: bool, batch: int) -> dict:
    import edge_t2i
    from edge_t2i.runtime import AsyncPipeline

    gen = edge_t2i.load(pack)
    prompts = gen.bank.texts
    for i in range(50):  # warm-up: allocator pools and ORT arenas reach their steady size
        gen.generate([prompts[i % len(prompts)]] * batch, seeds=list(range(batch)))
    start = {"rss_mb": rss_mb(), "threads": threading.active_count(), "fds": open_files()}
    samples = []
    t0 = time.perf_counter()
    worker = AsyncPipeline(gen, latest_wins=False, max_queue=4) if use_async else None
    for i in range(0, frames, batch):
        p = [prompts[(i + k) % len(prompts)] for k in range(batch)]
        if worker is not None:
            worker.submit(p, seeds=list(range(i, i + batch))).result(timeout=30)
        else:
            gen.generate(p, seeds=list(range(i, i + batch)))
        if (i // batch) % max(1, every // batch) == 0:
            samples.append((i, rss_mb()))
    elapsed = time.perf_counter() - t0
    if worker is not None:
        worker.close()
    end = {"rss_mb": rss_mb(), "threads": threading.active_count(), "fds": open_files()}
    half = samples[len(samples) // 2:]
    slope = float(np.polyfit([s[0] for s in half], [s[1] for s in half], 1)[0] * 10_000) if len(half) > 2 else 0.0
    gen.close()
    return {"pack": pack, "frames": frames, "batch": batch, "async": use_async, "seconds": round(elapsed, 1),
            "frames_per_s": round(frames / elapsed, 1), "start": start, "end": end,
            "rss_max_mb": round(max(s[1] for s in samples), 1), "rss_growth_mb": round(end["rss_mb"] - start["rss_mb"], 1),
            "rss_slope_mb_per_10k_frames": round(slope, 3), "backend": gen.choice.backend,
            "precision": gen.choice.precision}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("pack")
    p.add_argument("--frames", type=int, default=100_000)
    p.add_argument("--every", type=int, default=1000, help="sample memory every N frames")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--async", dest="use_async", action="store_true", help="go through AsyncPipeline")
    p.add_argument("--json")
    a = p.parse_args()
    r = soak(a.pack, a.frames, a.every, a.use_async, a.batch)
    print(json.dumps(r, indent=2))
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(r, fh, indent=2)
    ok = r["rss_growth_mb"] < 20 and r["end"]["threads"] == r["start"]["threads"] and r["end"]["fds"] == r["start"]["fds"]
    print("soak:", "OK" if ok else "GROWTH DETECTED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
