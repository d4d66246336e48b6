"""Seed -> noise, against independent references: SplitMix64's published outputs and a pure-Python
polar method for the portable generator, NumPy's default_rng for the legacy one."""

import math

import numpy as np
import pytest

from edge_t2i.errors import InputError
from edge_t2i.runtime.noise import LEGACY, PORTABLE, noise, portable_ln, splitmix64

MASK = 2**64 - 1


def splitmix64_reference(seed: int):
    """SplitMix64 (Steele, Lea, Flood 2014) with Python integers."""
    x = seed
    while True:
        x = (x + 0x9E3779B97F4A7C15) & MASK
        z = x
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        yield z ^ (z >> 31)


def polar_reference(seed: int, nz: int) -> np.ndarray:
    """Marsaglia's polar method over SplitMix64's 53-bit uniforms, one pair at a time, with math.log."""
    stream, out = splitmix64_reference(seed), []
    while len(out) < nz:
        a = 2.0 * ((next(stream) >> 11) * 2.0**-53) - 1.0
        b = 2.0 * ((next(stream) >> 11) * 2.0**-53) - 1.0
        s = a * a + b * b
        if 0.0 < s < 1.0:
            f = math.sqrt(-2.0 * math.log(s) / s)
            out += [np.float32(a * f), np.float32(b * f)]
    return np.array(out[:nz], np.float32)


# ---- SplitMix64 -----------------------------------------------------------------------------------
def test_splitmix64_matches_the_published_outputs_for_seed_0():
    assert splitmix64(np.array([0], np.uint64), 0, 3).tolist() == [[0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4,
                                                                     0x06C45D188009454F]]


@pytest.mark.parametrize("seed", [0, 1, 12345, 2**63, MASK])
def test_splitmix64_matches_a_python_reference_and_wraps(seed):
    ref = splitmix64_reference(seed)
    expected = [next(ref) for _ in range(40)]
    assert splitmix64(np.array([seed], np.uint64), 0, 40)[0].tolist() == expected
    assert splitmix64(np.array([seed], np.uint64), 25, 15)[0].tolist() == expected[25:]  # from output 26 on


# ---- the fixed ln series ------------------------------------------------------------------------------
def test_portable_ln_agrees_with_libm_to_the_last_bits():
    """On (0, 1), where the polar method uses it: within 2 ulp of libm's log."""
    s = np.concatenate([np.random.default_rng(0).random(5000), [1e-300, 2.0**-53, 0.25, 0.5, 0.75, 1 - 2**-53]])
    assert portable_ln(s) == pytest.approx(np.log(s), rel=4.5e-16, abs=0)
    assert portable_ln(np.array([0.5, 0.125]))[0] == pytest.approx(-math.log(2), rel=2.3e-16)
    assert portable_ln(np.array([0.125]))[0] == pytest.approx(-3 * math.log(2), rel=2.3e-16)


# ---- the portable generator --------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 7, 2**32 + 5, MASK])
@pytest.mark.parametrize("nz", [1, 2, 7, 100])
def test_portable_rows_match_the_polar_reference(seed, nz):
    z = noise([seed], nz)
    assert z.shape == (1, nz) and z.dtype == np.float32
    assert np.array_equal(z[0], polar_reference(seed, nz))


def test_portable_is_the_default_and_differs_from_numpy():
    seeds = [0, 3, 99]
    assert np.array_equal(noise(seeds, 16), noise(seeds, 16, PORTABLE))
    assert not np.array_equal(noise(seeds, 16), noise(seeds, 16, LEGACY))


def test_a_row_does_not_depend_on_the_other_seeds_or_on_nz():
    seeds = [5, 0, MASK, 5, 123456789]
    z = noise(seeds, 101)
    for i, s in enumerate(seeds):
        assert np.array_equal(z[i], noise([s], 101)[0])
        assert np.array_equal(z[i, :7], noise([s], 7)[0])  # a shorter z is a prefix
    assert np.array_equal(z[0], z[3]) and not np.array_equal(z[0], z[1])


def test_portable_noise_is_standard_normal():
    z = noise(range(300), 500).ravel().astype(np.float64)
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1.0) < 0.01
    assert abs(float(np.mean(np.abs(z) < 1.0)) - 0.6827) < 0.005  # the normal's shape, not only its moments
    assert abs(float(np.mean(z > 0)) - 0.5) < 0.005


# ---- the legacy generator ---------------------------------------------------------------------------
def test_legacy_rows_are_numpys_default_rng_of_their_seed():
    seeds = [0, 1, 7, 2**32 + 5, np.int64(12), np.uint8(3), MASK]
    z = noise(seeds, 100, LEGACY)
    assert z.shape == (7, 100) and z.dtype == np.float32
    for row, s in zip(z, seeds):
        assert np.array_equal(row, np.random.default_rng(int(s)).standard_normal(100, dtype=np.float32))


def test_legacy_known_values():
    """NEP 19: the PCG64 + ziggurat stream is stable, so a stored seed keeps its image."""
    assert noise([0], 3, LEGACY)[0].tolist() == [1.1176220178604126, -1.3871248960494995, -0.4265716075897217]


# ---- seeds and kinds -----------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", [PORTABLE, LEGACY])
def test_no_seeds_gives_an_empty_batch(kind):
    z = noise([], 16, kind)
    assert z.shape == (0, 16) and z.dtype == np.float32


@pytest.mark.parametrize("kind", [PORTABLE, LEGACY])
@pytest.mark.parametrize("bad", [-1, -(2**40), 2**64, 2**70, True, False, 1.0, "3", None, np.float32(2.0)])
def test_bad_seeds_are_refused(kind, bad):
    with pytest.raises(InputError, match=r"seeds must be integers in 0\.\.2\^64-1, got"):
        noise([0, bad], 4, kind)


def test_seed_bounds_are_inclusive():
    z = noise([0, MASK, np.uint64(MASK)], 3)
    assert z.shape == (3, 3) and np.array_equal(z[1], z[2]) and np.array_equal(z[0], polar_reference(0, 3))


def test_unknown_kind_is_refused():
    with pytest.raises(InputError, match="unknown noise generator 'pcg'; this runtime knows splitmix64-polar-v1, numpy-pcg64"):
        noise([1], 4, "pcg")
