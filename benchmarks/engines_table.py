"""The markdown table of docs/engines.md from `edge-t2i bench --json` files (one per pack).

    python benchmarks/engines_table.py docs/engines/shapes64.json docs/engines/faces.json ...

Per pack and batch size: what `auto` (edge_t2i.load) chose and its images/s, the fastest raw engine run of the
pack's files (ONNX Runtime or OpenVINO called directly with their default options) and the ratio, the same
against OpenVINO called with static shapes (the model reshaped to the batch, as the runtime compiles it);
INT8 over FP32 through `load`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def rows(path: Path) -> list[str]:
    r = json.loads(path.read_text())
    by = {(x["config"], x["batch"]): x for x in r["rows"]}
    int8 = {v["batch"]: v["ratio"] for v in r.get("int8_vs_fp32", [])}
    out = []
    for v in r.get("verdict", []):
        b = v["batch"]
        auto = by[("auto", b)]
        raw = v["best_raw_config"].removeprefix("raw-").replace(":generator.", " ").removesuffix(".onnx")
        static = (f"{v['best_static']:.0f} | {v['ratio_static']:.2f}x" if "ratio_static" in v else "- | -")
        out.append(f"| {path.stem} | {r['macs_per_image'] / 1e6:.0f} M | {b} | {auto['backend']} {auto['precision']} | "
                   f"{v['auto']:.0f} | {raw} | {v['best_raw']:.0f} | **{v['ratio']:.2f}x** | {static} | "
                   f"{auto['p99_ms'] / auto['p50_ms']:.2f} | {int8.get(b, float('nan')):.2f}x |")
    return out


def main() -> None:
    print("| pack | MAC/image | batch | auto runs | auto img/s | fastest raw engine (defaults) | its img/s | auto / raw | "
          "OpenVINO static img/s | auto / static | auto p99/p50 | INT8 / FP32 (load) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name in sys.argv[1:]:
        print("\n".join(rows(Path(name))))


if __name__ == "__main__":
    main()
