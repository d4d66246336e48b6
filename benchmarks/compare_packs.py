"""Speed of two packs' generators on this CPU, interleaved in one process (ONNX Runtime, the model
the runtime would run: INT8 (the u8s8 CPU variant where it applies) and FP32).

    python benchmarks/compare_packs.py OLD_PACK NEW_PACK [--batch 1,16] [--threads 1] [--seconds 6]

Prints images/s end to end (bank lookup, noise, inference, uint8 conversion) per pack, precision
and batch, and NEW / OLD. Same method as `edge-t2i bench` (edge_t2i/bench/runner.py: warm-up, then
0.25 s turns of every configuration in turn), so machine noise hits both packs alike.
"""

from __future__ import annotations

import argparse
import dataclasses

from edge_t2i.bench.runner import _ort_config, measure, rows_from
from edge_t2i.runtime.manifest import read_manifest


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("old")
    p.add_argument("new")
    p.add_argument("--batch", default="1,16", help="comma-separated batch sizes (default 1,16)")
    p.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads (default 1)")
    p.add_argument("--seconds", type=float, default=6.0, help="timed seconds per configuration and batch")
    a = p.parse_args()
    try:
        batches = [int(b) for b in a.batch.split(",")]
    except ValueError:
        raise SystemExit(f"--batch: expected comma-separated integers, got {a.batch!r}") from None
    configs = []
    for label, pack in (("old", a.old), ("new", a.new)):
        manifest = read_manifest(pack)
        for precision in ("int8", "fp32"):
            c = _ort_config(manifest, f"ort-{precision}", a.threads)
            if isinstance(c, str):
                raise SystemExit(f"{pack}: {c}")
            configs.append(dataclasses.replace(c, name=f"{label}-{precision}"))
    measure(configs, batches, a.seconds, warmup=3, show=print)
    rows = {(r["config"], r["batch"]): r for r in rows_from(configs, None, {})}
    print(f"\n{'precision':<10}{'batch':>6}{'old img/s':>12}{'new img/s':>12}{'new/old':>9}")
    for precision in ("int8", "fp32"):
        for b in batches:
            old, new = rows.get((f"old-{precision}", b)), rows.get((f"new-{precision}", b))
            if old is None or new is None:
                print(f"{precision:<10}{b:>6}  (over a pack's batch limit: not measured)")
                continue
            print(f"{precision:<10}{b:>6}{old['images_per_s']:>12.1f}{new['images_per_s']:>12.1f}"
                  f"{new['images_per_s'] / old['images_per_s']:>9.3f}")


if __name__ == "__main__":
    main()
