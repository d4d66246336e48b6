import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_t2i.data.shapes import iter_samples
from edge_t2i.data.vocab import POSITIONS
from edge_t2i.eval import oracle


@pytest.fixture(scope="module")
def test_samples():
    return list(iter_samples(2000, seed=7, split="test", resolution=64))


@pytest.mark.slow
def test_at_least_99_percent_on_2000_real_test_images(test_samples):
    judgements = [oracle.judge(s.image) for s in test_samples]
    expected = [{**vars(s.objects[0]), "background": s.background} for s in test_samples]
    scores = oracle.score(judgements, expected)
    for attr in ("color", "shape", "size", "position", "background"):
        assert getattr(scores, attr) >= 0.99, (attr, scores.summary())


@pytest.mark.parametrize("resolution,min_shape", [(32, 0.8), (128, 0.97)])
def test_works_at_other_resolutions(resolution, min_shape):
    # at 32 px a small object has a 4 px radius: hexagon vs circle is barely resolvable
    samples = list(iter_samples(200, seed=2, split="test", resolution=resolution))
    scores = oracle.score([oracle.judge(s.image) for s in samples],
                          [vars(s.objects[0]) for s in samples])
    assert min(scores.color, scores.size, scores.position) >= 0.97, scores.summary()
    assert scores.shape >= min_shape, scores.summary()


def test_blank_and_noise_images_fail(rng):
    blank = np.full((64, 64, 3), 128, np.uint8)
    noise = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    for img in (blank, noise):
        j = oracle.judge(img)
        assert j.shape == oracle.UNKNOWN or j.color == oracle.UNKNOWN


def test_wrong_attributes_are_caught(test_samples):
    s = next(s for s in test_samples if s.objects[0].position == "top-left" and s.objects[0].color == "red")
    exp = {**vars(s.objects[0])}
    flipped = s.image[::-1, ::-1].copy()  # object moves to bottom-right
    assert oracle.judge(flipped).position == "bottom-right"
    recolored = s.image[..., ::-1].copy()  # RGB -> BGR turns red into blue
    assert oracle.judge(recolored).color != exp["color"]
    scores = oracle.score([oracle.judge(flipped), oracle.judge(recolored)], [exp, exp])
    assert scores.all == 0.0


def test_blob_is_not_a_shape():
    import cv2

    img = np.zeros((64, 64, 3), np.uint8)
    cv2.ellipse(img, (32, 32), (20, 5), 30, 0, 360, (255, 0, 0), -1)
    cv2.circle(img, (20, 40), 6, (255, 0, 0), -1)
    assert oracle.judge(img).shape in (oracle.UNKNOWN,)


TRANSPOSED = {"top-left": "top-left", "top": "left", "top-right": "bottom-left", "left": "top", "center": "center",
              "right": "bottom", "bottom-left": "top-right", "bottom": "right", "bottom-right": "bottom-right"}


# derandomized: the same 60 images every run (a tie between two equally large blobs could otherwise
# make the transposed image pick the other blob)
@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.integers(0, 2**32 - 1), st.integers(1, 12))
def test_generated_looking_garbage_never_crashes(seed, blobs):
    """Garbage never crashes the oracle, and what it reads follows the image: transposing the image
    (x <-> y) transposes the position it reports, and keeps the rest of the judgement."""
    r = np.random.default_rng(seed)
    img = np.full((64, 64, 3), r.integers(0, 256), np.uint8)
    import cv2

    for _ in range(blobs):  # self-intersecting polygons, speckle, partial shapes
        pts = r.integers(-10, 74, (r.integers(3, 9), 2)).astype(np.int32)
        cv2.fillPoly(img, [pts], tuple(int(c) for c in r.integers(0, 256, 3)))
    img[r.random((64, 64)) < 0.02] = 255
    j = oracle.judge(img)
    t = oracle.judge(np.ascontiguousarray(img.transpose(1, 0, 2)))
    assert t.position == TRANSPOSED.get(j.position, oracle.UNKNOWN)
    assert (t.size, t.background) == (j.size, j.background)


def test_position_is_read_in_each_cell():
    import cv2

    for i, position in enumerate(POSITIONS):
        row, col = divmod(i, 3)
        img = np.full((64, 64, 3), 128, np.uint8)
        cv2.circle(img, (10 + 22 * col, 10 + 22 * row), 6, (255, 0, 0), -1)
        assert oracle.judge(img).position == position


def test_expected_attributes_from_caption_when_no_objects():
    exp = oracle.expected_attributes({"file_name": "x.png", "text": "a big crimson star at the upper left"})
    assert exp["shape"] == "star" and exp["color"] == "red" and exp["size"] == "large"
    assert exp["position"] == "top-left"


def test_unread_attributes_are_unknown_never_right():
    """Free text the caption parser cannot read ("a crimson blob") once counted as all-correct: an unnamed attribute
    leaves the image out of `all` (unknown), and the count of images judged on all four is reported."""
    from edge_t2i.eval.oracle import Judgement, expected_attributes, score

    seen = Judgement("red", "star", "large", "center", "black")
    rows = [{"text": "a large red star in the center"}, {"text": "a crimson blob somewhere"},
            {"text": "a large blue star in the center"}, {"text": "a large red thing in the center"}]
    s = score([seen] * 4, [expected_attributes(r) for r in rows])
    assert s.count == 4 and s.judged == 2  # the first (right) and the third (colour wrong); two leave attributes open
    assert s.all == 0.5 and s.color == 0.75 and s.shape == 1.0  # "crimson" reads as red; "thing" is no shape
    assert "all four judged on 2" in s.summary()
