"""The layered generator (flat background colour + alpha-masked foreground): its composite, its
background term, the warm start that fits its new heads, export and INT8."""

import json

import numpy as np
import pytest
import torch

from edge_t2i.data import make_shapes_dataset
from edge_t2i.errors import CheckpointError
from edge_t2i.eval import cleanliness
from edge_t2i.imaging import to_uint8
from edge_t2i.models.checkpoint import load_generator, save_generator
from edge_t2i.models.config import ModelConfig
from edge_t2i.models.networks import NetG
from edge_t2i.train import TrainConfig, layers, train
from edge_t2i.train.losses import background_l1, border_median, colour_line_distance

CFG = ModelConfig(resolution=32, ngf=4, noise_in_fusion=4, layered=True)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return make_shapes_dataset(tmp_path_factory.mktemp("data") / "shapes32", 96, resolution=32, show_progress=False)


def run_cfg(data, out, steps, **kw):
    return TrainConfig(data=str(data), out=str(out), resolution=32, ngf=4, ndf=4, batch_size=8, steps=steps,
                       eval_every=2, eval_count=16, threads=1, **kw)


def test_alpha_zero_draws_exactly_the_flat_background_and_alpha_one_the_foreground():
    g = NetG(CFG).eval()
    z, emb = torch.randn(3, CFG.nz), torch.randn(3, CFG.cond_dim)
    with torch.no_grad():
        g.to_alpha.weight.zero_()
        g.to_alpha.bias.fill_(-40.0)  # sigmoid underflows to 0
        flat = g(z, emb)
        out = g.layers(*g.features(z, emb))
        assert torch.equal(flat, out["background"].expand_as(flat).clamp(-1, 1))
        assert flat.amax((2, 3)).sub(flat.amin((2, 3))).abs().max() == 0  # one colour per image
        assert not torch.equal(flat[0], flat[1])  # the colour depends on the sentence and noise
        g.to_alpha.bias.fill_(40.0)
        assert torch.allclose(g(z, emb), out["foreground"].clamp(-1, 1), atol=1e-6)


@pytest.mark.parametrize("kw", [{"colour_line_weight": 1.0}, {"named_background_prior": True}, {"background_weight": 1.0},
                                {"layered": True, "named_background_prior": True, "background_weight": 0.0}])
def test_layered_only_options_are_refused_where_they_would_do_nothing(kw, tmp_path):
    from edge_t2i.errors import DataError

    with pytest.raises(DataError, match="layered|background"):
        TrainConfig(data="d", out=str(tmp_path), **kw)


def test_a_single_layer_generator_has_no_layer_heads():
    g = NetG(ModelConfig(resolution=32, ngf=4))
    assert not any(k.startswith(("to_alpha", "to_background")) for k in g.state_dict())
    with pytest.raises(CheckpointError, match="layered"):
        ModelConfig(layered="yes")


def test_border_median_and_background_l1():
    real = torch.full((2, 3, 8, 8), -1.0)
    real[1] = 0.5
    real[:, :, 2:6, 2:6] = 0.9  # the object does not touch the border
    assert torch.equal(border_median(real), torch.tensor([[-1.0] * 3, [0.5] * 3]))
    colours = torch.tensor([[-1.0, -1.0, -1.0], [0.0, 0.0, 0.0]])
    assert background_l1(colours, real, torch.tensor([True, True])).item() == pytest.approx(0.25)
    # free rows (no background named) are matched to the real backgrounds by brightness rank
    assert background_l1(colours, real, torch.tensor([True, False])).item() == pytest.approx(0.25)  # 0 -> 0.5
    assert background_l1(torch.tensor([[0.5] * 3, [-0.9] * 3]), real, torch.tensor([False, False])).item() == (
        pytest.approx(0.05))
    # four free rows that all drew black, against real backgrounds half black, half white: two must turn white
    real4 = torch.cat([real[:1]] * 2 + [torch.ones(1, 3, 8, 8)] * 2)
    all_black = torch.full((4, 3), -1.0)
    assert background_l1(all_black, real4, torch.zeros(4, dtype=torch.bool)).item() == pytest.approx(1.0)
    assert background_l1(torch.tensor([[1.0] * 3, [-1.0] * 3] * 2), real4, torch.zeros(4, dtype=torch.bool)) == 0


def test_colour_line_distance_is_zero_for_two_colour_mixes_and_charges_rims():
    bg = torch.tensor([1.0, 1.0, 1.0]).view(1, 3, 1, 1).requires_grad_(True)
    fg = torch.tensor([-1.0, 0.5, 0.5]).view(1, 3, 1, 1).expand(1, 3, 8, 8).clone().requires_grad_(True)
    alpha = torch.zeros(1, 1, 8, 8)
    alpha[..., 2:6, 2:6] = 1.0
    alpha[..., 1, 2:6] = 0.4  # an anti-aliased edge: 40% object, 60% background
    layers_ = {"background": bg, "alpha": alpha, "foreground": fg}
    clean = bg + alpha * (fg - bg)
    assert colour_line_distance(clean, layers_).item() < 1e-3
    rim = clean.clone()
    rim[..., 6, 2:6] = -1.0  # a dark rim below the object
    blotch = clean.clone()
    blotch[..., 0, 0] = 0.6  # a light gray blotch on white
    assert colour_line_distance(rim, layers_).item() > 0.05 and colour_line_distance(blotch, layers_).item() > 1e-3
    colour_line_distance(bg + alpha * (fg - bg) + 0.1 * torch.randn(1, 3, 8, 8), layers_).backward()
    assert bg.grad.abs().sum() > 0 and fg.grad.abs().sum() > 0  # through the image only: the colours are held


def test_cleaned_targets_flatten_everything_but_the_object():
    img = np.full((1, 32, 32, 3), 128, np.uint8)
    img[0, 10:20, 10:20] = (230, 30, 30)  # a red square
    img[0, 2:5, 25:29] = 160  # a light gray blotch
    fg = torch.from_numpy(img).permute(0, 3, 1, 2).float().div(127.5).sub(1)
    target, colour, alpha = layers.cleaned_targets(fg)
    out = to_uint8(target.numpy())[0]
    assert (out[2:5, 25:29] == 128).all() and (out[10:20, 10:20] == (230, 30, 30)).all()
    assert (alpha[0, 0, 10:20, 10:20] == 1).all() and (alpha[0, 0, 2:5, 25:29] == 0).all()
    assert (alpha[0, 0, 9, 12] == -1) and (alpha[0, 0, 5, 5] == 0)  # the edge ring has no target
    assert torch.allclose(colour, torch.full((1, 3), 128 / 127.5 - 1), atol=1e-6)


def test_fit_heads_flattens_the_background_and_leaves_the_trunk_alone(monkeypatch):
    """A trunk that draws a red square on a gray background with gray blotches: after the fit, the
    composite keeps the square and its background is flat."""
    torch.manual_seed(0)
    g = NetG(CFG)
    real_features = g.features
    pattern = torch.Generator().manual_seed(3)

    def features(z, emb):  # channel 0: the square, 1: smooth blotches, 2: constant
        _, cond = real_features(z, emb)
        x = torch.zeros(len(z), CFG.ngf, 32, 32)
        for i in range(len(z)):
            r, c = torch.randint(4, 20, (2,), generator=pattern).tolist()
            x[i, 0, r:r + 8, c:c + 8] = 1.0
        blotch = torch.randn(len(z), 1, 4, 4, generator=pattern)
        x[:, 1:2] = torch.nn.functional.interpolate(blotch, size=32, mode="bilinear") * (1 - x[:, :1])
        x[:, 2] = 1.0
        return x, cond

    monkeypatch.setattr(g, "features", features)
    with torch.no_grad():
        g.to_rgb.weight.zero_()
        g.to_rgb.bias.zero_()
        g.to_rgb.weight[:, 0, 1, 1] = torch.tensor([3.0, -3.0, -3.0])
        g.to_rgb.weight[:, 1, 1, 1] = 0.25  # blotches within the oracle's foreground threshold
    emb = torch.randn(64, CFG.cond_dim)
    trunk = {k: v.clone() for k, v in g.state_dict().items() if not k.startswith(("to_alpha", "to_background"))}
    z = torch.randn(16, CFG.nz, generator=torch.Generator().manual_seed(1))

    def figures() -> tuple[float, int]:
        with torch.no_grad():
            x, cond = g.features(z, emb[:16])
            out = g.layers(x, cond)
            image = out["background"] + out["alpha"] * (out["foreground"] - out["background"])
        images = to_uint8(image.clamp(-1, 1).numpy())
        red = sum(int(((im[..., 0] > 200) & (im[..., 1] < 60)).sum() >= 60) for im in images)
        return float(np.mean([cleanliness.background_deviation(im) for im in images])), red

    before, red_before = figures()  # alpha ~0.5 everywhere: the square is a pale mix
    fit = layers.fit_heads(g, emb, steps=300, batch=16, lr=1e-2)
    after, red_after = figures()
    assert before > 10 and after < 2, (before, after, fit)
    assert red_after == 16 > red_before  # every square drawn, where the untrained alpha half-hid it
    assert fit["background_l1"] < 0.2  # the colours cannot be exact: the trunk's background here is random
    for k, v in trunk.items():
        assert torch.equal(g.state_dict()[k], v), k
    with pytest.raises(ValueError, match="layered"):
        layers.fit_heads(NetG(ModelConfig(resolution=32, ngf=4)), emb, steps=1)


def test_layered_run_warm_starts_from_a_single_layer_run_and_resumes_exactly(tiny_data, tmp_path):
    old = train(run_cfg(tiny_data, tmp_path / "old", 2, noise_in_fusion=4))
    kw = {"noise_in_fusion": 4, "layered": True, "init_from": str(old / "state"), "background_weight": 1.0,
          "colour_line_weight": 1.0}
    straight = train(run_cfg(tiny_data, tmp_path / "a", 4, **kw))
    g = load_generator(straight / "checkpoint")
    assert g.config.layered and json.loads((straight / "checkpoint" / "config.json").read_text())["model"]["layered"]
    rows = [json.loads(line) for line in (straight / "metrics.jsonl").read_text().splitlines()]
    assert "background" in rows[-1] and "colour_line" in rows[-1]
    single = load_generator(old / "checkpoint")  # the trunk came from the single-layer run
    assert g.state_dict()["fc.weight"].shape == single.state_dict()["fc.weight"].shape
    split = train(run_cfg(tiny_data, tmp_path / "b", 2, **kw))
    train(run_cfg(tiny_data, tmp_path / "b", 4, **kw), resume=True)
    assert torch.equal(load_generator(split / "checkpoint").to_alpha.weight, g.to_alpha.weight)


def test_layered_generator_exports_with_parity_and_quantizes_its_heads(tmp_path):
    import onnx

    from edge_t2i import calib
    from edge_t2i.convert.export import export_onnx
    from edge_t2i.convert.quantize import quantize_int8

    g = NetG(CFG).eval()
    save_generator(tmp_path / "ckpt", g)
    fp32 = export_onnx(tmp_path / "ckpt", tmp_path / "g.onnx")
    assert fp32.max_abs_error < 1e-4
    data = calib.calibration_batches(np.random.default_rng(0).normal(size=(4, 384)).astype(np.float32), 16, 100)
    graph = onnx.load(str(quantize_int8(fp32.path, data, tmp_path / "q.onnx"))).graph
    producer = {o: n.op_type for n in graph.node for o in n.output}
    heads = {n.name: n for n in graph.node if n.name.startswith(("/to_alpha/", "/to_background/"))
             and n.op_type in ("Conv", "Gemm")}
    assert len(heads) == 3
    assert all(producer.get(n.input[1]) == "DequantizeLinear" for n in heads.values())


def test_named_background_prior_gives_named_rows_prior_noise(tiny_data, tmp_path):
    from edge_t2i.train.data import load_data
    from edge_t2i.train.ddp import setup_distributed
    from edge_t2i.train.loop import Trainer

    cfg = TrainConfig(data=str(tiny_data), out=str(tmp_path / "r"), resolution=32, ngf=4, ndf=4, batch_size=32,
                      steps=1, eval_count=16, threads=1, layered=True, encode_fraction=0.5,
                      background_weight=1.0, named_background_prior=True)
    data = load_data(cfg, True)
    trainer = Trainer(cfg, setup_distributed(), aux=data.labels is not None)
    with torch.no_grad():
        trainer.E.head.bias.fill_(3.0)  # the posterior: mean 3, std e^1.5, far from N(0, I)
    batch = trainer.make_batch(data)
    encoded = slice(batch.first_encoded, None)
    named = batch.names_background[encoded]
    code = batch.z[encoded, :cfg.encoder_dims].abs().mean(1)
    assert named.any() and not named.all()
    assert (code[named] < 2).all() and (code[~named] > 2).all()  # named rows: the prior; others: the encoder
