"""`edge-t2i generate | info`: run a pack with the torch-free runtime, and say what it holds."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edge_t2i.cli.common import add_prompt_args, claim_image_output, prompts_and_seeds, threads_arg, write_images


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="generate images from a pack (torch-free runtime)")
    p.add_argument("pack", help="pack folder (manifest.json)")
    add_prompt_args(p)
    p.add_argument("--backend", default="auto", help="auto | tensorrt | onnxruntime-cuda | onnxruntime")
    p.add_argument("--precision", default="int8", help="int8 | fp16 | fp32 (default int8)")
    p.add_argument("--unknown", default=None, choices=("error", "nearest", "encode"),
                   help="prompts not in the bank (default: encode if the pack has an encoder, else error)")
    p.add_argument("--threads", type=threads_arg(), default=0, help="CPU threads for ONNX Runtime (0: all cores)")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("info", help="what a pack holds and which backends can run it here",
                       description="Lists the pack's files (size, sha256 check), its bank, its quality gate, and "
                                   "for each backend whether it runs on this machine and why (not).")
    p.add_argument("pack", help="pack folder (manifest.json)")
    p.add_argument("--json", action="store_true", help="print the same as JSON")
    p.set_defaults(func=cmd_info)


def cmd_generate(a: argparse.Namespace) -> None:
    import numpy as np

    from edge_t2i.runtime import load
    from edge_t2i.runtime.manifest import read_manifest

    conditional = read_manifest(a.pack).conditional
    prompts, seeds, as_folder = prompts_and_seeds(a, conditional)
    claim_image_output(a, as_folder, inputs=(a.pack,))
    with load(a.pack, backend=a.backend, precision=a.precision, threads=a.threads) as gen:
        inputs = gen.embeddings_for(prompts, a.unknown) if conditional else None  # None: seeds alone
        batch = min(64, gen.max_batch)  # what the backend can run (a TensorRT profile may end lower)
        images = np.concatenate([gen.generate(None if inputs is None else inputs[i:i + batch], seeds=seeds[i:i + batch])
                                 for i in range(0, len(seeds), batch)])
        out = write_images(a, images, prompts or [""] * len(seeds), seeds, as_folder, inputs=(a.pack,))
        print(f"wrote {len(images)} image(s) to {out} with {gen.choice.backend} {gen.choice.precision} "
              f"({gen.choice.reason})")


def cmd_info(a: argparse.Namespace) -> None:
    from edge_t2i.runtime.info import pack_info

    info = pack_info(a.pack)
    if a.json:
        print(json.dumps(info, indent=2))
        return
    kind = {"none": "unconditional (seeds alone)", "sentence": "prompt-conditioned"}[info["conditioning"]]
    print(f"pack {Path(a.pack)}: schema {info['schema_version']}, {info['architecture']}, {kind}, "
          f"{info['resolution']} px, nz {info['nz']}")
    for name, f in info["files"].items():
        state = "sha256 ok" if f["ok"] else "sha256 MISMATCH" if f["exists"] else "MISSING"
        print(f"  {name:<34} {f['bytes'] / 1e6:8.2f} MB  {state}")
    broken = [name for name, f in info["files"].items() if not f["ok"]]
    encoder = ("yes, with the phrase reader" if info.get("phrase_reader") else "yes") if info["encoder"] else "no"
    if info["conditioning"] != "none":
        print(f"  bank: {info['bank_prompts']} prompts; encoder: {encoder}")
    if info.get("int8_coverage"):
        from edge_t2i.runtime.manifest import Int8Coverage

        print(f"  INT8 coverage: {Int8Coverage(**info['int8_coverage']).describe()}")
    if broken:
        print(f"  the runtime refuses this pack: {', '.join(broken)} altered or missing (re-run edge-t2i convert)")
    if info.get("gate"):
        g = info["gate"]
        if g.get("kind") == "fidelity":  # the gate without an oracle (convert/fidelity.py)
            detail = f"SSIM {g['ssim']:.4f}, decided by {str(g.get('decided_by')).upper()}"
        else:
            detail = f"all FP32 {g['fp32']['all']:.1%} / INT8 {g['int8']['all']:.1%}"
        print(f"  gate: {'PASS' if g['passed'] else 'FAIL'}  PSNR {g['psnr_db']:.1f} dB  {detail}")
    print("  backends here:")
    for row in info["backends"]:
        print(f"    {row['backend']:<18} {row['precision']:<5} {'yes' if row['runs'] else 'no '}  {row['why']}")
