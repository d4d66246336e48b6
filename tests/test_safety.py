"""Safe by default: no command destroys what is not its own, every fault is one line and exit 2.

Each case here is a fault users of conversion and deployment tools report: an --out that holds
their files, --out equal to (or holding) the input, read-only or full disks, SIGTERM mid-run,
numbers out of range, NaN weights, prompt files with a BOM, CRLF or decomposed Unicode, a
runtime-only install without the extras a command needs.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge_t2i.cli import main
from edge_t2i.errors import CheckpointError, InputError, MissingExtraError, OutputError
from tests.conftest import BANK_PROMPTS, ROOT, make_checkpoint


def one_line_error(capsys: pytest.CaptureFixture, *needles: str) -> str:
    """The captured stderr is exactly one `edge-t2i: error:` line holding every needle."""
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("edge-t2i: error:"), err
    for needle in needles:
        assert needle in err[0], (needle, err[0])
    return err[0]


def convert_args(checkpoint: Path, out: Path, prompt_files: dict[str, Path], *extra: str) -> list[str]:
    return ["convert", str(checkpoint), "--out", str(out), "--prompts", str(prompt_files["bank"]),
            "--calib-prompts", str(prompt_files["calib"]), "--eval-prompts", str(prompt_files["eval"]),
            "--precision", "fp32", "--no-encoder", *extra]


@pytest.fixture
def users_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "assets"
    folder.mkdir()
    (folder / "level1.txt").write_text("the user's level")
    return folder


# ---- data loss -----------------------------------------------------------------------------
def test_convert_refuses_a_folder_of_someone_elses_files(checkpoint_dir, prompt_files, users_folder, capsys):
    assert main(convert_args(checkpoint_dir, users_folder, prompt_files)) == 2
    one_line_error(capsys, "exists and is not a pack", "--force")
    assert (users_folder / "level1.txt").read_text() == "the user's level"
    assert main(convert_args(checkpoint_dir, users_folder, prompt_files, "--force")) == 0  # asked for: replaced
    assert (users_folder / "manifest.json").is_file() and not (users_folder / "level1.txt").exists()


def test_convert_replaces_its_own_pack(checkpoint_dir, prompt_files, tmp_path):
    out = tmp_path / "pack"
    assert main(convert_args(checkpoint_dir, out, prompt_files)) == 0
    first = json.loads((out / "manifest.json").read_text())["created"]
    assert main(convert_args(checkpoint_dir, out, prompt_files)) == 0
    assert json.loads((out / "manifest.json").read_text())["format"] == "edge-t2i pack" and first


def test_out_equal_to_inside_or_holding_the_input_is_refused_even_with_force(checkpoint_dir, prompt_files,
                                                                              tmp_path, capsys):
    ckpt = tmp_path / "models" / "tiny"
    shutil.copytree(checkpoint_dir, ckpt)
    (tmp_path / "models" / "other").mkdir()
    (tmp_path / "models" / "other" / "config.json").write_text("{}")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    for out in (ckpt, ckpt.parent, ckpt / "pack"):
        for force in ((), ("--force",)):
            assert main(convert_args(ckpt, out, prompt_files, *force)) == 2
            one_line_error(capsys, "overlaps the input")
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_the_current_folder_is_never_replaced(tmp_path, monkeypatch, capsys):
    work = tmp_path / "work"
    work.mkdir()
    (work / "notes.txt").write_text("mine")
    monkeypatch.chdir(work)
    for out in (".", str(work), str(tmp_path)):
        for force in ((), ("--force",)):
            assert main(["data", "shapes", "--count", "2", "--out", out, *force]) == 2
            one_line_error(capsys, "current folder")
    assert (work / "notes.txt").read_text() == "mine"


def test_data_shapes_and_generate_refuse_folders_with_other_files(pack_dir, users_folder, tmp_path, capsys):
    assert main(["data", "shapes", "--count", "5", "--out", str(users_folder)]) == 2
    one_line_error(capsys, "exists and is not a dataset")
    prompts = tmp_path / "p.txt"
    prompts.write_text("\n".join(BANK_PROMPTS[:2]) + "\n")
    assert main(["generate", str(pack_dir), "--prompts-file", str(prompts), "--out", str(users_folder)]) == 2
    one_line_error(capsys, "exists and is not a folder of generated images")
    assert sorted(p.name for p in users_folder.iterdir()) == ["level1.txt"]
    # their own earlier output is theirs to replace
    out = tmp_path / "renders"
    for _ in range(2):
        assert main(["generate", str(pack_dir), "--prompts-file", str(prompts), "--out", str(out)]) == 0
    data = tmp_path / "data"
    for _ in range(2):
        assert main(["data", "shapes", "--count", "3", "--out", str(data)]) == 0
    assert len(list(data.glob("*.png"))) == 4  # 3 images + preview.png


def test_train_refuses_a_folder_that_is_not_a_run(users_folder, tmp_path, capsys):
    (tmp_path / "data").mkdir()
    assert main(["train", "--data", str(tmp_path / "data"), "--out", str(users_folder), "--steps", "1"]) == 2
    one_line_error(capsys, "is not a training run")
    assert main(["train", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "data" / "run")]) == 2
    one_line_error(capsys, "overlaps the input")
    assert sorted(p.name for p in users_folder.iterdir()) == ["level1.txt"]


def test_force_never_replaces_a_tree_or_the_home_folder(pack_dir, tmp_path, monkeypatch, capsys):
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    (project / "src" / "main.c").write_text("int main;")
    prompts = tmp_path / "p.txt"
    prompts.write_text(BANK_PROMPTS[0] + "\n")
    assert main(["generate", str(pack_dir), "--prompts-file", str(prompts), "--out", str(project), "--force"]) == 2
    one_line_error(capsys, "holds the folder src", "never a tree")
    home = tmp_path / "home"
    (home / "me").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home / "me"))
    for out in (home / "me", home):
        assert main(["data", "shapes", "--count", "2", "--out", str(out), "--force"]) == 2
        one_line_error(capsys, "home folder")
    assert (project / "src" / "main.c").is_file() and (home / "me").is_dir()


def test_an_empty_folder_is_fine(tmp_path):
    (tmp_path / "empty").mkdir()
    assert main(["data", "shapes", "--count", "2", "--out", str(tmp_path / "empty")]) == 0


# ---- filesystem faults ---------------------------------------------------------------------
@contextlib.contextmanager
def tmpfs(path: Path, options: str):
    """A real tmpfs mount (root with CAP_SYS_ADMIN, as on CI), or skip the test."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def test_read_only_locations_fail_in_one_line_before_any_work(pack_dir, checkpoint_dir, prompt_files, tmp_path,
                                                             capsys):
    prompts = tmp_path / "p.txt"
    prompts.write_text(BANK_PROMPTS[0] + "\n")
    with tmpfs(tmp_path / "ro", "ro,size=64k") as ro:
        cases = [
            ["generate", str(pack_dir), "--prompt", BANK_PROMPTS[0], "--seeds", "0-1", "--out", str(ro / "g.png")],
            ["generate", str(pack_dir), "--prompts-file", str(prompts), "--out", str(ro / "dir")],
            ["bench", str(pack_dir), "--backends", "onnxruntime-fp32", "--json", str(ro / "b.json")],
            ["data", "shapes", "--count", "2", "--out", str(ro / "d")],
            convert_args(checkpoint_dir, ro / "pack", prompt_files),
            ["data", "preview", str(pack_dir), "--out", str(ro / "p.png")],
        ]
        for args in cases:
            assert main(args) == 2, args
            one_line_error(capsys, str(ro), "read-only file system")


def test_an_out_under_a_regular_file_is_one_line(pack_dir, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert main(["generate", str(pack_dir), "--prompt", BANK_PROMPTS[0], "--out", str(tmp_path / "file" / "g.png")]) == 2
    one_line_error(capsys, "is a file, not a folder")
    assert main(["data", "shapes", "--count", "2", "--out", str(tmp_path / "file" / "d")]) == 2
    one_line_error(capsys, "is a file, not a folder")


def test_a_full_disk_is_one_line_and_leaves_no_partial_output(pack_dir, tmp_path, capsys):
    prompts = tmp_path / "p.txt"
    prompts.write_text("\n".join(BANK_PROMPTS * 8) + "\n")
    with tmpfs(tmp_path / "full", "size=24k") as full:
        assert main(["generate", str(pack_dir), "--prompts-file", str(prompts), "--out", str(full / "renders")]) == 2
        one_line_error(capsys, "No space left on device")
        assert list(full.iterdir()) == []  # the temporary folder went away with the error


def _convert_process(checkpoint_dir: Path, out: Path, prompt_files: dict[str, Path]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = convert_args(checkpoint_dir, out, prompt_files)
    del args[args.index("--precision"):args.index("--precision") + 2]  # int8: the quantizer's scratch files too
    return subprocess.Popen([sys.executable, "-m", "edge_t2i", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)


def test_sigterm_stops_convert_cleanly_and_stale_temporaries_are_swept(pack_dir, checkpoint_dir, prompt_files,
                                                                       tmp_path):
    target = tmp_path / "pack"
    shutil.copytree(pack_dir, target)
    before = sorted(p.name for p in target.iterdir())
    stale = tmp_path / f".pack.{2**22 + 12345}.abc.tmp"  # what a SIGKILLed convert of a dead pid leaves
    stale.mkdir()
    (stale / "generator.fp32.onnx").write_bytes(b"x" * 1000)
    proc = _convert_process(checkpoint_dir, target, prompt_files)
    lines = []
    for line in proc.stdout:  # type: ignore[union-attr]
        lines.append(line)
        if "[calibrate" in line:  # in the middle of the INT8 stages
            break
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, "".join(lines) + out
    assert "SIGTERM: stopped" in out and "Traceback" not in out
    assert sorted(p.name for p in target.iterdir()) == before  # the previous pack is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pack"]  # no temporary left, the stale one swept


def test_quantizer_scratch_lives_in_the_tools_own_temporary(tmp_path):
    import tempfile

    from edge_t2i import _io

    with _io.scratch_tempdir(tmp_path / "pack.tmp" / ".scratch") as scratch:
        made = Path(tempfile.mkdtemp())
        assert scratch in made.parents
    assert not scratch.exists() and tempfile.tempdir != str(scratch)


# ---- bad numbers ---------------------------------------------------------------------------
@pytest.mark.parametrize("args,needle", [
    (["generate", "{pack}", "--prompt", "x", "--seeds", "0-99999999999999", "--out", "{tmp}/g.png"], "4096 seeds"),
    (["generate", "{pack}", "--prompt", "x", "--seeds", "0-50000000", "--out", "{tmp}/g.png"], "4096 seeds"),
    (["generate", "{pack}", "--prompt", "x", "--threads", "5000", "--out", "{tmp}/g.png"], "--threads"),
    (["convert", "{pack}", "--out", "{tmp}/p", "--calib-samples", "100000000"], "--calib-samples"),
    (["bench", "{pack}", "--seconds", "nan"], "finite"),
    (["bench", "{pack}", "--seconds", "inf"], "finite"),
    (["data", "shapes", "--out", "{tmp}/d", "--resolution", "100000"], "--resolution"),
    (["data", "preview", "{pack}", "--count", "0"], "--count"),
    (["convert", "{pack}", "--out", "{tmp}/p", "--max-drop", "nan"], "--max-drop"),
])
def test_bad_numbers_are_refused_up_front(pack_dir, tmp_path, capsys, args, needle):
    args = [a.format(pack=pack_dir, tmp=tmp_path) for a in args]
    assert main(args) == 2
    one_line_error(capsys, needle)
    assert not any(tmp_path.iterdir())  # no work was done


def test_seed_ranges_are_counted_before_they_are_expanded():
    from edge_t2i.cli.common import parse_seeds

    with pytest.raises(InputError, match="4096"):
        parse_seeds("0-" + "9" * 18)  # would be 10^18 integers
    assert parse_seeds("4-5,9") == [4, 5, 9]
    assert len(parse_seeds("0-4095")) == 4096


# ---- weights that are not finite ------------------------------------------------------------
def test_a_checkpoint_with_a_nan_weight_is_refused_naming_the_tensor(tmp_path, prompt_files, capsys):
    from safetensors.torch import load_file, save_file

    ckpt = make_checkpoint(tmp_path / "diverged")
    weights = load_file(ckpt / "generator.safetensors")
    name = next(k for k in weights if k.endswith("conv1.weight") or k.startswith("to_rgb.weight"))
    weights[name].view(-1)[3] = float("nan")
    save_file(weights, ckpt / "generator.safetensors")
    assert main(convert_args(ckpt, tmp_path / "pack", prompt_files)) == 2
    one_line_error(capsys, name, "NaN")
    assert main(["sample", str(ckpt), "--prompt", BANK_PROMPTS[0], "--out", str(tmp_path / "s.png")]) == 2
    one_line_error(capsys, name)
    assert not (tmp_path / "pack").exists() and not (tmp_path / "s.png").exists()


def test_a_pack_that_outputs_nan_is_an_error_not_garbage_pixels(pack_dir):
    import edge_t2i
    from edge_t2i.errors import BackendError

    # ONNX Runtime: its pixels come from `run` (OpenVINO's fused path reads its request's output, checked there too)
    with edge_t2i.load(pack_dir, precision="fp32", backend="onnxruntime") as gen:
        real = gen.backend.run  # the engine itself: the interface's check around it must catch it
        gen.backend.run = lambda feeds: {"image": real(feeds)["image"] * np.float32("nan")}  # type: ignore
        with pytest.raises(BackendError, match="NaN"):
            gen.generate(BANK_PROMPTS[0], seeds=[0])


def test_an_openvino_engine_that_outputs_nan_is_an_error_too(pack_dir):
    """OpenVINO's pixels read the request's output without `run`: the check is there as well."""
    pytest.importorskip("openvino")
    import edge_t2i
    from edge_t2i.errors import BackendError

    with edge_t2i.load(pack_dir, precision="fp32", backend="openvino") as gen:
        for route in gen.routes:
            real = route.backend._infer  # noqa: SLF001 - the engine's own output, under the interface's check
            route.backend._infer = lambda feeds, real=real: real(feeds) * np.float32("nan")  # type: ignore  # noqa: SLF001
        with pytest.raises(BackendError, match="NaN"):
            gen.generate(BANK_PROMPTS[0], seeds=[0])


def test_export_parity_treats_nan_as_failure(checkpoint_dir, tmp_path, monkeypatch):
    from edge_t2i.convert import export
    from edge_t2i.errors import ConvertError

    monkeypatch.setattr(export, "parity", lambda *a: float("nan"))
    with pytest.raises(ConvertError, match="nan"):
        export.export_onnx(checkpoint_dir, tmp_path / "g.onnx")


# ---- prompt text ---------------------------------------------------------------------------
def test_prompt_files_with_bom_and_crlf_match_the_bank(pack_dir, tmp_path):
    from edge_t2i.data.prompts import read_prompts

    p = tmp_path / "p.txt"
    p.write_bytes(("\ufeff" + "\r\n".join(BANK_PROMPTS[:3]) + "\r\n").encode("utf-8"))
    assert read_prompts(p) == BANK_PROMPTS[:3]
    assert main(["generate", str(pack_dir), "--prompts-file", str(p), "--out", str(tmp_path / "g")]) == 0


def test_convert_with_a_bom_prompt_file_banks_the_plain_prompt(checkpoint_dir, prompt_files, tmp_path):
    from edge_t2i.runtime.bank import PromptBank

    bank = tmp_path / "bank.txt"
    bank.write_bytes(("\ufeff" + "\r\n".join(BANK_PROMPTS) + "\r\n").encode("utf-8"))
    files = {**prompt_files, "bank": bank}
    assert main(convert_args(checkpoint_dir, tmp_path / "pack", files)) == 0
    texts = PromptBank.load(tmp_path / "pack" / "bank.safetensors").texts
    assert texts == BANK_PROMPTS and not any("\ufeff" in t for t in texts)


@pytest.mark.parametrize("typed,banked", [
    ("cafe\u0301 sign", "café sign"),          # NFD vs NFC
    ("GROSS red circle", "groß red circle"),   # casefold, not lower
    ("a\u200b red  circle ", "a red circle"),  # zero-width space, spaces
    ("\ufeffa red circle", "a red circle"),    # a BOM pasted in
    ("ａ red circle", "a red circle"),         # full-width letter (NFKC)
])
def test_one_normalisation_everywhere(typed, banked):
    from edge_t2i.data.captions import parse_caption
    from edge_t2i.data.prompts import normalize_prompt
    from edge_t2i.runtime.bank import PromptBank

    assert normalize_prompt(typed) == normalize_prompt(banked)
    bank = PromptBank([banked], np.eye(1, 4, dtype=np.float32), "test")
    assert typed in bank and np.array_equal(bank.lookup(typed), bank.embeddings[0])
    assert parse_caption(typed) == parse_caption(banked)


# ---- pack compatibility --------------------------------------------------------------------
def test_cli_cuts_batches_at_the_backends_limit(pack_dir, tmp_path, monkeypatch):
    """A TensorRT profile that ends at batch 16 still generates 32 seeds (in batches of 16)."""
    from edge_t2i.runtime.backends.onnxruntime import OnnxRuntimeBackend

    calls = []
    original = OnnxRuntimeBackend.run

    def limited(self, feeds):
        calls.append(len(feeds["z"]))
        return original(self, feeds)

    monkeypatch.setattr(OnnxRuntimeBackend, "max_batch", 16)
    monkeypatch.setattr(OnnxRuntimeBackend, "run", limited)
    assert main(["generate", str(pack_dir), "--prompt", BANK_PROMPTS[0], "--seeds", "0-31", "--backend",
                 "onnxruntime", "--precision", "int8", "--out", str(tmp_path / "g.png")]) == 0
    assert max(calls) == 16 and calls[-2:] == [16, 16]  # (before them: the device check, timing, the warm-up)


def test_bench_skips_batch_sizes_a_backend_cannot_run(pack_dir, monkeypatch):
    from edge_t2i.bench.runner import run_bench
    from edge_t2i.runtime.backends.onnxruntime import OnnxRuntimeBackend

    monkeypatch.setattr(OnnxRuntimeBackend, "max_batch", 2)
    result = run_bench(pack_dir, ["onnxruntime-fp32"], [1, 4], seconds=0.05, warmup=1)
    assert [r["batch"] for r in result["rows"]] == [1]
    assert any("batch 4" in s["reason"] and s["config"] == "onnxruntime-fp32" for s in result["skipped"])


def test_the_int8_model_imports_only_the_opsets_it_uses(pack_dir):
    import onnx

    model = onnx.load(str(pack_dir / "generator.int8.onnx"))
    used = {n.domain or "" for n in model.graph.node}
    assert {o.domain or "" for o in model.opset_import} == used | {""}


def test_info_reports_a_real_load(pack_dir, tmp_path):
    from edge_t2i.runtime.info import pack_info

    rows = {r["candidate"]: r for r in pack_info(pack_dir)["engines"]}
    assert rows["onnxruntime-int8"]["available"] and rows["onnxruntime-int8"]["check"]["passed"]
    broken = tmp_path / "broken"
    shutil.copytree(pack_dir, broken)
    for name in ("generator.int8.onnx", "generator.int8.u8s8.onnx"):  # whichever this CPU would run
        size = (broken / name).stat().st_size
        (broken / name).write_bytes(b"not onnx".ljust(size, b"!"))  # the declared size, other bytes
    rows = {r["candidate"]: r for r in pack_info(broken)["engines"]}
    assert "does not match its sha256" in rows["onnxruntime-int8"]["error"]


# ---- the API and missing extras ------------------------------------------------------------
@pytest.mark.parametrize("bad", [None, np.float32(1.0), np.array(1.0), 3, {"a": 1}])
def test_generate_refuses_odd_inputs_with_the_packages_error(pack_dir, bad):
    import edge_t2i

    with edge_t2i.load(pack_dir) as gen, pytest.raises(InputError):
        gen.generate(bad)


def test_errors_name_the_real_keyword_and_flag(pack_dir):
    import edge_t2i

    with edge_t2i.load(pack_dir) as gen, pytest.raises(InputError) as exc:
        gen.generate("a purple dragon")
    assert "unknown='nearest'" in str(exc.value) and "--unknown" in str(exc.value)


def _block(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    """Make `import module` fail as if the package were not installed."""
    for name in list(sys.modules):
        if any(name == m or name.startswith(m + ".") for m in modules):
            monkeypatch.delitem(sys.modules, name)
    for m in modules:
        monkeypatch.setitem(sys.modules, m, None)


def test_bench_without_onnx_runs_without_utilization(pack_dir, monkeypatch):
    from edge_t2i.bench.runner import run_bench

    _block(monkeypatch, "onnx")
    result = run_bench(pack_dir, ["onnxruntime-int8"], [1], seconds=0.05, warmup=1)
    assert result["macs_per_image"] is None and result["rows"][0]["utilization"] is None


def test_bench_without_matplotlib_fails_before_measuring(pack_dir, tmp_path, monkeypatch, capsys):
    _block(monkeypatch, "matplotlib")
    assert main(["bench", str(pack_dir), "--backends", "onnxruntime-int8", "--plot", str(tmp_path / "b.png")]) == 2
    line = one_line_error(capsys, "edge-t2i[bench]")
    assert "GEMM peak" not in capsys.readouterr().err + line


def test_commands_that_need_torch_say_which_extra(checkpoint_dir, tmp_path, monkeypatch, capsys):
    _block(monkeypatch, "torch", "safetensors")
    for args in (["sample", str(checkpoint_dir), "--prompt", BANK_PROMPTS[0], "--out", str(tmp_path / "s.png")],
                 ["train", "--data", str(tmp_path), "--out", str(tmp_path / "run")],
                 ["quality", str(checkpoint_dir), "--count", "2"]):
        assert main(args) == 2, args
        one_line_error(capsys, "pip install 'edge-t2i[train]'")


def test_api_writers_guard_too(tmp_path, users_folder):
    from edge_t2i.data import make_shapes_dataset, write_imagefolder

    with pytest.raises(OutputError):
        make_shapes_dataset(users_folder, 2)
    with pytest.raises(OutputError):
        write_imagefolder(users_folder, np.zeros((1, 8, 8, 3), np.uint8), ["x"], [0])
    assert sorted(p.name for p in users_folder.iterdir()) == ["level1.txt"]


def test_missing_extra_error_type_is_raised_by_require():
    from edge_t2i.errors import require

    with pytest.raises(MissingExtraError, match="edge-t2i\\[nope\\]"):
        require("no_such_module_here", "nope", "Testing")


def test_checkpoint_errors_stay_checkpoint_errors(tmp_path):
    from edge_t2i.models.checkpoint import load_generator

    with pytest.raises(CheckpointError):
        load_generator(tmp_path / "missing")


# ---- found by a fresh user trying to break it ------------------------------------------------
def test_output_files_inside_an_input_are_refused(pack_dir, checkpoint_dir, tmp_path, capsys):
    from edge_t2i._io import sha256_file

    data = tmp_path / "data"
    assert main(["data", "shapes", "--count", "2", "--out", str(data)]) == 0
    guarded = [pack_dir / "manifest.json", checkpoint_dir / "generator.safetensors", checkpoint_dir / "config.json",
               data / "metadata.jsonl"]
    before = {p: sha256_file(p) for p in guarded}
    cases = [
        ["generate", str(pack_dir), "--prompt", BANK_PROMPTS[0], "--out", str(pack_dir / "manifest.json")],
        ["sample", str(checkpoint_dir), "--prompt", BANK_PROMPTS[0], "--out", str(checkpoint_dir / "generator.safetensors")],
        ["bench", str(pack_dir), "--backends", "onnxruntime-int8", "--json", str(pack_dir / "manifest.json")],
        ["quality", str(checkpoint_dir), "--count", "2", "--json", str(checkpoint_dir / "config.json")],
        ["data", "preview", str(data), "--out", str(data / "metadata.jsonl")],
    ]
    for args in cases:
        assert main(args) == 2, args
        one_line_error(capsys, "inside the input")
    assert {p: sha256_file(p) for p in guarded} == before


def test_output_files_never_land_inside_another_artifact(pack_dir, checkpoint_dir, tmp_path, capsys):
    """Not only the command's own input: any pack, checkpoint, dataset or run folder is off limits."""
    import shutil

    other = tmp_path / "other-pack"
    shutil.copytree(pack_dir, other)
    before = (other / "manifest.json").read_bytes()
    for args in (["quality", str(checkpoint_dir), "--count", "2", "--json", str(other / "manifest.json")],
                 ["bench", str(pack_dir), "--backends", "onnxruntime-int8", "--json", str(other / "bench.json")],
                 ["generate", str(pack_dir), "--prompt", BANK_PROMPTS[0], "--out", str(checkpoint_dir / "g.png")]):
        assert main(args) == 2, args
        one_line_error(capsys, "which holds")
    assert (other / "manifest.json").read_bytes() == before and not (other / "bench.json").exists()


def test_the_prompts_file_is_an_input_too(pack_dir, tmp_path, capsys):
    folder = tmp_path / "pp"
    folder.mkdir()
    prompts = folder / "prompts.txt"
    prompts.write_text(BANK_PROMPTS[0] + "\n")
    assert main(["generate", str(pack_dir), "--prompts-file", str(prompts), "--out", str(folder), "--force"]) == 2
    one_line_error(capsys, "overlaps the input")
    assert prompts.read_text() == BANK_PROMPTS[0] + "\n"


def test_an_artifact_of_another_kind_is_not_replaced(pack_dir, tmp_path, capsys):
    dataset, renders = tmp_path / "dataset", tmp_path / "renders"
    prompts = tmp_path / "p.txt"
    prompts.write_text(BANK_PROMPTS[0] + "\n")
    assert main(["data", "shapes", "--count", "3", "--out", str(dataset)]) == 0
    assert main(["generate", str(pack_dir), "--prompts-file", str(prompts), "--out", str(renders)]) == 0
    assert main(["generate", str(pack_dir), "--prompts-file", str(prompts), "--out", str(dataset)]) == 2
    one_line_error(capsys, "is not a folder of generated images")
    assert main(["data", "shapes", "--count", "3", "--out", str(renders)]) == 2
    one_line_error(capsys, "is not a dataset")
    assert len(list(dataset.glob("0*.png"))) == 3


def test_devices_and_pipes_are_never_replaced(pack_dir, tmp_path, capsys):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert main(["generate", str(pack_dir), "--prompt", BANK_PROMPTS[0], "--out", str(fifo)]) == 2
    one_line_error(capsys, "not a regular file")
    assert main(["bench", str(pack_dir), "--backends", "onnxruntime-int8", "--json", "/dev/null"]) == 2
    one_line_error(capsys, "not a regular file")
    assert fifo.is_fifo() and Path("/dev/null").is_char_device()


@pytest.mark.parametrize("flag,value", [("--lr-g", "nan"), ("--gp-weight", "inf"), ("--seed", "-1"),
                                        ("--threads", "-1"), ("--eval-count", "-1"), ("--ngf", "99999999999999999999"),
                                        ("--align-shift", "99999999999999999999"), ("--align-rotation", "nan")])
def test_train_numbers_are_checked_up_front(tmp_path, capsys, flag, value):
    assert main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "run"), flag, value]) == 2
    one_line_error(capsys, flag)
    assert not (tmp_path / "run").exists()


def test_train_config_checks_numbers_from_the_api_too():
    from edge_t2i.errors import DataError
    from edge_t2i.train import TrainConfig

    for bad in ({"lr_g": float("nan")}, {"gp_weight": float("inf")}, {"seed": -1}, {"ngf": 10**20},
                {"steps": 2.5}, {"threads": True}):
        with pytest.raises(DataError):
            TrainConfig(data="d", out="o", **bad)


def test_a_failed_train_leaves_no_run_folder(tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "run")]) == 2
    one_line_error(capsys, "imagefolder")
    assert not (tmp_path / "run").exists()


def test_dataset_workers_print_nothing(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "edge_t2i", "data", "shapes", "--count", "600", "--out",
                           str(tmp_path / "d")], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]


def test_a_closed_pipe_ends_quietly(pack_dir):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "edge_t2i", "info", str(pack_dir), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    proc.stdout.read(5)  # type: ignore[union-attr]  # like `| head -c 5`
    proc.stdout.close()  # type: ignore[union-attr]
    err = proc.stderr.read().decode()  # type: ignore[union-attr]
    assert proc.wait(timeout=60) in (0, 141) and err == "", err


def test_artifacts_follow_the_umask(pack_dir, tmp_path):
    old = os.umask(0o022)
    try:
        assert main(["generate", str(pack_dir), "--prompt", BANK_PROMPTS[0], "--out", str(tmp_path / "g.png")]) == 0
        assert main(["data", "shapes", "--count", "2", "--out", str(tmp_path / "d")]) == 0
    finally:
        os.umask(old)
    assert oct((tmp_path / "g.png").stat().st_mode & 0o777) == "0o644"
    assert oct((tmp_path / "d").stat().st_mode & 0o777) == "0o755"
    assert oct((tmp_path / "d" / "metadata.jsonl").stat().st_mode & 0o777) == "0o644"


def test_api_odd_arguments_raise_the_packages_errors(pack_dir):
    import edge_t2i
    from edge_t2i.errors import PackError

    with pytest.raises(PackError):
        edge_t2i.load(None)  # type: ignore[arg-type]
    with pytest.raises(InputError):
        edge_t2i.load(pack_dir, threads=-1)
    with pytest.raises(InputError):
        edge_t2i.AsyncPipeline(None)  # type: ignore[arg-type]
    with edge_t2i.load(pack_dir) as gen:
        assert gen.generate(BANK_PROMPTS[0], seeds=np.array(3)).shape[0] == 1
        with pytest.raises(InputError):
            gen.bank.blend(None, BANK_PROMPTS[0], 0.5)  # type: ignore[arg-type]
        with pytest.raises(InputError):
            gen.generate(BANK_PROMPTS[0], seeds="12")  # type: ignore[arg-type]
        with edge_t2i.AsyncPipeline(gen) as worker:
            handle = worker.submit("not a prompt in the bank", seeds=[0])
            with pytest.raises(InputError):
                handle.result(timeout=30)
            assert isinstance(worker.last_error, InputError) and worker.latest() is None


def test_late_stage_needs_are_checked_before_the_work(checkpoint_dir, prompt_files, tmp_path, capsys):
    assert main(convert_args(checkpoint_dir, tmp_path / "pack", prompt_files, "--engine")) == 2
    out = capsys.readouterr()
    assert "--engine" in out.err and "[export" not in out.err + out.out

