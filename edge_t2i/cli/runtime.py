"""`edge-t2i generate | info | tune`: run a pack with the torch-free runtime, say what it holds and which engines
run it here, and measure them."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edge_t2i.cli.common import add_prompt_args, claim_image_output, prompts_and_seeds, threads_arg, write_images
from edge_t2i.errors import EdgeT2IError, PackError, printable


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="generate images from a pack (torch-free runtime)")
    p.add_argument("pack", help="pack folder (manifest.json)")
    add_prompt_args(p)
    add_engine_args(p)
    p.add_argument("--unknown", default=None, choices=("error", "nearest", "encode"),
                   help="prompts not in the bank (default: encode if the pack has an encoder, else error)")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("info", help="what a pack holds and which backends can run it here",
                       description="Lists the pack's files (size, sha256 check), its bank, its quality gate, and "
                                   "for each backend whether it runs on this machine and why (not).")
    p.add_argument("pack", help="pack folder (manifest.json)")
    p.add_argument("--json", action="store_true", help="print the same as JSON")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("tune", help="check and time every engine that can run a pack here; cache the choice",
                       description="What load(pack) does the first time on a device, done explicitly: every "
                                   "engine candidate renders the pack's reference images (the device check) and is "
                                   "timed at batch 1 and 16; the fastest that passed wins (batches up to 4 go to the "
                                   "batch-1 winner). The result is cached in the user's cache folder "
                                   "($EDGE_T2I_CACHE, else ~/.cache/edge-t2i), so later loads are fast.")
    p.add_argument("pack", help="pack folder (manifest.json)")
    p.add_argument("--precision", default="auto", help="auto | int8 | fp16 | bf16 | fp32 (default auto: all the pack "
                                                         "has)")
    p.add_argument("--threads", type=threads_arg(), default=0, help="CPU threads (0: all cores)")
    p.add_argument("--keep", action="store_true", help="use cached results where there are (default: measure again)")
    p.add_argument("--json", action="store_true", help="print the table as JSON")
    p.set_defaults(func=cmd_tune)


def add_engine_args(p: argparse.ArgumentParser) -> None:
    from edge_t2i.runtime.select import BACKEND_CHOICES, PRECISION_CHOICES

    p.add_argument("--backend", default="auto", help=f"{' | '.join(BACKEND_CHOICES)} (default auto: the fastest "
                                                     "engine here that passes its device check, measured once)")
    p.add_argument("--precision", default="auto", help=f"{' | '.join(PRECISION_CHOICES)} (default auto: the fastest "
                   "that passes its device check, measured once, never an INT8 slower than FP32; bf16: the FP32 "
                   "model in bf16 on OpenVINO)")
    p.add_argument("--threads", type=threads_arg(), default=0, help="CPU threads (0: all cores)")


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
        extra = readings(gen, prompts, a.unknown) if as_folder and conditional else None
        out = write_images(a, images, prompts or [""] * len(seeds), seeds, as_folder, inputs=(a.pack,), extra=extra)
        ran = {min(batch, len(seeds))} | ({len(seeds) % batch} - {0})  # the batch sizes of the calls above
        routes = [next(c for top, c in gen.choices if b <= top) for b in sorted(ran)]
        engines = " / ".join(dict.fromkeys(f"{c.backend} {c.precision}" for c in routes))
        print(f"wrote {len(images)} image(s) to {out} with {engines} ({routes[0].reason})")
        if conditional and not as_folder and gen.bank is not None and prompts[0] not in gen.bank:
            try:
                tell_reading(gen.explain(prompts[0]), took_nearest=a.unknown == "nearest")
            except EdgeT2IError as exc:  # the images are written: what was read is a courtesy
                print(printable(f"(cannot say what the prompt was read as: {exc})"), file=sys.stderr)


def readings(gen, prompts: list[str], unknown: str | None) -> list[dict]:  # noqa: ANN001
    """metadata.jsonl's record of how each prompt was read: "read_as" (the bank prompt itself, the corrected text
    the encoder got, or with --unknown nearest the bank prompt used), "corrected" and "unknown_words" where any."""
    out = []
    for p in prompts:
        r = gen.explain(p)
        used = r["nearest"]["prompt"] if (unknown == "nearest" and r["nearest"]) else r["read_as"]
        out.append({"read_as": used, **({"corrected": r["corrected"]} if r["corrected"] else {}),
                    **({"unknown_words": r["unknown_words"]} if r["unknown_words"] else {})})
    return out


def tell_reading(r: dict, took_nearest: bool = False) -> None:
    """On stderr: what a prompt not in the bank was read as and drawn as (`took_nearest`: --unknown nearest drew
    the closest bank prompt), and the words no bank prompt uses."""
    described = r.get("described", {})
    kinds = [(what, ", ".join(f"{a} -> {b}" for a, b in r["corrected"].items() if (a in described) == lexicon))
             for what, lexicon in (("the pack's lexicon", True), ("spelling corrected", False))]
    fixes = "; ".join(f"{what}: {pairs}" for what, pairs in kinds if pairs)
    near = r["nearest"]
    said = f"read {r['prompt']!r}" + (f" as {r['read_as']!r} ({fixes})" if fixes else "")
    if near and (took_nearest or near["similarity"] >= 0.999):
        said += f"; drawn as the bank prompt {near['prompt']!r}"
    elif near:
        said += f"; drawn as no bank prompt (the closest, {near['prompt']!r}, at cosine {near['similarity']:.2f})"
    print(printable(said), file=sys.stderr)
    unknown = [w for w in r["unknown_words"] if len(w) > 2]  # "at", "on", "of": no word to warn about
    from edge_t2i.data.prompts import prompt_words

    if unknown and not set(prompt_words(r["read_as"])) - set(r["unknown_words"]) - {"a", "an", "the"}:
        print(printable(f"note: no word of {r['prompt']!r} is one the pack's bank uses: the image is the text "
                        "encoder's nearest guess, not something this pack was checked on"), file=sys.stderr)
    elif unknown:
        print(printable(f"note: no bank prompt uses {', '.join(repr(w) for w in unknown[:8])}: the text "
                        "encoder reads such words by meaning; the bank's words are the ones this pack was checked on"),
              file=sys.stderr)


def cmd_info(a: argparse.Namespace) -> None:
    from edge_t2i.runtime.info import pack_info

    info = pack_info(a.pack)
    if a.json:
        print(json.dumps(info, indent=2))
        refuse_unusable(info)
        return
    kind = {"none": "unconditional (seeds alone)", "sentence": "prompt-conditioned"}[info["conditioning"]]
    print(f"pack {Path(a.pack)}: schema {info['schema_version']}, {info['architecture']}, {kind}, "
          f"{info['resolution']} px, nz {info['nz']}")
    for name, f in info["files"].items():
        print(f"  {name:<34} {f['bytes'] / 1e6:8.2f} MB  {'ok' if f['ok'] else f['problem']}")
    encoder = ("yes, with the phrase reader" if info.get("phrase_reader") else "yes") if info["encoder"] else "no"
    if info["conditioning"] != "none":
        print(f"  bank: {info['bank_prompts']} prompts; encoder: {encoder}")
    if info.get("int8_coverage"):
        from edge_t2i.runtime.manifest import Int8Coverage

        print(f"  INT8 coverage: {Int8Coverage(**info['int8_coverage']).describe()}")
    if info.get("gate"):
        print(f"  gate: {describe_gate(info['gate'])}")
    print("  engines here (runtime/select.py order; the device check renders the pack's reference images):")
    print_engines(info["engines"])
    refuse_unusable(info)


def refuse_unusable(info: dict) -> None:
    """PackError (exit 2) for a pack the runtime would refuse: a file fails its checks, or no engine here runs it."""
    broken = [(name, f["problem"]) for name, f in info["files"].items() if not f["ok"]]
    if broken:
        raise PackError(f"the runtime refuses this pack: {broken[0][1]}"
                        + (f" (and {len(broken) - 1} more file(s))" if len(broken) > 1 else ""))
    usable = [r for r in info["engines"] if r["available"] and not r["error"] and (r["check"] or {}).get("passed", True)]
    if not usable:
        tried = [r for r in info["engines"] if r["available"]]
        if not tried:
            raise PackError("no engine here can run this pack (see the list above)")
        first = tried[0]
        why = first["error"] or (first["check"] or {}).get("reason", "")
        raise PackError(f"no engine here runs this pack: {first['candidate']}: {why}")


def describe_gate(g: object) -> str:
    """One line of the gate record a pack carries: shown, never acted on, so any JSON there is shown as best it can
    be (a crafted record must not stop `info`)."""
    try:
        if g.get("kind") == "fidelity":  # type: ignore[attr-defined]  # the gate without an oracle (convert/fidelity.py)
            detail = f"SSIM {g['ssim']:.4f}, decided by {str(g.get('decided_by')).upper()}"  # type: ignore[index]
        else:
            detail = f"all FP32 {g['fp32']['all']:.1%} / INT8 {g['int8']['all']:.1%}"  # type: ignore[index]
        return printable(f"{'PASS' if g['passed'] is True else 'FAIL'}  PSNR {g['psnr_db']:.1f} dB  {detail}")  # type: ignore[index]
    except Exception:  # noqa: BLE001 - any record at all (10**400 overflows a float format)
        return f"(a record this version cannot read: {printable(json.dumps(g, ensure_ascii=True), 80)})"


def print_engines(rows: list[dict], chosen: dict[str, str] | None = None) -> None:
    for r in rows:
        if not r["available"] or r["error"]:
            state, why = "no  ", r["error"] or r["reason"]
        elif r["check"] and not r["check"]["passed"]:
            state, why = "FAIL", r["check"]["reason"]
        else:
            check = r["check"]
            rates = ", ".join(f"b{b} {v:.0f}/s" for b, v in r["images_per_s"].items()) or "not timed (edge-t2i tune)"
            state = "yes "
            why = f"{r['reason']}; PSNR {check['psnr_db']:.1f} dB SSIM {check['ssim']:.4f}; {rates}" if check else r["reason"]
        why = printable(why, 300)  # an engine's message may quote a crafted model's names
        mark = f"  <- {chosen[r['candidate']]}" if chosen and r["candidate"] in chosen else ""
        print(f"    {r['candidate']:<24} {state} {why}{mark}")


def cmd_tune(a: argparse.Namespace) -> None:
    from edge_t2i.runtime.cache import cache_dir
    from edge_t2i.runtime.manifest import read_manifest
    from edge_t2i.runtime.select import Chooser, candidates, check_names

    a.precision = a.precision.lower()
    check_names("auto", a.precision)
    m = read_manifest(a.pack)
    from edge_t2i.runtime.pipeline import load_bank

    bank = load_bank(m)
    chooser = Chooser(m, a.threads, None if bank is None else bank.embeddings,
                      show=lambda line: print(line, file=sys.stderr))  # stdout: the table (or the JSON) alone
    try:
        trials = chooser.trials([c for c in candidates(m, "auto", a.precision) if c.engine != "torch"], tune=True,
                                force=not a.keep)
        routes = chooser.routes(trials, tune=True)
    finally:
        chooser.close()
    chosen = {}
    for i, r in enumerate(routes):
        span = f"batch 1-{r.max_batch}" if i == 0 and len(routes) > 1 else \
            (f"batch {routes[0].max_batch + 1}+" if i else "every batch")
        chosen[r.trial.candidate.name] = f"chosen for {span}"
    if a.json:
        print(json.dumps({"engines": [t.as_dict() for t in trials], "chosen": chosen}, indent=2))
        return
    print(f"engines for {a.pack} here (images/s measured at batch 1 and 16, {a.threads or 'all'} threads):")
    print_engines([t.as_dict() for t in trials], chosen)
    where = cache_dir()
    print(f"cached in {where / 'tune-v1.json'}" if where else "not cached ($EDGE_T2I_CACHE=off)")
