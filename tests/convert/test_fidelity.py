"""The gate without an oracle (convert/fidelity.py) on known inputs: per-image PSNR and SSIM, the t-bound,
the decision and which metric decided, the evaluation pairs, the configuration's checks."""

import math

import numpy as np
import pytest

from edge_t2i.convert import fidelity
from edge_t2i.errors import ConvertError


def img(value: int, n: int = 2, side: int = 16) -> np.ndarray:
    return np.full((n, side, side, 3), value, np.uint8)


def test_psnr_per_image_of_known_arrays_and_the_cap():
    a, b = img(100), img(110)
    b[1] = 101  # image 0: mse 100; image 1: mse 1
    got = fidelity.psnr_per_image(a, b)
    assert got == pytest.approx([10 * math.log10(255**2 / 100), 10 * math.log10(255**2)])
    assert fidelity.psnr_per_image(img(0), img(255)) == pytest.approx([0.0, 0.0])  # no uint8 wrap-around
    assert list(fidelity.psnr_per_image(img(7), img(7))) == [fidelity.MAX_PSNR_DB] * 2


def test_ssim_is_one_for_identical_images_and_drops_with_noise():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    assert fidelity.ssim_per_image(base, base) == pytest.approx([1.0, 1.0, 1.0])
    light = np.clip(base.astype(int) + rng.integers(-4, 5, base.shape), 0, 255).astype(np.uint8)
    heavy = np.clip(base.astype(int) + rng.integers(-60, 61, base.shape), 0, 255).astype(np.uint8)
    s_light, s_heavy = fidelity.ssim_per_image(base, light), fidelity.ssim_per_image(base, heavy)
    assert (s_light < 1.0).all() and (s_light > 0.99).all() and (s_heavy < 0.95).all()


def test_mean_bound_is_the_student_t_interval():
    values = np.array([0.90, 0.92, 0.94, 0.96])  # mean 0.93, sd 0.025820, t(0.975, 3) = 3.182446
    b = fidelity.mean_bound(values, "ssim", 0.88)
    half = 3.182446305 * 0.0258198890 / 2
    assert b.mean == pytest.approx(0.93) and b.n == 4
    assert b.lower == pytest.approx(0.93 - half, abs=1e-6) and b.upper == pytest.approx(0.93 + half, abs=1e-6)
    assert b.passed and not fidelity.mean_bound(values, "ssim", 0.90).passed  # 0.93 - 0.0411 = 0.8889
    same = fidelity.mean_bound(np.full(10, 0.97), "ssim", 0.97)
    assert same.lower == same.upper == pytest.approx(0.97) and same.passed


def test_the_bound_not_the_mean_decides():
    """A mean above the threshold does not pass when its interval reaches below it."""
    rng = np.random.default_rng(1)
    cfg = fidelity.FidelityConfig(min_psnr_db=30.0, min_ssim=0.90, images=16, kid=False)
    psnr = np.full(16, 40.0)
    wide = 0.91 + rng.normal(0, 0.08, 16)  # mean ~0.91, but the 95% bound of 16 images is ~0.04 wide
    r = fidelity.judge_pairs(psnr, wide, cfg)
    assert r.ssim > 0.9 and r.metrics["ssim"]["lower"] < 0.9 and not r.passed
    assert r.decided_by == "ssim" and "decided by SSIM" in r.reason and "lower end < 0.9" in r.reason
    assert "fewer than the default 2048" in r.note


def test_which_metric_decided():
    cfg = fidelity.FidelityConfig(min_psnr_db=30.0, min_ssim=0.90, images=16, kid=False)
    good_ssim, good_psnr = np.full(16, 0.99), np.full(16, 45.0)
    low_psnr = fidelity.judge_pairs(np.full(16, 25.0), good_ssim, cfg)
    assert not low_psnr.passed and low_psnr.decided_by == "psnr"
    assert low_psnr.metrics["ssim"]["passed"] and not low_psnr.metrics["psnr"]["passed"]
    both_fail = fidelity.judge_pairs(np.full(16, 29.0), np.full(16, 0.5), cfg)
    assert both_fail.decided_by == "ssim"  # the one further below its threshold, relative to its range
    near_ssim = fidelity.judge_pairs(good_psnr, np.full(16, 0.91), cfg)  # PSNR 15/70 of its way, SSIM 0.01/0.1
    assert near_ssim.passed and near_ssim.decided_by == "ssim"
    near_psnr = fidelity.judge_pairs(np.full(16, 31.0), good_ssim, cfg)
    assert near_psnr.passed and near_psnr.decided_by == "psnr" and near_psnr.note == "16 paired images, fewer than " \
        "the default 2048: the bounds are wider"
    full = fidelity.judge_pairs(np.full(2048, 31.0), np.full(2048, 0.99), fidelity.FidelityConfig())
    assert full.note == "" and full.count == 2048


def test_judge_on_images_and_its_errors():
    rng = np.random.default_rng(2)
    a = rng.integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    cfg = fidelity.FidelityConfig(images=16, kid=False)
    r = fidelity.judge(a, a.copy(), cfg)
    assert r.passed and r.psnr_db == fidelity.MAX_PSNR_DB and r.ssim == pytest.approx(1.0) and r.count == 4
    assert r.as_dict()["kind"] == "fidelity" and set(r.brief()) == {"psnr_db", "ssim", "psnr_lower", "ssim_lower",
                                                                      "passed"}
    with pytest.raises(ConvertError, match="differ in shape"):
        fidelity.judge(a, a[:3], cfg)
    with pytest.raises(ConvertError, match=">= 2 paired images"):
        fidelity.judge_pairs(np.ones(1), np.ones(1), cfg)


def test_eval_pairs_cycle_the_prompts_with_one_fresh_seed_per_image():
    emb = np.arange(6, dtype=np.float32).reshape(3, 2)
    rows, seeds = fidelity.eval_pairs(emb, fidelity.FidelityConfig(images=16, seed_offset=5, kid=False))
    assert rows.shape == (16, 2) and np.array_equal(rows[:4], emb[[0, 1, 2, 0]])
    assert seeds == list(range(5, 21))
    assert np.bincount(np.arange(16) % 3).tolist() == [6, 5, 5]  # every prompt as often as the next, +-1
    with pytest.raises(ConvertError, match="at least one evaluation embedding"):
        fidelity.eval_pairs(emb[:0], fidelity.FidelityConfig(images=16, kid=False))


@pytest.mark.parametrize("kwargs, message", [
    ({"images": 15}, "between 16 and"), ({"images": True}, "between 16 and"),
    ({"min_ssim": 1.1}, "min_ssim must be a number in"), ({"min_ssim": math.nan}, "min_ssim"),
    ({"min_psnr_db": -1}, "min_psnr_db must be"), ({"min_psnr_db": "30"}, "min_psnr_db"),
])
def test_config_checks(kwargs, message):
    with pytest.raises(ConvertError, match=message):
        fidelity.FidelityConfig(**kwargs)
