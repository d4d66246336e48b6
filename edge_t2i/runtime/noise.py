"""Seed -> noise: the z a seed stands for, bit for bit the same in every language and on every backend.

A game stores a seed, not an image: `noise(seeds, nz)` re-creates the generator's input exactly, so
the same seed gives the same image through torch, ONNX Runtime, TensorRT and the web page.

The portable generator, "splitmix64-polar-v1" (specified in docs/pack-spec.md, with test vectors):
SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number generators", OOPSLA 2014)
gives 53-bit uniforms; Marsaglia's polar method turns pairs of them into standard normals. It uses
only IEEE-754 operations that every language rounds the same way (+, -, *, /, sqrt, and reading a
double's exponent), so C#, C++ and JavaScript reproduce it exactly; ln is a fixed series, not libm.
Packs written before it (schema 1) assume "numpy-pcg64": NumPy's default_rng(seed).standard_normal.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edge_t2i.errors import InputError

PORTABLE = "splitmix64-polar-v1"
LEGACY = "numpy-pcg64"
KINDS = (PORTABLE, LEGACY)
MAX_SEED = 2**64 - 1

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_LN2 = 0.6931471805599453  # the double nearest ln 2
_LN_TERMS = 20             # atanh series terms: |t| <= 1/3, so the last term is below 2^-60 of the sum


def splitmix64(seeds: np.ndarray, start: int, count: int) -> np.ndarray:
    """uint64 [len(seeds), count]: outputs start+1 .. start+count of SplitMix64 seeded with each seed.

    Output i is mix(seed + i * 0x9E3779B97F4A7C15 mod 2^64)."""
    index = np.arange(start + 1, start + count + 1, dtype=np.uint64)
    z = seeds.astype(np.uint64)[:, None] + index[None, :] * _GAMMA  # uint64 arrays wrap modulo 2^64
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def portable_ln(s: np.ndarray) -> np.ndarray:
    """ln(s) for float64 s > 0 from +, -, *, / only: s = m * 2^e (frexp, m in [0.5, 1)),
    ln m = 2 atanh(t) with t = (m - 1) / (m + 1), by Horner over the odd series terms 1 / (2k + 1)."""
    m, e = np.frexp(s)
    t = (m - 1.0) / (m + 1.0)
    t2 = t * t
    p = np.full_like(t, 1.0 / (2 * _LN_TERMS + 1))
    for k in range(_LN_TERMS - 1, -1, -1):  # in place: the same two roundings per step as p = p * t2 + c
        np.multiply(p, t2, out=p)
        np.add(p, 1.0 / (2 * k + 1), out=p)
    return e.astype(np.float64) * _LN2 + (2.0 * t) * p


def _polar_block(seeds: np.ndarray, start: int, pairs: int) -> tuple[np.ndarray, np.ndarray]:
    """Candidate pairs start/2 .. start/2 + pairs: (normals float32 [B, pairs, 2], accepted bool [B, pairs])."""
    u = (splitmix64(seeds, start, 2 * pairs) >> np.uint64(11)).astype(np.float64) * 2.0**-53
    a, b = 2.0 * u[:, 0::2] - 1.0, 2.0 * u[:, 1::2] - 1.0
    s = a * a + b * b
    accepted = (s > 0.0) & (s < 1.0)
    safe = np.where(accepted, s, 0.5)
    f = np.sqrt((-2.0 * portable_ln(safe)) / safe)
    return np.stack([(a * f).astype(np.float32), (b * f).astype(np.float32)], axis=-1), accepted


def portable_noise(seeds: Sequence[int], nz: int) -> np.ndarray:
    """float32 [len(seeds), nz] by "splitmix64-polar-v1": per seed, candidate pairs (a, b) = 2u - 1 from
    consecutive uniforms u = (splitmix64 >> 11) * 2^-53; a pair with 0 < s = a*a + b*b < 1 yields
    a*f and b*f, f = sqrt((-2 * ln s) / s), rounded to float32; the first nz values are z."""
    seeds_u = np.array([int(s) for s in seeds], dtype=np.uint64).reshape(-1)
    half = (nz + 1) // 2
    values = np.zeros((len(seeds_u), 0, 2), np.float32)
    accepted = np.zeros((len(seeds_u), 0), bool)
    start = 0
    while len(seeds_u) and accepted.sum(axis=1).min() < half:  # ~78.5% of pairs are accepted
        more = (half * 3) // 2 + 8  # 1.5x the pairs needed: one block nearly always suffices (same stream)
        v, acc = _polar_block(seeds_u, start, more)
        values, accepted = np.concatenate([values, v], 1), np.concatenate([accepted, acc], 1)
        start += 2 * more
    order = np.argsort(~accepted, axis=1, kind="stable")[:, :half]  # accepted pairs first, in stream order
    chosen = np.take_along_axis(values, order[:, :, None], axis=1)
    return np.ascontiguousarray(chosen.reshape(len(seeds_u), 2 * half)[:, :nz])


def legacy_noise(seeds: Sequence[int], nz: int) -> np.ndarray:
    """float32 [len(seeds), nz]: row i is NumPy's default_rng(seeds[i]).standard_normal(nz, float32)
    (PCG64 + ziggurat, stable across NumPy versions per NEP 19; not reproducible outside NumPy)."""
    out = np.empty((len(seeds), nz), np.float32)
    for i, s in enumerate(seeds):
        out[i] = np.random.default_rng(int(s)).standard_normal(nz, dtype=np.float32)
    return out


def check_seeds(seeds: Sequence[int]) -> None:
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or not 0 <= s <= MAX_SEED:
            raise InputError(f"seeds must be integers in 0..2^64-1, got {s!r}")


def noise(seeds: Sequence[int], nz: int, kind: str = PORTABLE) -> np.ndarray:
    """float32 [len(seeds), nz]: one standard-normal row per seed, by generator `kind`
    ("splitmix64-polar-v1", the default, or "numpy-pcg64" for packs written before it).

    Raises: InputError if a seed is not an integer in 0..2^64-1 (bools are refused) or `kind` is unknown."""
    check_seeds(seeds)
    if kind == PORTABLE:
        return portable_noise(seeds, nz)
    if kind == LEGACY:
        return legacy_noise(seeds, nz)
    raise InputError(f"unknown noise generator {kind!r}; this runtime knows {', '.join(KINDS)}")
