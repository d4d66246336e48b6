"""The gate's statistic: exact paired bounds, and the power to tell a real loss from noise."""

import numpy as np
import pytest

from edge_t2i.convert.paired import adjusted_wald, paired_drop

N = 2048  # the gate's evaluation set: 128 prompts x 16 seeds
MARGIN = 0.02  # the gate's default margin for "all four attributes right"


def simulate(rng: np.random.Generator, lost_rate: float, gained_rate: float, fp32_acc: float = 0.89):
    """Verdicts of FP32 and INT8 on N shared images: INT8 loses `lost_rate` and gains `gained_rate`."""
    right32 = rng.random(N) < fp32_acc
    flip = rng.random(N)
    right8 = np.where(right32, flip >= lost_rate / fp32_acc, flip < gained_rate / (1 - fp32_acc))
    return right32, right8


def passes(right32, right8) -> bool:
    return paired_drop(right32, right8).upper <= MARGIN


@pytest.mark.parametrize("true_drop,lost,gained,want_pass", [
    (0.00, 0.02, 0.02, True),    # INT8 flips 4% of verdicts both ways: no loss
    (0.02, 0.03, 0.01, False),   # a real 2-point loss
])
def test_the_gate_has_power_on_2048_paired_images(true_drop, lost, gained, want_pass):
    """A model whose true drop is 0 passes >= 95% of the time; one whose true drop is 2 points fails
    >= 95% of the time (400 simulated gates each, seeded, so the test is repeatable)."""
    rng = np.random.default_rng(2026)
    outcomes = [passes(*simulate(rng, lost, gained)) for _ in range(400)]
    rate = np.mean(outcomes) if want_pass else 1 - np.mean(outcomes)
    assert rate >= 0.95, f"true drop {true_drop}: {'pass' if want_pass else 'fail'} rate {rate:.3f}"


def test_256_images_cannot_tell_them_apart():
    """The old gate's sample size: a no-loss model fails too often to be a gate (why it grew)."""
    rng = np.random.default_rng(7)
    n = 256
    fails = 0
    for _ in range(200):
        right32 = rng.random(n) < 0.89
        flip = rng.random(n)
        right8 = np.where(right32, flip >= 0.02 / 0.89, flip < 0.02 / 0.11)
        fails += paired_drop(right32, right8).upper > MARGIN
    assert fails / 200 > 0.5


def test_counts_and_interval_on_a_hand_made_case():
    right32 = np.array([1, 1, 1, 1, 0, 0, 1, 1, 1, 1], bool)
    right8 = np.array([1, 0, 0, 1, 1, 0, 1, 1, 1, 1], bool)
    d = paired_drop(right32, right8)
    assert (d.n, d.lost, d.gained) == (10, 2, 1)
    assert d.drop == pytest.approx(0.1) and d.fp32 == pytest.approx(0.8) and d.int8 == pytest.approx(0.7)
    # Agresti-Min by hand: b = 2.5, c = 1.5, n = 12: diff 1/12, var (4/12 - 1/144) / 12
    half = 1.959963984540054 * ((4 / 12 - 1 / 144) / 12) ** 0.5
    assert d.lower == pytest.approx(1 / 12 - half) and d.upper == pytest.approx(1 / 12 + half)
    assert d.lower < d.drop < d.upper


def test_identical_verdicts_still_have_an_interval():
    """No discordant pair is evidence, not certainty: the interval is symmetric and shrinks with n."""
    v = np.ones(100, bool)
    small, large = paired_drop(v, v.copy()), paired_drop(np.ones(2048, bool), np.ones(2048, bool))
    assert small.drop == 0.0 and small.lower == pytest.approx(-small.upper) and small.upper > large.upper > 0


def test_interval_is_monotone_in_the_losses():
    uppers = [adjusted_wald(lost, 10, 2048)[1] for lost in range(0, 60, 5)]
    assert uppers == sorted(uppers) and len(set(uppers)) == len(uppers)


def test_bad_verdicts_are_refused():
    with pytest.raises(ValueError):
        paired_drop(np.ones(3, bool), np.ones(4, bool))
    with pytest.raises(ValueError):
        paired_drop(np.ones(0, bool), np.ones(0, bool))
