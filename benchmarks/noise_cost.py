"""What a seed's z costs: the portable splitmix64-polar-v1 noise against NumPy's PCG64, interleaved.

    python benchmarks/noise_cost.py [--nz 100] [--rounds 200]

Each round times both generators once per batch size, alternating, so machine drift hits both alike;
prints the median milliseconds per call and the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time

from edge_t2i.runtime.noise import LEGACY, PORTABLE, noise


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nz", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=200)
    a = ap.parse_args()
    for batch in (1, 16):
        seeds = list(range(1000, 1000 + batch))
        times: dict[str, list[float]] = {PORTABLE: [], LEGACY: []}
        for _ in range(a.rounds):
            for kind in (PORTABLE, LEGACY):
                t0 = time.perf_counter()
                noise(seeds, a.nz, kind)
                times[kind].append(time.perf_counter() - t0)
        med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
        print(f"batch {batch:>2}: {PORTABLE} {med[PORTABLE]:.3f} ms, {LEGACY} {med[LEGACY]:.3f} ms "
              f"({med[PORTABLE] / med[LEGACY]:.1f}x)")


if __name__ == "__main__":
    main()
