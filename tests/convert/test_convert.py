"""The conversion toolchain on a tiny random generator."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from edge_t2i import calib
from edge_t2i._io import sha256_file
from edge_t2i.convert import gate
from edge_t2i.convert.export import export_onnx
from edge_t2i.convert.quantize import QuantConfig, count_qdq, quantizable_nodes, quantize_int8, sensitivity
from edge_t2i.data.prompts import normalize_prompt, read_prompts
from edge_t2i.data.vocab import ATTRIBUTES
from edge_t2i.errors import ConvertError, DataError
from edge_t2i.eval import oracle
from edge_t2i.runtime.bank import PromptBank
from edge_t2i.runtime.manifest import read_manifest

ROOT = Path(__file__).resolve().parents[2]


def test_export_parity_and_dynamic_batch(checkpoint_dir, tmp_path):
    res = export_onnx(checkpoint_dir, tmp_path / "g.onnx")
    assert res.max_abs_error <= 1e-4
    model = onnx.load(str(res.path))
    onnx.checker.check_model(model)
    dims = [d.dim_param for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims[0] == "batch"
    assert [i.name for i in model.graph.input] == ["z", "embedding"]
    assert [o.name for o in model.graph.output] == ["image"]


def test_int8_model_has_qdq_around_every_conv_but_the_output_layers_and_runs(pack_dir):
    from edge_t2i.convert.graph import output_layers

    counts = count_qdq(pack_dir / "generator.int8.onnx")
    kept = [n for n in output_layers(pack_dir / "generator.fp32.onnx") if "Conv" in n]
    assert kept and counts["Conv"] > len(kept)
    assert counts["Conv_with_qdq_inputs"] == counts["Conv"] - len(kept)  # the to-RGB (and alpha) convs: by rule
    assert counts["QuantizeLinear"] > 0 and counts["DequantizeLinear"] > 0
    import onnxruntime as ort

    sess = ort.InferenceSession(str(pack_dir / "generator.int8.onnx"), providers=["CPUExecutionProvider"])
    out = sess.run(None, {"z": np.zeros((2, 100), np.float32), "embedding": np.zeros((2, 384), np.float32)})[0]
    assert out.shape == (2, 3, 32, 32)


def test_symmetric_int8_zero_points_for_tensorrt(pack_dir):
    model = onnx.load(str(pack_dir / "generator.int8.onnx"))
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    zps = [inits[n.input[2]] for n in model.graph.node if n.op_type == "QuantizeLinear" and len(n.input) > 2]
    assert zps and all(z.dtype == np.int8 and not z.any() for z in zps)


def test_manifest_records_what_the_gate_measured_and_files_match(pack_dir):
    m = json.loads((pack_dir / "manifest.json").read_text())
    assert m["schema_version"] == 3 and m["noise"]["name"] == "splitmix64-polar-v1"
    # nothing Python-only in a pack: JSON, ONNX, safetensors (docs/pack-spec.md)
    assert {p.suffix for p in pack_dir.iterdir()} <= {".json", ".onnx", ".safetensors", ".md", ".png", ".plan"}
    for name, entry in m["files"].items():
        assert sha256_file(pack_dir / name) == entry["sha256"]
    assert m["calibration"]["sha256"] == sha256_file(pack_dir / "calibration.safetensors")
    assert set(m["tools"]) >= {"torch", "onnx", "onnxruntime", "tensorrt"}
    g = m["gate"]
    assert {"psnr_db", "fp32", "int8", "passed", "count"} <= set(g)
    assert (pack_dir / "report.md").is_file() and (pack_dir / "compare.png").is_file()
    assert not list(pack_dir.glob(".*"))  # no temporary leftovers


def test_gate_figures_reproduce_when_re_measured(pack_dir, prompt_files):
    """Re-render the gate's evaluation set from the pack files: same PSNR and oracle figures."""
    m = json.loads((pack_dir / "manifest.json").read_text())
    cfg = gate.GateConfig(**m["gate"]["config"])
    from edge_t2i.models.text_encoder import encode

    prompts = read_prompts(prompt_files["eval"])
    es = gate.EvalSet.build(prompts, encode(prompts), cfg)
    a = gate.render(pack_dir / "generator.fp32.onnx", es, 100)
    b = gate.render(pack_dir / "generator.int8.onnx", es, 100)
    again = gate.judge(a, b, es, cfg)
    assert again.psnr_db == pytest.approx(m["gate"]["psnr_db"], abs=0.01)
    assert again.int8 == m["gate"]["int8"] and again.fp32 == m["gate"]["fp32"]


def test_calibration_is_deterministic_and_checks_sample_count(tmp_path):
    emb = np.random.default_rng(0).standard_normal((5, 384)).astype(np.float32)
    a = calib.calibration_batches(emb, 16, 100, seed=1)
    b = calib.calibration_batches(emb, 16, 100, seed=1)
    assert a.save(tmp_path / "a.npz") == b.save(tmp_path / "b.npz")
    assert [set(x) for x in a] == [{"z", "embedding"}] * 2
    with pytest.raises(DataError, match="fewer than one calibration batch"):
        calib.calibration_batches(emb, 4, 100)


def test_shipped_calibration_and_eval_prompts_are_disjoint():
    c = {normalize_prompt(p) for p in read_prompts(calib.default_prompts("calibration"))}
    e = {normalize_prompt(p) for p in read_prompts(calib.default_prompts("eval"))}
    assert c and e and not (c & e)


@pytest.mark.parametrize("content,msg", [("", "holds no prompts"), ("a\nb\nA\n", "repeats prompt 1"),
                                         (b"\xff\xfe bad", "not UTF-8")])
def test_prompt_file_errors(tmp_path, content, msg):
    p = tmp_path / "p.txt"
    p.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(DataError, match=msg):
        read_prompts(p)


def test_bad_calibration_fails_the_gate_and_sensitivity_ranks_layers(pack_dir, tmp_path):
    """Calibrating on inputs 50x too large makes every int8 step too coarse: under the same gate
    (40 dB here: the tiny random model draws near-flat images) good calibration passes, bad fails."""
    fp32 = pack_dir / "generator.fp32.onnx"
    good = calib.CalibrationData.load(pack_dir / "calibration.safetensors")
    bad = calib.CalibrationData(good.z * 50.0, good.embedding * 50.0, good.batch_size)
    bank = PromptBank.load(pack_dir / "bank.safetensors")  # real captions: every attribute of every row is scored
    es = gate.EvalSet.build(bank.texts[:4], bank.embeddings[:4], gate.GateConfig(seeds_per_prompt=2))
    for row in es.rows:
        assert all(oracle.expected_attributes(row)[a] is not None for a in ATTRIBUTES), row
    cfg = gate.GateConfig(min_psnr_db=40.0, max_all_drop=1.0, max_attribute_drop=1.0)  # PSNR decides here
    ref = gate.render(fp32, es, 100)
    results = {}
    for name, data in (("good", good), ("bad", bad)):
        out = quantize_int8(fp32, data, tmp_path / f"{name}.onnx", QuantConfig(method="minmax"))
        results[name] = gate.judge(ref, gate.render(out, es, 100), es, cfg)
    assert results["good"].passed, results["good"].reason
    assert not results["bad"].passed and "PSNR" in results["bad"].reason
    for r in results.values():  # not vacuous: 'all' needs every attribute right (with no caption it would be 1.0)
        expected = oracle.score_images(ref, es.rows).as_dict()
        assert r.count == 8 and r.fp32 == {k: expected[k] for k in ("all", *ATTRIBUTES)}
        for scores in (r.fp32, r.int8):
            assert scores["all"] <= min(scores[a] for a in ATTRIBUTES), scores
    ranking = sensitivity(fp32, tmp_path / "bad.onnx", good, quantizable_nodes(fp32))
    assert len(ranking) == len(quantizable_nodes(fp32))
    assert ranking[0][1] <= ranking[-1][1]


@pytest.mark.slow
def test_gate_failure_keeps_layers_in_float_or_fails_honestly(checkpoint_dir, prompt_files, tmp_path):
    from edge_t2i.convert.pack import ConvertOptions, convert_checkpoint

    strict = gate.GateConfig(min_psnr_db=200.0)  # unreachable: mixed precision is tried, then it gives up
    opts = ConvertOptions(prompts=str(prompt_files["bank"]), calib_prompts=str(prompt_files["calib"]), with_encoder=False,
                          eval_prompts=str(prompt_files["eval"]), calib_samples=16, gate_config=strict)
    with pytest.raises(ConvertError, match="fails the quality gate even with"):
        convert_checkpoint(checkpoint_dir, tmp_path / "pack", opts, quiet=True)
    assert not (tmp_path / "pack").exists()
    assert not list(tmp_path.iterdir())  # nothing half-written left behind


def run_cli(capsys, *args) -> tuple[int, str]:
    """`edge-t2i ARGS` in this process: (exit code, stderr). The real entry point is tested in tests/cli."""
    from edge_t2i.cli import main

    capsys.readouterr()
    rc = main(list(args))
    return rc, capsys.readouterr().err


@pytest.mark.parametrize("make_bad,msg", [
    (lambda d: d / "missing", "not found"),
    (lambda d: (d / "ck").mkdir() or (d / "ck" / "config.json").write_text('{"model": {"resolution": 48}}') and d / "ck",
     "resolution must be one of"),
    (lambda d: (d / "ck2").mkdir() or (d / "ck2" / "config.json").write_text("{oops") and d / "ck2", "not valid JSON"),
])
def test_cli_bad_checkpoint_is_one_line_and_nonzero(tmp_path, capsys, make_bad, msg):
    rc, err = run_cli(capsys, "convert", str(make_bad(tmp_path)), "--out", str(tmp_path / "pack"))
    assert rc == 2
    assert "Traceback" not in err and msg in err
    assert len(err.strip().splitlines()) == 1 and err.startswith("edge-t2i: error:")
    assert not (tmp_path / "pack").exists()


def test_cli_empty_prompt_file(tmp_path, checkpoint_dir, capsys):
    (tmp_path / "empty.txt").write_text("\n# nothing\n")
    rc, err = run_cli(capsys, "convert", str(checkpoint_dir), "--out", str(tmp_path / "p"),
                      "--prompts", str(tmp_path / "empty.txt"))
    assert rc == 2 and "holds no prompts" in err and "Traceback" not in err
    assert not (tmp_path / "p").exists()


def test_weights_for_another_architecture(tmp_path, checkpoint_dir, capsys):
    import shutil

    bad = tmp_path / "other"
    shutil.copytree(checkpoint_dir, bad)
    cfg = json.loads((bad / "config.json").read_text())
    cfg["model"]["ngf"] = 16
    (bad / "config.json").write_text(json.dumps(cfg))
    rc, err = run_cli(capsys, "convert", str(bad), "--out", str(tmp_path / "p"))
    assert rc == 2 and "config.json implies" in err
    assert len(err.strip().splitlines()) == 1


def test_interrupted_convert_leaves_previous_pack_intact(pack_dir, checkpoint_dir, prompt_files, tmp_path):
    import shutil

    target = tmp_path / "pack"
    shutil.copytree(pack_dir, target)
    before = {p.name: sha256_file(p) for p in target.iterdir()}
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "edge_t2i", "convert", str(checkpoint_dir), "--out", str(target),
                             "--prompts", str(prompt_files["bank"]), "--calib-prompts", str(prompt_files["calib"]),
                             "--eval-prompts", str(prompt_files["eval"])],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    for line in proc.stdout:  # kill it in the middle: right after the export stage finished
        if "[export" in line:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    after = {p.name: sha256_file(p) for p in target.iterdir()}
    assert after == before
    read_manifest(target)  # still a valid pack


@pytest.mark.slow
def test_gate_checks_each_attribute_not_only_all():
    """INT8 images that lose the colour of a tenth of the objects fail on 'color' even when the
    'all attributes' limit is left wide open."""
    from edge_t2i.data.shapes import iter_samples

    samples = list(iter_samples(400, seed=3, split="test", resolution=64))
    fp32 = np.stack([s.image for s in samples])
    int8 = fp32.copy()
    int8[:40] = 255 - int8[:40]  # inverted colours: hue off by 180 degrees, black <-> white backgrounds
    es = gate.EvalSet([s.text for s in samples], np.zeros((400, 384), np.float32), list(range(400)),
                      [{"text": s.text} for s in samples])
    loose = gate.GateConfig(min_psnr_db=0.0, max_all_drop=1.0)
    result = gate.judge(fp32, int8, es, loose)
    assert not result.passed and "'color' dropped +10.0%" in result.reason, result.reason
    assert "'all'" not in result.reason  # the wide-open 'all' margin holds
    assert gate.judge(fp32, fp32.copy(), es, loose).passed
