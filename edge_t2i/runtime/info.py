"""What a pack holds and which engines can run it on this machine, with each one's device check and, where
measured, its speed (for `edge-t2i info`): the list runtime/select.py chooses from."""

from __future__ import annotations

import os

from edge_t2i.errors import printable
from edge_t2i.runtime.manifest import read_manifest
from edge_t2i.runtime.packfile import check_file
from edge_t2i.runtime.select import TUNE_BATCHES, Chooser, Trial, candidates


def engine_rows(m, problems: dict[str, str], bank: object = None, threads: int = 0) -> list[dict]:  # noqa: ANN001
    """One row per candidate (select.candidates order) of Manifest `m`: whether it runs here, its device check (run
    now where the cache has none) and its measured images/s (cached only: `edge-t2i tune` measures). `intact`:
    file -> why it fails the runtime's file checks, '' if it passes (runtime/packfile.py; a cached verdict is of the
    intact file: an altered one is refused);
    `bank`: the intact bank's embeddings, or None."""
    chooser = Chooser(m, threads, bank, show=lambda _: None)
    rows = []
    try:
        for t in [Trial(c) for c in candidates(m)]:
            if t.candidate.available and t.candidate.file and problems.get(t.candidate.file, "missing"):
                t.error = f"the runtime refuses it: {problems.get(t.candidate.file, 'missing')}"
            elif t.candidate.available:
                try:
                    chooser.check(t)
                except Exception as exc:  # noqa: BLE001 - a broken file: say so in its row
                    t.error = str(exc).splitlines()[0][:300]
                chooser.measure(t, TUNE_BATCHES, cached_only=True)
            rows.append(t.as_dict())
    finally:
        chooser.close()
        chooser.cache.save()
    return rows


def pack_info(pack_dir: str | os.PathLike[str]) -> dict:
    m = read_manifest(pack_dir)
    files: dict[str, dict] = {}
    for name in m.files:
        problem = check_file(m, name)  # what the runtime checks before it uses a file (runtime/packfile.py)
        files[name] = {"bytes": m.file_bytes.get(name, 0), "ok": not problem, "problem": problem}
    bank = None
    if m.bank and files[m.bank]["ok"]:
        from edge_t2i.runtime.bank import PromptBank

        bank = PromptBank.from_pack(m)
    return {"schema_version": m.schema_version, "resolution": m.resolution, "nz": m.nz,
            "conditioning": m.conditioning, "architecture": printable(str(m.model.get("architecture", "dfgan-edge")), 40),
            "files": files, "bank_prompts": len(bank) if bank else 0, "encoder": m.encoder is not None,
            "phrase_reader": bool(m.encoder and "reader" in m.encoder),
            "int8_coverage": m.coverage.as_dict() if m.coverage else None,
            "gate": m.gate or None, "kept_in_float": m.records.get("kept_in_float", []),
            "engines": engine_rows(m, {name: f["problem"] for name, f in files.items()},
                                   None if bank is None else bank.embeddings)}
