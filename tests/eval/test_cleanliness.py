"""Clean-image figures on constructed images with known answers."""

import math

import cv2
import numpy as np
import pytest

from edge_t2i.data import vocab
from edge_t2i.data.shapes import draw_object, iter_samples
from edge_t2i.errors import DataError
from edge_t2i.eval import cleanliness as cl

GRAY, WHITE, BLACK = (128, 128, 128), (255, 255, 255), (0, 0, 0)
CYAN = vocab.hsv_to_rgb(*vocab.COLOR_HSV["cyan"])
RED = vocab.hsv_to_rgb(*vocab.COLOR_HSV["red"])


def canvas(background=GRAY, side=64) -> np.ndarray:
    img = np.empty((side, side, 3), np.uint8)
    img[:] = background
    return img


def disc(img, center, radius, rgb) -> np.ndarray:
    draw_object(img, "circle", rgb, center, radius, 0.0)  # the dataset's anti-aliased drawing
    return img


def test_flat_background_with_a_clean_object_deviates_by_zero():
    img = disc(canvas(), (32, 32), 9, CYAN)
    assert cl.background_deviation(img) == 0.0
    m = cl.measure_cleanliness([img])
    assert m.blotchy_fraction == 0.0 and m.second_object_fraction == 0.0


def test_a_painted_blotch_gives_its_known_mean_deviation():
    # a 40x40 patch 30 levels above a gray background (under the foreground threshold, so not an object),
    # away from a radius-6 disc: the mean over the pixels outside the disc grown by 3 px (area ~ pi 9^2)
    img = disc(canvas(), (10, 10), 6, RED)
    img[20:60, 20:60] += 30
    expected = 30 * 40 * 40 / (64 * 64 - math.pi * 9 ** 2)
    assert cl.background_deviation(img) == pytest.approx(expected, abs=0.2)
    assert cl.measure_cleanliness([img]).blotchy_fraction == 1.0
    img[20:60, 20:60, 1:] -= 30  # now only the red channel differs: a third of the channel mean
    assert cl.background_deviation(img) == pytest.approx(expected / 3, abs=0.1)
    assert cl.measure_cleanliness([img]).blotchy_fraction == 0.0  # 4.2 < 6 levels


def test_the_ring_around_the_object_is_left_out():
    # a 1 px light rim 2 px off the object lies inside the 3 px ring: no background deviation
    img = disc(canvas(), (32, 32), 9, CYAN)
    cv2.circle(img, (32, 32), 11, (160, 160, 160), 1)
    assert cl.background_deviation(img) == 0.0
    cv2.circle(img, (32, 32), 16, (160, 160, 160), 1)  # 7 px off: background, and it counts
    assert cl.background_deviation(img) > 0.5


def test_a_strong_blotch_cannot_hide_as_foreground():
    # a white patch on gray differs by 127 levels (foreground), but it is not the object: it counts
    img = disc(canvas(), (12, 12), 8, RED)
    img[36:60, 36:60] = WHITE
    expected = (127 * 24 * 24) / (64 * 64 - math.pi * 11 ** 2)
    assert cl.background_deviation(img) == pytest.approx(expected, abs=0.3)


@pytest.mark.parametrize("background,rgb", [(WHITE, CYAN), (BLACK, RED), (GRAY, vocab.hsv_to_rgb(278, .75, .8))])
@pytest.mark.parametrize("radius", [8.0, 14.3])
def test_a_clean_antialiased_object_has_no_halo(background, rgb, radius):
    for shape, angle in (("circle", 0.0), ("star", 7.0), ("square", -11.0)):
        img = canvas(background)
        draw_object(img, shape, rgb, (30.3, 33.7), radius, angle)
        assert cl.halo(img) < 0.5, (shape, background)


def test_a_dark_rim_is_a_halo_and_it_grows_with_the_rim():
    def rimmed(offset: int) -> np.ndarray:
        img = disc(canvas(WHITE), (32, 32), 10, CYAN)
        cv2.circle(img, (32, 32), 11, (255 - offset,) * 3, 1)  # a gray ring just outside the edge
        return img

    h20, h40 = cl.halo(rimmed(20)), cl.halo(rimmed(40))
    assert h20 > 3 and h40 > 6
    assert h40 / h20 == pytest.approx(2.0, rel=0.1)  # distance off the object-background line is linear


def test_a_soft_edge_between_object_and_background_is_no_halo():
    # a ring that is exactly half object, half background is a blurred edge, not a rim
    img = disc(canvas(WHITE), (32, 32), 10, CYAN)
    mix = tuple(int(round((c + 255) / 2)) for c in CYAN)
    cv2.circle(img, (32, 32), 11, mix, 1)
    assert cl.halo(img) < 0.6


def test_an_image_without_an_object_has_no_halo():
    assert cl.halo(canvas()) is None
    m = cl.measure_cleanliness([canvas(), canvas()])
    assert math.isnan(m.halo) and m.with_object == 0


def test_second_objects_count_coloured_components_above_the_speckle_limit():
    one = disc(canvas(), (16, 16), 7, RED)
    two = disc(disc(canvas(), (16, 16), 7, RED), (46, 46), 7, CYAN)
    speck = disc(canvas(), (16, 16), 7, RED)
    speck[50:53, 50:53] = CYAN  # 9 px < 0.4% of 4096 (16 px): speckle
    blotch = disc(canvas(), (16, 16), 7, RED)
    blotch[30:60, 30:60] = WHITE  # 900 px, but white on gray: a blotch, not an object
    assert [cl.object_count(i) for i in (one, two, speck, blotch)] == [1, 2, 1, 1]
    assert cl.measure_cleanliness([one, two, speck, blotch]).second_object_fraction == 0.25


def test_real_dataset_images_are_clean():
    images = [s.image for s in iter_samples(60, seed=4, split="test")]
    m = cl.measure_cleanliness(images)
    assert m.blotchy_fraction == 0.0 and m.background_deviation == 0.0 and m.second_object_fraction == 0.0
    assert m.halo < 0.3 and m.haloed_fraction == 0.0 and m.with_object == m.count == 60


def test_non_images_are_data_errors():
    with pytest.raises(DataError):
        cl.background_deviation(np.zeros((8, 8), np.uint8))
    with pytest.raises(DataError):
        cl.measure_cleanliness([])
