"""Seed-spread figures on constructed images with known positions, rotations and backgrounds."""

import math

import numpy as np
import pytest

from edge_t2i.data import vocab
from edge_t2i.data.shapes import ShapeObject, draw_image, draw_object, random_background
from edge_t2i.errors import DataError
from edge_t2i.eval import oracle
from edge_t2i.eval import spread as sp

RED = vocab.hsv_to_rgb(*vocab.COLOR_HSV["red"])


def drawn(shape: str, angle: float, center=(32.0, 32.0), radius=14.0, background=(128, 128, 128)) -> np.ndarray:
    img = np.empty((64, 64, 3), np.uint8)
    img[:] = background
    draw_object(img, shape, RED, center, radius, angle)
    return img


@pytest.mark.parametrize("shape", ["square", "triangle", "star", "hexagon", "cross"])
@pytest.mark.parametrize("radius", [8.3, 14.1])
def test_orientation_of_each_shape_within_4_degrees(shape, radius):
    # pixel quantization: about 1 degree RMS, up to 4 for a small square (side 12 px)
    for angle in (-12.0, -5.5, 0.0, 3.0, 11.0):
        mask = oracle.object_component(drawn(shape, angle, (30.4, 33.1), radius))
        assert sp.orientation(mask, shape) == pytest.approx(angle, abs=4.0), (shape, angle)


def test_orientation_is_taken_modulo_the_symmetry():
    # a square turned by 80 degrees looks like one turned by -10; a hexagon by 25 like 25 (its period is 60)
    assert sp.orientation(oracle.object_component(drawn("square", 80.0)), "square") == pytest.approx(-10.0, abs=2)
    assert sp.orientation(oracle.object_component(drawn("hexagon", 25.0)), "hexagon") == pytest.approx(25.0, abs=2)


def test_no_orientation_for_circles_or_shapeless_blobs():
    circle = oracle.object_component(drawn("circle", 0.0))
    assert sp.orientation(circle, "circle") is None
    assert sp.orientation(circle, "square") is None  # a disc has no 4-fold structure
    with pytest.raises(DataError):
        sp.orientation(circle, "dragon")


def test_robust_spread_is_the_standard_deviation_of_normal_values_and_ignores_an_outlier():
    values = np.random.default_rng(0).normal(0, 5.0, 4000)
    assert sp.robust_std(values) == pytest.approx(5.0, rel=0.05)
    steady = list(np.random.default_rng(1).normal(0, 1.0, 31)) + [30.0]
    assert sp.circular_robust_std(steady, 90.0) < 1.6  # the plain std would be 5.5
    assert sp.circular_robust_std([29.0, -29.0, 29.5, -28.5], 60.0) < 2.0  # across the wrap: 1-2 degrees apart


def test_seed_statistics_recover_known_jitter():
    rng = np.random.default_rng(3)
    angles = rng.uniform(-12, 12, 32)
    xs = rng.uniform(26, 38, 32)
    images = [drawn("square", a, (x, 32.0)) for a, x in zip(angles, xs)]
    s = sp.seed_statistics(images, "square", "center")
    assert s.used == s.oriented == s.count == 32
    assert s.rotation_std == pytest.approx(sp.robust_std(angles), abs=1.0)
    # only x moves: sqrt((s_x^2 + 0) / 2)
    assert s.position_std == pytest.approx(sp.robust_std(xs) / math.sqrt(2), abs=0.3)
    still = sp.seed_statistics([drawn("square", 4.0)] * 8, "square", "center")
    assert still.position_std < 0.01 and still.rotation_std < 0.01


def test_seed_statistics_leave_out_images_of_another_shape_or_cell():
    images = [drawn("square", 0.0)] * 4 + [drawn("circle", 0.0)] * 3 + [drawn("square", 0.0, (10.0, 10.0), 8.0)]
    s = sp.seed_statistics(images, "square", "center")
    assert s.used == 4 and s.count == 8 and s.position_std < 0.01


def test_background_distribution_and_total_variation():
    imgs = [drawn("star", 0.0, background=b) for b in ((0, 0, 0), (0, 0, 0), (255, 255, 255), (128, 128, 128))]
    dist = sp.background_distribution(imgs)
    assert dist == {"black": 0.5, "white": 0.25, "gray": 0.25, "unknown": 0.0}
    assert sp.total_variation(dist, sp.DATA_BACKGROUNDS) == pytest.approx(1 / 6)
    assert sp.total_variation({"black": 1.0}, sp.DATA_BACKGROUNDS) == pytest.approx(2 / 3)


def test_null_tv_quantile_shrinks_with_more_seeds():
    few, many = (sp.null_tv_quantile(sp.DATA_BACKGROUNDS, n, 6, draws=4000) for n in (32, 512))
    assert 0.1 < few < 0.2 and many < few / 3
    assert few == sp.null_tv_quantile(sp.DATA_BACKGROUNDS, 32, 6, draws=4000)  # seeded


def test_the_data_against_itself_has_ratio_one_and_a_collapsed_generator_zero():
    obj = ShapeObject("star", "blue", "small", "top-left")
    rng = np.random.default_rng(5)
    data = [draw_image(rng, obj, random_background(rng), 64) for _ in range(256)]
    fresh = [draw_image(rng, obj, random_background(rng), 64) for _ in range(64)]
    stats_data, stats_fresh = (sp.seed_statistics(x, "star", "top-left") for x in (data, fresh))
    collapsed = sp.seed_statistics([fresh[0]] * 64, "star", "top-left")
    bgs = [(sp.background_distribution(fresh), sp.background_distribution(data[:64]))]
    like = sp.summarize_spread(["x"], [stats_fresh], [stats_data], bgs, 64)
    assert 0.7 < like.position_ratio < 1.4 and 0.7 < like.rotation_ratio < 1.4
    assert like.background_tv_generated < like.background_tv_bar
    flat = sp.summarize_spread(["x"], [collapsed], [stats_data], [(sp.background_distribution([fresh[0]] * 64),
                                                                     bgs[0][1])], 64)
    assert flat.position_ratio < 0.01 and flat.rotation_ratio < 0.01
    assert flat.background_tv_generated == pytest.approx(2 / 3)
    with pytest.raises(DataError):
        sp.summarize_spread(["x", "y"], [collapsed], [stats_data], bgs, 64)
