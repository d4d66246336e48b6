"""The one place that chooses which engine runs a pack here: `candidates` lists every (engine, precision)
with whether it can run on this machine and why; `choose` takes the fastest one that passed its device
check (runtime/verify.py), measured once per pack and device (runtime/tuning.py). `load`, `edge-t2i info`,
`edge-t2i tune` and `edge-t2i bench` all go through here.

Engines, in their order before anything is measured: a TensorRT engine built for this GPU, ONNX Runtime's
CUDA provider, OpenVINO on an Intel GPU or NPU, ONNX Runtime on the CPU (with the pack's CPU variant where
this CPU has the flags it needs), OpenVINO on the CPU, and torch (a reference for `bench`, never loaded
by `load`). With `tune` (the default for backend "auto"), every candidate that runs here is checked and
timed at batch 1 and 16; batches up to ROUTE_SPLIT go to the batch-1 winner, larger ones to the batch-16
winner. The fastest verified candidate wins whatever its precision, so INT8 is never chosen where it is
slower than FP32.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from edge_t2i.errors import BackendError, EdgeT2IError, MissingExtraError, PackError, did_you_mean
from edge_t2i.runtime import backends, cpu
from edge_t2i.runtime.backends.base import TUNE_BATCHES, Backend, IOSpec
from edge_t2i.runtime.backends.openvino import cpu_default_precision
from edge_t2i.runtime.manifest import PRECISIONS, Manifest
from edge_t2i.runtime.packfile import read_model, read_verified
from edge_t2i.runtime.tuning import TuneCache, key, measure_rate, pack_digest
from edge_t2i.runtime.verify import Reference, Verdict, check_engine, load_reference, thresholds

log = logging.getLogger("edge_t2i.runtime")
ENGINES = ("tensorrt", "onnxruntime-cuda", "openvino-gpu", "openvino-npu", "onnxruntime", "openvino", "torch")
BACKEND_CHOICES = ("auto", *ENGINES[:-1])
PRECISION_CHOICES = ("auto", *PRECISIONS, "bf16")  # bf16: the FP32 model run in bf16 (OpenVINO on a bf16 CPU)
ROUTE_SPLIT = 4


@dataclass(frozen=True)
class Candidate:
    """One way to run the pack: `engine` (ENGINES) at `precision`, from pack file `file`; `available`:
    whether it can run on this machine, `reason`: why (not)."""

    engine: str
    precision: str
    file: str | None
    available: bool
    reason: str

    @property
    def name(self) -> str:
        return f"{self.engine}-{self.precision}"


def input_dims(manifest: Manifest) -> dict[str, int]:
    """Feature size of each generator input: {"z": nz} (+ "embedding": d for a sentence-conditioned pack)."""
    return {t.name: int(t.shape[1]) for t in manifest.inputs}


def io_spec(manifest: Manifest) -> IOSpec:
    return IOSpec(input_dims(manifest), (manifest.channels, manifest.resolution, manifest.resolution))


def check_names(backend: str, precision: str) -> None:
    """Raises BackendError naming the closest valid name for an unknown backend or precision (names are lower case:
    pass `backend.lower()` to accept "OpenVINO")."""
    for value, choices, what in ((backend, BACKEND_CHOICES, "backend"), (precision, PRECISION_CHOICES, "precision")):
        if not isinstance(value, str):
            raise BackendError(f"{what} must be a name, one of {', '.join(choices)}; got {type(value).__name__}")
        if value not in choices:
            raise BackendError(did_you_mean(value, choices, what))


def candidates(manifest: Manifest, backend: str = "auto", precision: str = "auto") -> list[Candidate]:
    """Every way to run the pack that `backend` and `precision` ("auto" or a name) allow, in the order used
    before measurement, each with whether it can run here and why. Raises BackendError (unknown name)."""
    check_names(backend, precision)
    precisions = [p for p in ("int8", "fp16", "bf16", "fp32") if precision in ("auto", p)]
    out = []
    for engine in ENGINES:
        if backend in ("auto", engine) and (engine != "torch" or backend == "auto"):
            out += [c for p in precisions if (c := _candidate(manifest, engine, p, backend == engine)) is not None]
    return out


def _candidate(manifest: Manifest, engine: str, precision: str, named: bool = False) -> Candidate | None:
    """The candidate, or None where listing it would only be noise (no such model; an OpenVINO GPU/NPU that is
    not here, unless `named`: asked for by name, it is listed with the reason it cannot run). "bf16" is the
    FP32 model compiled by OpenVINO for a CPU with native bf16 (AMX-BF16, AVX-512 BF16): listed for "openvino"."""
    if precision == "bf16":
        return _bf16_candidate(manifest) if engine == "openvino" else None
    has_model = precision in manifest.models
    if engine == "tensorrt":
        from edge_t2i.runtime.backends.tensorrt import find_engine

        if not any(e.precision == precision for e in manifest.engines):
            return (Candidate(engine, precision, None, False, f"the pack has no {precision} TensorRT engine "
                              "(edge-t2i convert --engine on the device)") if has_model else None)
        entry, why = find_engine(manifest.engines, precision)
        return Candidate(engine, precision, entry.file if entry else None, entry is not None, why)
    if not has_model:
        return None
    model = manifest.models[precision]
    if engine == "torch":
        return (Candidate(engine, precision, None, False, "a reference for edge-t2i bench --checkpoint, "
                          "never chosen by load") if precision == "fp32" else None)
    if engine == "onnxruntime-cuda":
        from edge_t2i.runtime.backends.onnxruntime import available_providers

        cuda = "CUDAExecutionProvider" in available_providers()
        return Candidate(engine, precision, model, cuda, "ONNX Runtime CUDA provider" if cuda else
                         "ONNX Runtime has no CUDA provider here (pip install onnxruntime-gpu)")
    if engine == "onnxruntime":
        file, note = cpu_model_for(manifest, precision)
        return Candidate(engine, precision, file, True, f"ONNX Runtime on the CPU{note}")
    return _openvino_candidate(engine, precision, model, named)


def _openvino_candidate(engine: str, precision: str, model: str, named: bool) -> Candidate | None:
    from edge_t2i.runtime.backends.openvino import available_devices, import_openvino

    device = {"openvino": "CPU", "openvino-gpu": "GPU", "openvino-npu": "NPU"}[engine]
    try:
        import_openvino()
    except MissingExtraError:
        return (Candidate(engine, precision, model, False, "OpenVINO is not installed "
                          "(pip install 'edge-t2i[openvino]')") if device == "CPU" or named else None)
    here = available_devices()
    if not any(d == device or d.startswith(device + ".") for d in here):
        return (Candidate(engine, precision, model, False, f"OpenVINO has no {device} device here (it has: "
                          f"{', '.join(here) or 'none'})") if device == "CPU" or named else None)
    hint = " at f32" if precision == "fp32" else ""
    return Candidate(engine, precision, model, True, f"OpenVINO on the {device}{hint}")


def _no_bf16(manifest: Manifest, backend: str) -> EdgeT2IError:
    """Why no candidate runs bf16 here, as the error to raise."""
    from edge_t2i.runtime.backends.openvino import cpu_has_bf16, import_openvino

    if backend not in ("auto", "openvino"):
        return BackendError(f"bf16 runs the FP32 model on OpenVINO on the CPU, not on {backend}: pass "
                            "--backend openvino (or auto), or another precision")
    if "fp32" not in manifest.models:
        return PackError("bf16 runs the pack's FP32 model, and this pack has none")
    try:
        import_openvino()
    except MissingExtraError:
        return MissingExtraError("bf16 runs the FP32 model on OpenVINO, which is not installed: "
                                 "pip install 'edge-t2i[openvino]'")
    if not cpu_has_bf16():
        return BackendError("bf16 needs a CPU that computes it natively (AMX-BF16 or AVX-512 BF16); this one does not")
    return BackendError("bf16: OpenVINO has no CPU device here")


def _bf16_candidate(manifest: Manifest) -> Candidate | None:
    if "fp32" not in manifest.models:
        return None
    fp32 = _openvino_candidate("openvino", "fp32", manifest.models["fp32"], False)
    if fp32 is None or not fp32.available:
        return None
    from edge_t2i.runtime.backends.openvino import cpu_has_bf16

    if not cpu_has_bf16():
        return None
    return Candidate("openvino", "bf16", manifest.models["fp32"], True,
                     "OpenVINO on the CPU, the FP32 model in bf16 (held to the INT8 model's device check)")


def cpu_model_for(manifest: Manifest, precision: str) -> tuple[str, str]:
    """The pack file ONNX Runtime runs on this CPU, and a note on why: the pack's CPU variant of `precision`
    where this CPU has one of the flags it requires (runtime/cpu.py), else the pack's model."""
    variant = manifest.cpu_variants.get(precision)
    if variant is None:
        return manifest.models[precision], ""
    have = [f for f in variant.requires_any if f in cpu.cpu_flags()]
    if not have:
        return manifest.models[precision], (f" ({precision}; this CPU lacks {'/'.join(variant.requires_any)} "
                                             f"for {variant.file})")
    return variant.file, f" ({variant.file}: this CPU has {have[0]})"


def create(manifest: Manifest, cand: Candidate, threads: int = 0) -> Backend:
    """Load `cand` (after checking its file's sha256) with the pack's IO checks set.

    Raises: BackendError (it cannot load here), MissingExtraError, PackError (file missing or altered)."""
    if not cand.available or cand.file is None:
        raise BackendError(f"cannot use {cand.name}: {cand.reason}")
    # runs from these verified bytes, never re-opened by path; an ONNX model is scanned for external data
    data = read_verified(manifest, cand.file) if cand.engine == "tensorrt" else read_model(manifest, cand.file)
    if cand.engine == "tensorrt":
        entry = next(e for e in manifest.engines if e.file == cand.file)
        b = backends.create("tensorrt", engine=data, label=cand.file, precision=cand.precision,
                            input_dims=input_dims(manifest),
                            output_shape=(3, manifest.resolution, manifest.resolution), max_batch=entry.max_batch)
    elif cand.engine.startswith("onnxruntime"):
        b = backends.create("onnxruntime", model=data, label=cand.file, precision=cand.precision,
                            device="cuda" if cand.engine.endswith("cuda") else "cpu", threads=threads)
    else:
        device = {"openvino": "CPU", "openvino-gpu": "GPU", "openvino-npu": "NPU"}[cand.engine]
        hint = {"fp32": "f32", "bf16": "bf16"}.get(cand.precision) if device == "CPU" else None
        if hint == "bf16" and cpu_default_precision() == "bf16":
            hint = None  # the CPU computes bf16 by default: compile as a program calling OpenVINO directly would
        b = backends.create("openvino", model=data, label=cand.file, precision=cand.precision, device=device,
                            threads=threads,
                            precision_hint=hint, cache_key=manifest.files[cand.file] + (hint or cand.precision))
        if cand.precision == "bf16" and getattr(b, "hint", "bf16") != "bf16":
            b.close()
            raise BackendError("OpenVINO runs no layer of this model in bf16 here: it is openvino-fp32")
    b.io = io_spec(manifest)
    return b


@dataclass
class Trial:
    """What `choose` learnt of one candidate: its device check and images/s per batch size (from the cache or
    measured now); `error` if it could not load."""

    candidate: Candidate
    verdict: Verdict | None = None
    rates: dict[int, float] = field(default_factory=dict)
    error: str = ""
    cached: bool = False

    @property
    def usable(self) -> bool:
        return self.candidate.available and not self.error and self.verdict is not None and self.verdict.passed

    def as_dict(self) -> dict:
        c = self.candidate
        return {"candidate": c.name, "engine": c.engine, "precision": c.precision, "file": c.file,
                "available": c.available, "reason": c.reason, "error": self.error,
                "check": self.verdict.as_dict() if self.verdict else None,
                "images_per_s": {str(b): round(r, 1) for b, r in self.rates.items()}, "cached": self.cached}


def fastest(trials: list[Trial], batch: int) -> Trial:
    """The trial with the most images/s at `batch` (the first of equals, in candidate order)."""
    return max(trials, key=lambda t: t.rates.get(batch, 0.0))


@dataclass
class Route:
    """Batches up to `max_batch` go to `backend` (`trial` says why)."""

    max_batch: int
    backend: Backend
    trial: Trial


class Chooser:
    """One choice for one pack: candidates -> device checks -> (measured) routes. See the module docstring."""

    def __init__(self, manifest: Manifest, threads: int = 0, bank_embeddings: object = None,
                 show: Callable[[str], None] = log.info):
        self.manifest, self.threads, self.show = manifest, threads, show
        self.pack = pack_digest(manifest)
        self.cache = TuneCache.open()
        self._bank = bank_embeddings
        self._reference: Reference | None = None
        self.open: dict[str, Backend] = {}   # candidate name -> loaded backend (closed unless routed)

    def reference(self) -> Reference:
        if self._reference is None:
            self._reference = load_reference(self.manifest, self._bank)  # type: ignore[arg-type]
        return self._reference

    def _key(self, trial: Trial, kind: str, batch: int = 0) -> str:
        c = trial.candidate
        return key(self.pack, c.engine, c.precision, kind, self.threads, batch, c.file or "",
                   self.manifest.files.get(c.file or "", ""))

    def _backend(self, trial: Trial) -> Backend | None:
        name = trial.candidate.name
        if name not in self.open and not trial.error:
            try:
                self.open[name] = create(self.manifest, trial.candidate, self.threads)
            except (BackendError, MissingExtraError) as exc:
                trial.error = str(exc)
        return self.open.get(name)

    def _drop(self, name: str) -> None:
        backend = self.open.pop(name, None)
        if backend is not None:
            backend.close()

    def check(self, trial: Trial) -> None:
        """The device check of `trial`, from the cache (only an entry whose verdict agrees with its own figures
        and thresholds, none below the gate's) or run now (loading the engine)."""
        k = self._key(trial, "check")
        hit = self.cache.get(k)
        floor = thresholds(self.manifest)
        if hit is not None and hit.get("min_psnr_db", -1) >= floor[0] and hit.get("min_ssim", -1) >= floor[1] \
                and hit["passed"] == (hit["psnr_db"] >= hit["min_psnr_db"] and hit["ssim"] >= hit["min_ssim"]):
            trial.verdict = Verdict(hit["passed"], hit["psnr_db"], hit["ssim"], hit["reason"],
                                    hit["min_psnr_db"], hit["min_ssim"])
            trial.cached = True
            return
        backend = self._backend(trial)
        if backend is None:
            return
        trial.verdict = check_engine(backend, self.reference(), trial.candidate.precision)
        self.cache.put(k, {"kind": "check", **trial.verdict.as_dict()})

    def measure(self, trial: Trial, batches: tuple[int, ...], force: bool = False, cached_only: bool = False) -> None:
        """Images/s of `trial` at each of `batches`, from the cache or timed now (`cached_only`: never timed)."""
        for b in batches:
            k = self._key(trial, "pixels-rate", b)  # images/s of Backend.pixels (a plain "rate" timed infer)
            hit = None if force else self.cache.get(k)
            if hit is None and cached_only:
                continue
            if hit is None:
                backend = self._backend(trial)
                if backend is None or (backend.max_batch is not None and b > backend.max_batch):
                    continue
                try:
                    rate = measure_rate(backend.pixels, input_dims(self.manifest), b)  # what generate runs
                except EdgeT2IError as exc:
                    trial.error = str(exc)
                    return
                hit = {"kind": "rate", "images_per_s": rate}
                self.cache.put(k, hit)
            trial.rates[b] = float(hit["images_per_s"])

    def trials(self, cands: list[Candidate], tune: bool, force: bool = False,
               batches: tuple[int, ...] = TUNE_BATCHES) -> list[Trial]:
        """Check (and with `tune`, time) the available candidates; without `tune`, stop at the first verified one.
        Only the fastest so far at some batch size stays loaded (engines hold GPU memory and threads)."""
        trials = [Trial(c) for c in cands]
        fresh = [t for t in trials if t.candidate.available]
        tune = tune and len(fresh) > 1
        if force:
            for t in fresh:
                self.cache.entries.pop(self._key(t, "check"), None)
        if tune and any(self.cache.get(self._key(t, "check")) is None for t in fresh):
            kept = ("measured again: edge-t2i tune" if force else "once: the result is cached") \
                if self.cache.path is not None else "$EDGE_T2I_CACHE=off: not cached"
            self.show(f"tuning {len(fresh)} engines for this pack here ({kept})")
        for t in fresh:
            self.check(t)
            if t.usable and tune:
                self.measure(t, batches, force)
                best = {fastest([u for u in fresh if u.usable], b).candidate.name for b in batches}
                for name in [n for n in self.open if n not in best]:
                    self._drop(name)
            elif t.usable:
                break  # without measuring, the first verified candidate in order wins
            else:
                self._drop(t.candidate.name)
        self.cache.save()
        return trials

    def close(self) -> None:
        for name in list(self.open):
            self._drop(name)

    def routes(self, trials: list[Trial], tune: bool) -> list[Route]:
        """Batch sizes up to ROUTE_SPLIT (and the first route's engine limit) -> the batch-1 winner, the rest ->
        the batch-16 winner. A winner that will not load here (out of memory, a busy device) gives way to the next.
        Raises: BackendError (no verified candidate loads)."""
        while True:
            usable = [t for t in trials if t.usable]
            if not usable:
                raise BackendError("no engine can run this pack here: " + "; ".join(
                    f"{t.candidate.name}: {t.error or (t.verdict.reason if t.verdict else t.candidate.reason)}"
                    for t in trials))
            if not tune or not all(t.rates for t in usable):
                winners = [usable[0]] * len(TUNE_BATCHES)
            else:
                winners = [fastest(usable, b) for b in TUNE_BATCHES]
            distinct = [w for i, w in enumerate(winners) if all(w is not v for v in winners[:i])]
            loaded = [(w, self._backend(w)) for w in distinct]
            if all(b is not None for _, b in loaded):
                break  # else a winner failed to load: its trial.error is set, choose again
        first, last = loaded[0], loaded[-1]
        routes = [Route(2**31, last[1], last[0])]  # type: ignore[arg-type]
        if last[0] is not first[0]:
            routes.insert(0, Route(min(ROUTE_SPLIT, first[1].max_batch or ROUTE_SPLIT), first[1], first[0]))  # type: ignore[union-attr,arg-type]
        keep = {r.trial.candidate.name for r in routes}
        for name in [n for n in self.open if n not in keep]:
            self._drop(name)
        return routes


def choose(manifest: Manifest, backend: str = "auto", precision: str = "auto", threads: int = 0,
           tune: bool | None = None, bank_embeddings: object = None,
           show: Callable[[str], None] = log.info) -> tuple[list[Route], list[Trial]]:
    """The routes `load` runs (batch-size range -> loaded backend) and what was learnt of every candidate.

    `tune` None: measure when `backend` or `precision` is "auto" (a named engine still gets its fastest precision)
    unless $EDGE_T2I_TUNE is "0".
    Raises: BackendError (unknown names; nothing can run or pass its check here), PackError (the pack has
    no model of `precision`, or a file fails its sha256), MissingExtraError (a named engine not installed)."""
    cands = candidates(manifest, backend, precision)
    if precision == "bf16" and not cands:
        raise _no_bf16(manifest, backend)
    if precision != "auto" and not cands:
        raise PackError(f"the pack has no {precision} model (has: {', '.join(sorted(manifest.models))})")
    runnable = [c for c in cands if c.engine != "torch"]
    if backend != "auto" and not any(c.available for c in runnable):
        why = "; ".join(dict.fromkeys(c.reason for c in runnable)) or "the pack has nothing it can run"
        if backend == "openvino" and "not installed" in why:
            raise MissingExtraError(f"cannot use OpenVINO: {why}")
        raise BackendError(f"cannot use {backend}: {why}")
    if tune is None:  # measure wherever there is a choice to make: engines, precisions or both
        tune = (backend == "auto" or precision == "auto") and os.environ.get("EDGE_T2I_TUNE", "1") != "0"
    chooser = Chooser(manifest, threads, bank_embeddings, show)
    try:
        trials = chooser.trials(runnable, tune)
        return chooser.routes(trials, tune), trials
    except BaseException:
        chooser.close()
        raise
