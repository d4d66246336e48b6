"""What a conversion tells a person: report.md + compare.png in the pack, and the closing summary."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from edge_t2i import _io
from edge_t2i.convert.mixed import COMPARE_FILES
from edge_t2i.imaging import image_grid, save_png
from edge_t2i.runtime.manifest import Int8Coverage


def write_report(pack: Path, manifest: dict, extra: list[str] | None = None) -> None:
    """report.md and compare.png (FP32 row above INT8 row, same prompts and seeds); `extra`: more lines of
    markdown at its end (the lexicon's source and licence)."""
    model = manifest["model"]
    width = f", ngf {model['ngf']}" if "ngf" in model else ""
    lines = [f"# edge-t2i pack: {pack.name if not pack.name.startswith('.') else 'generator'}", "",
             f"- model: {model.get('architecture', 'dfgan-edge')}, {model['resolution']} px{width}, nz {model['nz']}, "
             f"{'embedding ' + str(model['cond_dim']) if manifest.get('conditioning') != 'none' else 'unconditional'}",
             f"- models: {', '.join(f'{k}: `{v}`' for k, v in manifest['models'].items())}",
             f"- engines: {', '.join(e['file'] for e in manifest['engines']) or 'none built (no TensorRT/GPU here)'}",
             f"- export parity (ONNX Runtime vs {manifest['export'].get('reference', 'torch')}): max |err| "
             f"{manifest['export']['parity_max_abs_error']:.2e}"]
    if manifest["export"].get("note"):
        lines.append(f"- note: {manifest['export']['note']}")
    g = manifest.get("gate")
    if g and g.get("kind") == "fidelity":
        lines += fidelity_section(manifest)
    elif g:
        lines += ["", "## INT8 quality gate (INT8 vs FP32, same prompts and seeds, paired)", "",
                  f"- result: **{'PASS' if g['passed'] else 'FAIL'}** — {g['reason']}",
                  f"- images: {g['count']} ({g['eval_prompts']} prompts x {g['config']['seeds_per_prompt']} seeds)",
                  "- decision: the upper end of the 95% confidence interval of each paired drop (Agresti-Min "
                  "adjusted Wald) must be at most the margin", "",
                  "| attribute | FP32 | INT8 | drop | 95% CI | lost / gained | margin |", "|---|---|---|---|---|---|---|"]
        for key, d in (g.get("drops") or {}).items():
            margin = g["config"]["max_all_drop" if key == "all" else "max_attribute_drop"]
            lines.append(f"| {key} | {d['fp32']:.1%} | {d['int8']:.1%} | {d['drop']:+.2%} | "
                         f"{d['lower']:+.2%} .. {d['upper']:+.2%} | {d['lost']} / {d['gained']} | {margin:.0%} |")
        lines += ["", *kept_lines(manifest), f"- Q/DQ nodes: {manifest.get('qdq_nodes')}"]
    fp32, int8 = (pack / name for name in COMPARE_FILES)
    if fp32.exists():
        a, b = np.load(fp32), np.load(int8)
        save_png(pack / "compare.png", image_grid(np.concatenate([a, b]), columns=len(a), scale=2))
        fp32.unlink()
        int8.unlink()
        lines += ["", "![FP32 (top) vs INT8 (bottom)](compare.png)"]
    lines += extra or []
    _io.write_text(pack / "report.md", "\n".join(lines) + "\n")


def fidelity_section(manifest: dict) -> list[str]:
    """report.md's gate section for the gate without an oracle (convert/fidelity.py)."""
    g = manifest["gate"]
    lines = ["", "## INT8 quality gate without an oracle (INT8 vs FP32, same embeddings and seeds, paired)", "",
             f"- result: **{'PASS' if g['passed'] else 'FAIL'}**, decided by **{g['decided_by'].upper()}** — {g['reason']}",
             f"- images: {g['count']} ("
             + (f"{g['eval_prompts']} evaluation prompts, disjoint from the {g.get('calib_prompts', '?')} calibration "
                "prompts; " if g.get("eval_prompts") else "an unconditional generator: seeds alone; ")
             + "one seed per image, none used in calibration)",
             "- decision: the lower end of the two-sided 95% confidence interval (Student's t over per-image "
             "values) of the mean PSNR and of the mean SSIM must reach its threshold; the deciding metric is the "
             "one that failed, or, when both pass, the one nearer its threshold"]
    if g.get("note"):
        lines.append(f"- note: {g['note']}")
    lines += distribution_lines(g)
    lines += ["", "| metric | mean | 95% CI | threshold (lower end >=) | |", "|---|---|---|---|---|"]
    for key, m in g["metrics"].items():
        fmt = ".2f" if key == "psnr" else ".4f"
        lines.append(f"| {key.upper()}{' (dB)' if key == 'psnr' else ''} | {m['mean']:{fmt}} | {m['lower']:{fmt}} .. "
                     f"{m['upper']:{fmt}} | {m['threshold']:g} | {'pass' if m['passed'] else 'FAIL'} |")
    return lines + ["", *kept_lines(manifest), f"- Q/DQ nodes: {manifest.get('qdq_nodes')}"]


def kept_lines(manifest: dict) -> list[str]:
    """INT8 coverage and the layers kept in float, each with why (markdown bullets)."""
    lines = [f"- INT8 coverage: {coverage_line(manifest)}"]
    kept = manifest.get("kept_in_float") or []
    if not kept:
        return [*lines, "- layers kept in float: none"]
    return [*lines, "- layers kept in float:", *(f"  - `{k['node']}`: {k.get('why', '')}" for k in kept)]


def coverage_line(manifest: dict) -> str:
    c = manifest.get("int8_coverage")
    return Int8Coverage(**c).describe() if c else "no INT8 model"


def distribution_lines(g: dict) -> list[str]:
    """report.md's lines for the KID check of the fidelity gate (edge_t2i/eval/kid.py), if it ran."""
    d = g.get("distribution")
    if not d:
        return ["- distribution check (KID): not run (--no-kid)"]
    return [f"- distribution check: **{'pass' if d['passed'] else 'FAIL'}** — {d['reason']}"]


def summary(manifest: dict, out: str | os.PathLike[str]) -> str:
    """The one-screen summary printed at the end of `edge-t2i convert`."""
    sizes = {n: f["bytes"] for n, f in manifest["files"].items()}
    rows = [f"pack: {out}  (schema {manifest['schema_version']})"]
    rows += [f"  {n:<32} {b / 1e6:8.2f} MB" for n, b in sizes.items()]
    g = manifest.get("gate")
    if g and g.get("kind") == "fidelity":
        rows.append(f"  gate: {'PASS' if g['passed'] else 'FAIL'} (decided by {g['decided_by'].upper()})  "
                    f"PSNR {g['psnr_db']:.1f} dB  SSIM {g['ssim']:.4f}  (lower 95% bounds "
                    f"{g['metrics']['psnr']['lower']:.1f} dB, {g['metrics']['ssim']['lower']:.4f}; n={g['count']})")
    elif g:
        d = (g.get("drops") or {}).get("all", {})
        ci = f" (drop 95% CI {d['lower']:+.1%} .. {d['upper']:+.1%}, n={d['n']})" if d else ""
        rows.append(f"  gate: {'PASS' if g['passed'] else 'FAIL'}  PSNR {g['psnr_db']:.1f} dB  "
                    f"all-correct FP32 {g['fp32']['all']:.1%} -> INT8 {g['int8']['all']:.1%}{ci}")
        if manifest.get("kept_in_float"):
            rows.append(f"  kept in float: {', '.join(k['node'] for k in manifest['kept_in_float'])}")
    if manifest.get("int8_coverage"):
        rows.append(f"  INT8 coverage: {coverage_line(manifest)}")
    if g and g.get("distribution"):
        rows.append(f"  distribution: {g['distribution']['reason']}")
    rows.append(f"  total {sum(manifest['stage_seconds'].values()):.0f}s  (see report.md, compare.png)")
    return "\n".join(rows)
