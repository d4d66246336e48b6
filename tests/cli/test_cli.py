"""The CLI end to end on tiny inputs: outputs that chain (sample/generate -> eval), one-line errors."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edge_t2i.cli import main, parse_seeds
from edge_t2i.errors import InputError
from tests.conftest import BANK_PROMPTS

ROOT = Path(__file__).resolve().parents[2]


def test_parse_seeds():
    assert parse_seeds("0-3") == [0, 1, 2, 3]
    assert parse_seeds("1,5,9") == [1, 5, 9]
    assert parse_seeds("7") == [7]
    for bad in ("a-b", "-3", "7-3", "1,,2", ""):
        with pytest.raises(InputError):
            parse_seeds(bad)


@pytest.mark.slow
def test_console_script_smoke(tmp_path):
    """The installed `edge-t2i` entry point (the other CLI tests call main() in-process): exit 0 on --help,
    exit 2 and one line on a user error."""
    exe = shutil.which("edge-t2i", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("the edge-t2i console script is not installed in this environment")
    ok = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and "convert" in ok.stdout
    bad = subprocess.run([exe, "convert", str(tmp_path / "missing"), "--out", str(tmp_path / "p")],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and bad.stderr.startswith("edge-t2i: error:")
    assert "not found" in bad.stderr and not (tmp_path / "p").exists()


def test_data_shapes_then_eval_json(tmp_path, capsys):
    assert main(["data", "shapes", "--out", str(tmp_path / "d"), "--count", "40", "--split", "test"]) == 0
    assert (tmp_path / "d" / "preview.png").is_file()
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "d"), "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert set(scores) >= {"color", "shape", "size", "position", "all", "count"} and scores["count"] == 40
    assert scores["all"] >= 0.95


def test_generate_prompts_file_writes_an_imagefolder_eval_can_score(pack_dir, tmp_path, capsys):
    prompts = tmp_path / "p.txt"
    prompts.write_text("\n".join(BANK_PROMPTS[:4]) + "\n")
    assert main(["generate", str(pack_dir), "--prompts-file", str(prompts), "--out", str(tmp_path / "g")]) == 0
    rows = [json.loads(x) for x in (tmp_path / "g" / "metadata.jsonl").read_text().splitlines()]
    assert [r["text"] for r in rows] == BANK_PROMPTS[:4] and [r["seed"] for r in rows] == [0, 1, 2, 3]
    assert main(["eval", str(tmp_path / "g"), "--json"]) == 0
    assert main(["generate", str(pack_dir), "--prompt", BANK_PROMPTS[0], "--seeds", "0-3", "--out",
                 str(tmp_path / "grid.png")]) == 0
    assert (tmp_path / "grid.png").stat().st_size > 100


def test_sample_from_checkpoint_matches_generate_fp32(checkpoint_dir, pack_dir, tmp_path):
    import numpy as np

    from edge_t2i.data import read_imagefolder

    prompts = tmp_path / "p.txt"
    prompts.write_text("\n".join(BANK_PROMPTS[:3]) + "\n")
    assert main(["sample", str(checkpoint_dir), "--prompts-file", str(prompts), "--out", str(tmp_path / "s"),
                 "--seed-offset", "5"]) == 0
    assert main(["generate", str(pack_dir), "--precision", "fp32", "--prompts-file", str(prompts),
                 "--out", str(tmp_path / "r"), "--seed-offset", "5"]) == 0
    a = read_imagefolder(tmp_path / "s").load_images(show_progress=False).astype(int)
    b = read_imagefolder(tmp_path / "r").load_images(show_progress=False).astype(int)
    assert np.abs(a - b).max() <= 2  # the same seeds give the same image through torch and ONNX Runtime


def test_info_lists_backends_and_why(pack_dir, capsys):
    assert main(["info", str(pack_dir), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    rows = {r["candidate"]: r for r in info["engines"]}
    assert rows["onnxruntime-int8"]["available"] is True and rows["onnxruntime-int8"]["check"]["passed"] is True
    assert rows["tensorrt-int8"]["available"] is False and "no int8 TensorRT engine" in rows["tensorrt-int8"]["reason"]
    assert all(f["ok"] for f in info["files"].values())


def test_user_errors_are_one_line_exit_2(pack_dir, tmp_path, capsys):
    assert main(["generate", str(pack_dir), "--prompt", "a purple dragon", "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("edge-t2i: error:") and "not in the bank" in err[0]
    assert main(["generate", str(pack_dir), "--prompt", "x", "--backend", "tensorrtt", "--out", "x.png"]) == 2
    assert "did you mean 'tensorrt'" in capsys.readouterr().err
    assert main(["eval", str(tmp_path / "nothing")]) == 2
    assert main(["info", str(tmp_path)]) == 2
    capsys.readouterr()
    for bad in (["--encode-fraction", "1"], ["--encoder-dims", "0"], ["--noise-in-fusion", "101"]):
        assert main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "run"), *bad]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("edge-t2i: error:"), err


def test_quality_prints_each_figure_next_to_its_target(monkeypatch, tmp_path, capsys):
    from edge_t2i.eval import quality, targets
    from tests.eval.test_quality import constructed_result

    result = constructed_result()
    result["diversity_l1"] = {p: 50.0 for p in quality.DIVERSITY_PROMPTS}
    result["targets"] = targets.target_rows(result)
    calls = []
    monkeypatch.setattr(quality, "evaluate_generator", lambda ckpt, count: calls.append(count) or result)
    (tmp_path / "ckpt").mkdir()
    assert main(["quality", str(tmp_path / "ckpt"), "--count", "100", "--json", str(tmp_path / "q.json")]) == 0
    out = capsys.readouterr().out
    assert calls == [100]
    assert "heldout_phrasing  n=50" in out and "background 70.0%" in out
    blotchy = next(line for line in out.splitlines() if line.startswith("blotchy backgrounds"))
    assert "29.5%" in blotchy and "0.0%" in blotchy and "<= 3%" in blotchy and "NO" in blotchy
    assert "5 of 13 targets met" in out
    assert json.loads((tmp_path / "q.json").read_text())["targets"] == result["targets"]


def test_diversity_catches_a_collapsed_generator(checkpoint_dir, tmp_path):
    """A generator that ignores z (mode collapse) scores zero diversity."""
    import torch

    from edge_t2i.eval.quality import diversity
    from edge_t2i.models.checkpoint import load_generator, save_generator

    g = load_generator(checkpoint_dir)
    with torch.no_grad():
        g.fc.weight.zero_()
        for name, p in g.named_parameters():
            if name.endswith("fc1.weight"):
                p[:, g.config.cond_dim:] = 0  # the noise inputs of the fusion MLPs
    save_generator(tmp_path / "collapsed", g)
    assert diversity(tmp_path / "collapsed", BANK_PROMPTS[0]) == 0.0
    assert diversity(checkpoint_dir, BANK_PROMPTS[0]) > 1.0


def test_the_shipped_generator_is_not_collapsed():
    """The committed checkpoint: 16 seeds of one caption differ, and the oracle reads them as asked."""

    from edge_t2i.eval import oracle
    from edge_t2i.eval.quality import diversity, reference_images

    shipped = ROOT / "checkpoints" / "shapes64"
    prompt = "a large red circle in the center"
    assert diversity(shipped, prompt) > 20.0  # measured 84.8; a collapsed generator scores ~1
    images = reference_images(shipped, [prompt] * 8, list(range(8)))
    judged = [oracle.judge(im) for im in images]
    assert sum((j.color, j.shape, j.size, j.position) == ("red", "circle", "large", "center") for j in judged) >= 6


def test_train_flags_are_generated_from_the_train_config():
    """Every TrainConfig field is a flag with its default and help text; a changed flag reaches the config."""
    from dataclasses import fields

    from edge_t2i.cli import build_parser
    from edge_t2i.cli.train import flag_name
    from edge_t2i.train import TrainConfig

    parser = build_parser()
    train_parser = parser._subparsers._group_actions[0].choices["train"]  # argparse keeps subparsers here
    by_dest = {a.dest: a for a in train_parser._actions}
    for f in fields(TrainConfig):
        action = by_dest[f.name]
        assert flag_name(f) in action.option_strings and action.help, f.name
    a = parser.parse_args(["train", "--data", "d", "--out", "o", "--lr-g", "0.5", "--no-text-norm",
                           "--init-from", "x", "--resolution", "32"])
    assert (a.lr_g, a.text_norm, a.init_from, a.resolution) == (0.5, False, "x", 32)
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--data", "d", "--out", "o", "--resolution", "48"])  # not a choice


def test_convert_includes_the_text_encoder_unless_told_not_to():
    from edge_t2i.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["convert", "ckpt", "--out", "p"]).with_encoder is True
    assert parser.parse_args(["convert", "ckpt", "--out", "p", "--no-encoder"]).with_encoder is False
    assert parser.parse_args(["convert", "ckpt", "--out", "p", "--with-encoder"]).with_encoder is True  # old flag
    assert "--no-encoder" in parser._subparsers._group_actions[0].choices["convert"].format_help()


@pytest.mark.parametrize("flags,expected", [({"avx512_vnni"}, "generator.int8.u8s8.onnx"), ({"avx2"}, "generator.int8.onnx")])
def test_info_checks_the_int8_file_the_runtime_runs_on_this_cpu(pack_dir, capsys, monkeypatch, flags, expected):
    from edge_t2i.runtime import cpu

    monkeypatch.setattr(cpu, "cpu_flags", lambda: frozenset(flags))
    assert main(["info", str(pack_dir), "--json"]) == 0
    rows = {r["candidate"]: r for r in json.loads(capsys.readouterr().out)["engines"]}
    assert rows["onnxruntime-int8"]["file"] == expected and rows["onnxruntime-int8"]["check"]["passed"]
