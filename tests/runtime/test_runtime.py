"""The torch-free runtime on a tiny pack."""

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import edge_t2i
from edge_t2i.errors import BackendError, InputError, PackError
from edge_t2i.runtime import AsyncPipeline, PromptBank, load, noise
from edge_t2i.runtime.bank import slerp
from tests.conftest import BANK_PROMPTS

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def gen(pack_dir):
    with load(pack_dir, precision="int8", threads=1) as g:
        yield g


def test_import_and_generate_without_torch(pack_dir):
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torch' or name.startswith('torch.'):\n"
        "            raise ImportError('torch is blocked in this test')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import edge_t2i\n"
        f"g = edge_t2i.load({str(pack_dir)!r})\n"
        f"img = g.generate({BANK_PROMPTS[0]!r}, seeds=[0, 1])\n"
        "assert img.shape == (2, 32, 32, 3), img.shape\n"
        "assert 'torch' not in sys.modules\n"
        "print('ok', g.choice.backend)\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() in (["ok", "onnxruntime"], ["ok", "openvino"])  # whichever measured faster here


def test_auto_takes_the_fastest_verified_engine_and_says_why(gen):
    assert "device check: PSNR" in gen.choice.reason and "measured" in gen.choice.reason
    names = [t.candidate.name for t in gen.trials]
    assert "onnxruntime-int8" in names and {t.candidate.precision for t in gen.trials} == {"int8"}
    assert any(not t.candidate.available and "TensorRT" in t.candidate.reason for t in gen.trials)
    usable = [t for t in gen.trials if t.usable]
    assert gen.routes[0].trial is max(usable, key=lambda t: t.rates[1])  # batch 1: its own winner
    assert gen.routes[-1].trial is max(usable, key=lambda t: t.rates[16])


def test_generate_shapes_rgb_bgr_and_seed_reproducibility(gen):
    a = gen.generate(BANK_PROMPTS[:2], seeds=[5, 6])
    assert a.shape == (2, 32, 32, 3) and a.dtype == np.uint8
    assert np.array_equal(a, gen.generate(BANK_PROMPTS[:2], seeds=[5, 6]))
    assert np.array_equal(gen.generate(BANK_PROMPTS[:2], seeds=[5, 6], bgr=True), a[..., ::-1])
    grid = gen.generate(BANK_PROMPTS[0], seeds=range(4))
    assert grid.shape[0] == 4 and not np.array_equal(grid[0], grid[1])


def test_new_packs_use_the_portable_noise_and_old_ones_numpys(pack_dir, tmp_path):
    import json
    import shutil

    from edge_t2i.runtime.noise import LEGACY, PORTABLE

    with edge_t2i.load(pack_dir, precision="fp32") as gen:
        assert gen.manifest.noise == PORTABLE
        a = gen.generate(BANK_PROMPTS[0], seeds=[3], raw=True)
        assert np.array_equal(a, gen.generate(BANK_PROMPTS[0], z=noise([3], gen.nz, PORTABLE), raw=True))
    old = tmp_path / "old"
    shutil.copytree(pack_dir, old)
    manifest = json.loads((old / "manifest.json").read_text())
    del manifest["noise"]  # what schema-1 packs look like
    manifest["schema_version"] = 1
    (old / "manifest.json").write_text(json.dumps(manifest))
    with edge_t2i.load(old, precision="fp32") as gen:
        assert gen.manifest.noise == LEGACY
        b = gen.generate(BANK_PROMPTS[0], seeds=[3], raw=True)
        z = np.random.default_rng(3).standard_normal(gen.nz, dtype=np.float32)[None]
        assert np.array_equal(b, gen.generate(BANK_PROMPTS[0], z=z, raw=True)) and not np.array_equal(a, b)


def test_ort_fp32_matches_torch_fp32(pack_dir, checkpoint_dir):
    import torch

    from edge_t2i.models.checkpoint import load_generator

    emb = PromptBank.load(pack_dir / "bank.safetensors").embeddings[:4]
    z = noise([0, 1, 2, 3], 100)
    with load(pack_dir, precision="fp32") as g:
        ours = g.generate(emb, z=z, raw=True)
    with torch.no_grad():
        ref = load_generator(checkpoint_dir)(torch.from_numpy(z), torch.from_numpy(emb)).numpy()
    assert np.abs(ours - ref).max() <= 1e-3


def test_bank_exact_lookup_normalises_case_and_whitespace(pack_dir):
    bank = PromptBank.load(pack_dir / "bank.safetensors")
    assert len(bank) == len(BANK_PROMPTS) and bank.dim == 384
    e = bank.lookup("  A small RED circle   in the top-left ")
    assert np.array_equal(e, bank.embeddings[0])


def test_bank_nearest_and_policies(pack_dir):
    bank = PromptBank.load(pack_dir / "bank.safetensors")
    match = bank.nearest(bank.embeddings[3] + 0.01)
    assert match.prompt == BANK_PROMPTS[3] and match.similarity > 0.95
    with pytest.raises(InputError, match="not in the bank"):
        bank.lookup("a small red circle in the top left corner", "error")
    near = bank.lookup("small red circle top-left", "nearest")
    assert np.array_equal(near, bank.embeddings[0])
    with pytest.raises(InputError, match="did you mean"):
        bank.lookup("x", "nearset")


def test_blend_is_spherical_and_ends_at_the_prompts(pack_dir):
    bank = PromptBank.load(pack_dir / "bank.safetensors")
    a, b = BANK_PROMPTS[0], BANK_PROMPTS[1]
    ea, eb = bank.lookup(a), bank.lookup(b)
    assert np.allclose(bank.blend(a, b, 0.0), ea / np.linalg.norm(ea), atol=1e-3)
    assert np.allclose(bank.blend(a, b, 1.0), eb / np.linalg.norm(eb), atol=1e-3)
    mid = bank.blend(a, b, 0.5)
    assert abs(np.linalg.norm(mid) - 1.0) < 1e-5
    assert abs(float(mid @ ea) / np.linalg.norm(ea) - float(mid @ eb) / np.linalg.norm(eb)) < 1e-3
    with pytest.raises(InputError):
        bank.blend(a, b, 1.5)
    assert np.allclose(slerp(ea, ea, 0.3), ea / np.linalg.norm(ea), atol=1e-5)


def test_bad_inputs_give_clear_errors(gen):
    with pytest.raises(InputError, match="not in the bank"):
        gen.generate("a dragon", unknown="error")
    with pytest.raises(InputError, match="shape"):
        gen.generate(np.zeros((1, 100), np.float32))
    bad = np.zeros((1, 384), np.float32)
    bad[0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        gen.generate(bad)
    with pytest.raises(InputError, match="batch size 0"):
        gen.generate([])
    with pytest.raises(InputError, match="exceeds"):
        gen.generate(np.zeros((1000, 384), np.float32))
    with pytest.raises(InputError, match="seeds"):
        gen.generate(BANK_PROMPTS[:2], seeds=[1, 2, 3])
    with pytest.raises(InputError, match="0..2\\^64-1"):
        gen.generate(BANK_PROMPTS[0], seeds=[-1])


def test_unknown_backend_and_precision_say_did_you_mean(pack_dir):
    with pytest.raises(BackendError, match="did you mean 'onnxruntime'"):
        load(pack_dir, backend="onnxruntim")
    with pytest.raises(BackendError, match="did you mean 'int8'"):
        load(pack_dir, precision="int9")
    with pytest.raises(PackError, match="no fp16 model"):
        load(pack_dir, precision="fp16")
    with pytest.raises(BackendError, match="TensorRT"):
        load(pack_dir, backend="tensorrt")


@pytest.fixture
def pack_copy(pack_dir, tmp_path):
    return Path(shutil.copytree(pack_dir, tmp_path / "pack"))


def test_altered_or_missing_file_is_refused(pack_copy):
    with open(pack_copy / "generator.fp32.onnx", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(PackError, match="bytes, the manifest declares"):  # refused from its size alone
        load(pack_copy, precision="fp32")
    with open(pack_copy / "generator.fp32.onnx", "r+b") as fh:  # the declared size again, one byte changed
        fh.truncate(fh.seek(0, 2) - 1)
        fh.seek(100)
        byte = fh.read(1)
        fh.seek(100)
        fh.write(bytes([byte[0] ^ 1]))
    with pytest.raises(PackError, match="sha256"):  # whatever the cache says of the intact pack's engines
        load(pack_copy, precision="fp32")
    (pack_copy / "bank.safetensors").unlink()
    with pytest.raises(PackError, match="missing"):
        load(pack_copy, precision="fp32")


def edit_manifest(pack: Path, change) -> None:
    m = json.loads((pack / "manifest.json").read_text())
    change(m)
    (pack / "manifest.json").write_text(json.dumps(m))


@pytest.mark.parametrize("change,msg", [
    (lambda m: m.update(schema_version=99), "newer than this runtime"),
    (lambda m: m["models"].update(int8="../../etc/passwd"), "not a plain file name"),
    (lambda m: m["models"].update(int8="/etc/passwd"), "not a plain file name"),
    (lambda m: m["model"].update(nz=10**9), "integer in"),
    (lambda m: m["io"]["inputs"][0].update(shape=["batch", "lots"]), "integer in"),
    (lambda m: m.update(files="all good"), "files"),
    (lambda m: m["models"].update(int8="other.onnx"), "lists no sha256"),
])
def test_crafted_manifests_are_rejected(pack_copy, change, msg):
    edit_manifest(pack_copy, change)
    with pytest.raises(PackError, match=msg):
        load(pack_copy)


def test_eight_threads_get_the_same_images_as_one(gen):
    prompts = BANK_PROMPTS
    expected = {s: gen.generate(prompts[s % len(prompts)], seeds=[s]) for s in range(16)}
    errors: list[str] = []

    def worker(offset: int) -> None:
        for i in range(12):
            s = (offset + i) % 16
            if not np.array_equal(gen.generate(prompts[s % len(prompts)], seeds=[s]), expected[s]):
                errors.append(f"seed {s}")

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_async_generator_never_blocks_and_latest_wins(gen):
    with AsyncPipeline(gen, latest_wins=True) as ag:
        handles = [ag.submit(BANK_PROMPTS[i % 8], seeds=[i]) for i in range(20)]
        last = handles[-1].result(timeout=30)
        assert np.array_equal(last, gen.generate(BANK_PROMPTS[19 % 8], seeds=[19]))
        assert any(h.dropped for h in handles[:-1])  # stale requests were dropped
        assert ag.latest() is not None and ag.latencies and all(x > 0 for x in ag.latencies)
        dropped = next(h for h in handles if h.dropped)
        with pytest.raises(InputError, match="dropped"):
            dropped.result(timeout=1)


def test_async_generator_queue_mode_keeps_requests(gen):
    with AsyncPipeline(gen, latest_wins=False, max_queue=8) as ag:
        handles = [ag.submit(BANK_PROMPTS[0], seeds=[i]) for i in range(5)]
        assert all(h.result(timeout=30).shape == (1, 32, 32, 3) for h in handles)


def test_public_api_is_small():
    assert set(edge_t2i.__all__) == {"AsyncPipeline", "EdgeT2IError", "Pipeline", "PromptBank", "load", "__version__"}
    assert all(hasattr(edge_t2i, name) for name in edge_t2i.__all__)


def test_old_runtime_names_still_resolve_with_a_warning():
    with pytest.warns(DeprecationWarning, match="Pipeline"):
        assert edge_t2i.Generator is edge_t2i.Pipeline
    with pytest.warns(DeprecationWarning, match="AsyncPipeline"):
        assert edge_t2i.AsyncGenerator is edge_t2i.AsyncPipeline
    with pytest.raises(AttributeError):
        edge_t2i.NoSuchThing  # noqa: B018
