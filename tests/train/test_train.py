"""Training: a few steps on a tiny dataset, exact resume, DDP with 2 gloo ranks."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from edge_t2i.data import make_shapes_dataset
from edge_t2i.errors import CheckpointError
from edge_t2i.models.checkpoint import load_generator, load_tensors
from edge_t2i.train import TrainConfig, train

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return make_shapes_dataset(tmp_path_factory.mktemp("data") / "shapes32", 96, resolution=32, show_progress=False)


def cfg(data, out, steps, **kw):
    return TrainConfig(data=str(data), out=str(out), resolution=32, ngf=4, ndf=4, batch_size=8, steps=steps,
                       eval_every=kw.pop("eval_every", 2), eval_count=16, threads=1, **kw)


def weights(run: Path) -> dict:
    files = sorted((run / "state").glob("*.safetensors"))  # g, d, g_ema, e (with an encoder) and optimisers
    return {f"{f.stem}.{k}": v for f in files for k, v in load_tensors(f).items()}


def test_train_writes_checkpoint_samples_metrics(tiny_data, tmp_path):
    run = train(cfg(tiny_data, tmp_path / "run", 4))
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4]
    assert {"loss_d", "loss_g", "images_per_s", "eval_all", "eval_color"} <= set(rows[-1])
    assert (run / "samples" / "latest.png").is_file()
    g = load_generator(run / "checkpoint")
    assert g.config.resolution == 32
    assert not any(p.suffix in (".pt", ".pkl") for p in run.rglob("*"))


@pytest.mark.parametrize("encode_fraction", [0.0, 0.5])
def test_resume_is_exact(tiny_data, tmp_path, encode_fraction):
    straight = train(cfg(tiny_data, tmp_path / "a", 6, encode_fraction=encode_fraction))
    split = train(cfg(tiny_data, tmp_path / "b", 4, encode_fraction=encode_fraction))
    train(cfg(tiny_data, tmp_path / "b", 6, encode_fraction=encode_fraction), resume=True)
    wa, wb = weights(straight), weights(split)
    assert wa.keys() == wb.keys()
    assert ("e.head.weight" in wa) == (encode_fraction > 0) and "opt_g.0.exp_avg" in wa
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    assert split == tmp_path / "b"


def test_refuses_to_overwrite_a_run_without_resume(tiny_data, tmp_path):
    train(cfg(tiny_data, tmp_path / "r", 2))
    with pytest.raises(CheckpointError, match="--resume"):
        train(cfg(tiny_data, tmp_path / "r", 2))


@pytest.mark.slow
def test_ddp_two_gloo_ranks_end_with_identical_weights(tiny_data, tmp_path):
    script = tmp_path / "ddp.py"
    script.write_text(
        "import os, sys, torch\n"
        "from edge_t2i.train import TrainConfig, train\n"
        "import edge_t2i.train.loop as T\n"
        "captured = {}\n"
        "orig = T.Trainer.train_step\n"
        "def step(self, data):\n"
        "    captured['t'] = self\n"
        "    return orig(self, data)\n"
        "T.Trainer.train_step = step\n"
        f"cfg = TrainConfig(data={str(tiny_data)!r}, out={str(tmp_path / 'ddp')!r}, resolution=32, ngf=4, ndf=4,"
        " batch_size=8, steps=3, eval_every=100, eval_count=16, threads=1, gp_every=2,"
        " encode_fraction=0.5, noise_in_fusion=4, diversity_weight=1.0)\n"
        "train(cfg)\n"
        "t = captured['t']\n"
        "flat = torch.cat([p.detach().flatten() for m in (t.G, t.D, t.E) for p in m.parameters()])\n"
        "torch.save(flat, os.path.join(sys.argv[1], f\"rank{os.environ['RANK']}.pt\"))\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # --standalone: a c10d rendezvous on localhost with a free port (no fixed port to collide with)
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(script), str(tmp_path)],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert torch.equal(r0, r1)
    # and they trained: weights moved away from the shared initialisation
    torch.manual_seed(0)
    from edge_t2i.models.networks import NetD, NetG

    mc = TrainConfig(data="x", out="y", resolution=32, ngf=4, ndf=4, noise_in_fusion=4).model_config()
    init = torch.cat([p.detach().flatten() for m in (NetG(mc), NetD(mc)) for p in m.parameters()])
    assert not torch.equal(r0[: len(init)], init)


def test_text_norm_stats_come_from_the_training_set(tiny_data, tmp_path):
    from edge_t2i.data.imagefolder import read_imagefolder
    from edge_t2i.models import text_encoder as text

    run = train(cfg(tiny_data, tmp_path / "n", 2))
    g = load_generator(run / "checkpoint")
    folder = read_imagefolder(tiny_data)
    emb = torch.from_numpy(text.cached_embeddings(folder.texts, text.cache_path(tiny_data)))[: len(folder) - 9]
    standardised = emb * g.text_scale + g.text_shift
    assert standardised.mean(0).abs().max() < 1e-4
    assert ((standardised.std(0) - 1).abs() < 1e-3).float().mean() > 0.9  # a few dims sit at the std floor


def test_fold_text_norm_keeps_the_function():
    from edge_t2i.models.config import ModelConfig
    from edge_t2i.models.networks import NetG
    from edge_t2i.train.state import fold_text_norm

    torch.manual_seed(0)
    raw = NetG(ModelConfig(resolution=32, ngf=4, text_norm=False)).eval()
    for p in raw.parameters():  # fc2 starts at zero: give the text pathways something to carry
        p.data.add_(torch.randn_like(p) * 0.05)
    emb = torch.nn.functional.normalize(torch.randn(64, 384) * 0.1 + 1.0, dim=1)
    norm = NetG(ModelConfig(resolution=32, ngf=4, text_norm=True)).eval()
    norm.set_text_stats(emb)
    norm.load_state_dict(fold_text_norm(raw.state_dict(), norm))
    z = torch.randn(8, 100)
    assert torch.allclose(raw(z, emb[:8]), norm(z, emb[:8]), atol=1e-5)
    with pytest.raises(ValueError, match="text_norm"):
        raw.set_text_stats(emb)


def test_warm_start_from_a_raw_embedding_run(tiny_data, tmp_path):
    old = train(cfg(tiny_data, tmp_path / "old", 2, text_norm=False))
    new = train(cfg(tiny_data, tmp_path / "new", 2, init_from=str(old / "state")))
    assert load_generator(new / "checkpoint").config.text_norm
    rows = [json.loads(line) for line in (new / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 2
    with pytest.raises(CheckpointError, match="warm start"):
        train(cfg(tiny_data, tmp_path / "bad", 2, init_from=str(tmp_path)))


def test_aligned_l1_forgives_small_shifts_only():
    from edge_t2i.train.align import aligned_l1

    real = torch.full((2, 3, 32, 32), -1.0)
    real[:, :, 10:16, 10:16] = 1.0
    shifted = torch.roll(real, (3, -2), (2, 3)).requires_grad_(True)
    assert aligned_l1(shifted, real, 4).item() == 0.0 < (shifted - real).abs().mean().item()
    far = torch.roll(real, (8, 0), (2, 3)).requires_grad_(True)
    loss = aligned_l1(far, real, 4)
    assert loss.item() > 0
    loss.backward()
    assert far.grad is not None and far.grad.abs().sum() > 0


def test_aligned_l1_weights_the_object_region():
    from edge_t2i.train.align import aligned_l1

    real = torch.full((1, 3, 32, 32), -1.0)
    real[:, :, 10:16, 10:16] = 1.0
    mask = (real[:, 0] > 0).to(torch.uint8)
    fake = real.clone()
    fake[:, :, 10, 10] = -1.0  # one object pixel wrong
    plain = aligned_l1(fake, real, 2)
    weighted = aligned_l1(fake, real, 2, mask, object_weight=4.0)
    assert torch.isclose(weighted, 5 * plain)


def test_aligned_l1_rotation_search_fits_a_rotated_hexagon():
    """The data rotates each object by +-12 degrees: without the rotation search a fake hexagon at
    another angle is pulled toward a blend of the two (a rounder shape); with it, toward itself."""
    import numpy as np

    from edge_t2i.data.shapes import draw_object
    from edge_t2i.train.align import aligned_l1

    def hexagon(angle, cx, cy):
        a = np.full((64, 64, 3), 128, np.uint8)
        draw_object(a, "hexagon", (255, 0, 0), (cx, cy), 14.0, angle)
        return torch.from_numpy(a).permute(2, 0, 1).float() / 127.5 - 1

    real = torch.stack([hexagon(10.0, 30, 28), hexagon(-8.0, 30, 28)])
    fake = torch.stack([hexagon(-5.0, 32, 27), hexagon(8.0, 29, 30)])
    mask = ((real - real[:, :, :1, :1]).abs().amax(1) > 0.3).to(torch.uint8)
    shift_only = aligned_l1(fake, real, 4, mask, 4.0, max_rotation=0.0)
    rotated = aligned_l1(fake, real, 4, mask, 4.0, max_rotation=20.0)
    assert rotated < 0.4 * shift_only


def test_aligned_l1_edge_term_charges_soft_edges():
    from edge_t2i.train.align import aligned_l1

    real = torch.full((1, 3, 32, 32), -1.0)
    real[:, :, 8:20, 8:20] = 1.0
    soft = torch.nn.functional.avg_pool2d(real, 3, 1, 1, count_include_pad=False)  # a 1-px blur of the edges
    assert aligned_l1(real, real, 2, edge_weight=1.0) == 0
    assert aligned_l1(soft, real, 2, edge_weight=1.0) > 1.5 * aligned_l1(soft, real, 2)


def test_mode_seeking_pairs_rows_and_is_bounded(tiny_data):
    from edge_t2i.train.data import batch_for_step
    from edge_t2i.train.ddp import Distributed
    from edge_t2i.train.losses import mode_seeking

    c = cfg(tiny_data, "unused", 1, diversity_weight=1.0)
    idx, _, _ = batch_for_step(c, 3, 96, Distributed())
    assert (idx[0::2] == idx[1::2]).all()
    with_encoder = cfg(tiny_data, "unused", 1, diversity_weight=1.0, encode_fraction=0.5)
    idx, _, _ = batch_for_step(with_encoder, 3, 96, Distributed())
    assert (idx[0:4:2] == idx[1:4:2]).all() and len(set(idx[4:])) > 1  # encoded rows: four real images
    z = torch.zeros(4, 100)
    z[1::2] = 1.0
    same = torch.zeros(4, 3, 8, 8)
    differ = same.clone()
    differ[1::2] = 0.05
    assert mode_seeking(same, z, 0.1) == 0
    assert torch.isclose(mode_seeking(differ, z, 0.1), torch.tensor(0.05))
    assert torch.isclose(mode_seeking(differ * 10, z, 0.1), torch.tensor(0.1))  # capped


def test_noise_encoder_starts_as_the_prior_and_learns(tiny_data):
    from edge_t2i.models.networks import NoiseEncoder
    from edge_t2i.train.data import load_data
    from edge_t2i.train.ddp import Distributed
    from edge_t2i.train.loop import Trainer

    c = cfg(tiny_data, "unused", 3, encode_fraction=0.5)
    enc = NoiseEncoder(c.model_config(), 8)
    mu, logvar = enc(torch.rand(2, 3, 32, 32) * 2 - 1)
    assert mu.shape == (2, 8) and not mu.any() and not logvar.any()  # z = noise, as without an encoder

    data = load_data(c, True)
    trainer = Trainer(c, Distributed(), aux=data.labels is not None)
    trainer.start(data)
    first = trainer.train_step(data)
    assert first["kl"] == 0.0 and trainer.E is not None and trainer.E.head.weight.abs().sum() > 0
    assert trainer.train_step(data)["kl"] > 0  # the reconstruction loss moved the noise away from the prior
    off = Trainer(cfg(tiny_data, "unused", 3), Distributed(), aux=data.labels is not None)
    assert off.E is None and [n for n, _ in off.modules()] == ["g", "d", "g_ema"]


def test_widen_fusion_adds_small_noise_columns_only():
    from edge_t2i.models.config import ModelConfig
    from edge_t2i.models.networks import NetG
    from edge_t2i.train.state import widen_fusion

    torch.manual_seed(0)
    old = NetG(ModelConfig(resolution=32, ngf=4)).eval()
    with torch.no_grad():
        for name, p in old.named_parameters():
            if "fc2.weight" in name:
                p.normal_(0, 0.05)
    new = NetG(ModelConfig(resolution=32, ngf=4, noise_in_fusion=8)).eval()
    new.load_state_dict(widen_fusion(old.state_dict(), new))
    e, z = torch.randn(2, 384), torch.randn(2, 100)
    z0 = z.clone()
    z0[:, :8] = 0
    assert torch.allclose(old(z0, e), new(z0, e), atol=1e-6)  # the old function where the new inputs are 0
    assert 0 < (old(z, e) - new(z, e)).abs().max() < 0.1   # and a small, non-zero response to them
