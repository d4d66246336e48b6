import hashlib
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_t2i.data import make_shapes_dataset, parse_caption, read_imagefolder, vocab
from edge_t2i.data.captions import make_caption
from edge_t2i.data.shapes import ShapeObject, draw_image, iter_samples, random_background
from edge_t2i.errors import DataError


def digest(samples) -> str:
    h = hashlib.sha256()
    for s in samples:
        h.update(s.image.tobytes() + s.text.encode())
    return h.hexdigest()


def test_same_seed_same_dataset_other_seed_differs():
    a = digest(iter_samples(50, seed=3, split="train"))
    assert a == digest(iter_samples(50, seed=3, split="train"))
    assert a != digest(iter_samples(50, seed=4, split="train"))
    assert a != digest(iter_samples(50, seed=3, split="val"))


def test_train_split_never_holds_heldout_pairs_test_split_does():
    train = list(iter_samples(600, seed=0, split="train"))
    test = list(iter_samples(600, seed=0, split="test"))
    held = set(vocab.HELDOUT_PAIRS)
    assert not any((s.objects[0].shape, s.objects[0].color) in held for s in train)
    assert all(s.heldout == ((s.objects[0].shape, s.objects[0].color) in held) for s in test)
    assert {(s.objects[0].shape, s.objects[0].color) for s in test if s.heldout} == held  # every pair is tested


@pytest.mark.parametrize("resolution", [32, 64, 128, 256])
def test_renders_at_each_resolution(resolution):
    s = next(iter_samples(1, seed=1, resolution=resolution))
    assert s.image.shape == (resolution, resolution, 3) and s.image.dtype == np.uint8
    # an object really is drawn: some pixels differ from the background
    bg = np.array(vocab.BACKGROUND_RGB[s.background])
    assert (np.abs(s.image.astype(int) - bg).max(axis=2) > 40).sum() > resolution


def test_on_disk_imagefolder_format(tmp_path):
    out = make_shapes_dataset(tmp_path / "ds", 30, seed=0, split="test", show_progress=False)
    lines = (out / "metadata.jsonl").read_text().splitlines()
    assert len(lines) == 30
    row = json.loads(lines[0])
    assert set(row) >= {"file_name", "text", "objects", "background"}
    assert set(row["objects"][0]) == {"shape", "color", "size", "position"}
    assert (out / row["file_name"]).is_file()
    info = json.loads((out / "dataset_info.json").read_text())
    assert [tuple(p) for p in info["heldout_pairs"]] == list(vocab.HELDOUT_PAIRS)
    folder = read_imagefolder(out)
    assert folder.load_images(show_progress=False).shape == (30, 64, 64, 3)


def test_failed_write_keeps_previous_dataset(tmp_path, monkeypatch):
    out = make_shapes_dataset(tmp_path / "ds", 5, show_progress=False)
    before = (out / "metadata.jsonl").read_text()
    import edge_t2i.data.imagefolder as imf

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(imf, "write_records", boom)
    with pytest.raises(RuntimeError):
        make_shapes_dataset(tmp_path / "ds", 9, seed=5, workers=1, show_progress=False)
    assert (out / "metadata.jsonl").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]


def test_foreign_imagefolder_with_only_file_name_and_text(tmp_path):
    import cv2

    for i in range(3):
        cv2.imwrite(str(tmp_path / f"img{i}.png"), np.full((40, 40, 3), 30 * i, np.uint8))
    (tmp_path / "metadata.jsonl").write_text(
        "".join(json.dumps({"file_name": f"img{i}.png", "text": f"photo {i}"}) + "\n" for i in range(3)))
    folder = read_imagefolder(tmp_path)
    assert folder.texts == ["photo 0", "photo 1", "photo 2"]
    assert folder.load_images(resolution=32, show_progress=False).shape == (3, 32, 32, 3)


@pytest.mark.parametrize("content,msg", [
    ("not json\n", "not valid JSON"),
    ('{"file_name": "a.png"}\n', "'file_name' and 'text'"),
    ('{"file_name": "../x.png", "text": "t"}\n', "relative path"),
    ("", "no records"),
])
def test_bad_metadata_is_a_data_error(tmp_path, content, msg):
    (tmp_path / "metadata.jsonl").write_text(content)
    with pytest.raises(DataError, match=msg):
        read_imagefolder(tmp_path)


attrs = st.tuples(st.sampled_from(vocab.SHAPES), st.sampled_from(vocab.COLORS), st.sampled_from(vocab.SIZES),
                  st.sampled_from(vocab.POSITIONS), st.sampled_from(vocab.BACKGROUNDS))


@settings(max_examples=300, deadline=None)
@given(attrs, st.integers(0, 2**32 - 1), st.booleans())
def test_every_caption_parses_back_to_its_attributes(a, seed, novel):
    caption = make_caption(np.random.default_rng(seed), *a, novel=novel)
    parsed = parse_caption(caption)
    assert (parsed.shape, parsed.color, parsed.size, parsed.position) == a[:4]
    assert parsed.background in (None, a[4])


def test_captions_use_every_training_phrasing_and_keep_novel_ones_out():
    """Over many seeds, captions of one value use each of its training phrasings (at least three differ),
    and the held-out (novel) phrasings appear only in novel captions."""
    from edge_t2i.data.captions import SYNONYMS, normalize_text

    def words(text: str) -> str:
        return f" {normalize_text(text)} "

    defaults = {"shape": "circle", "color": "red", "size": "small", "position": "center", "background": "gray"}
    for attr in ("shape", "color", "size", "position"):
        for value, (train, novel) in SYNONYMS[attr].items():
            a = {**defaults, attr: value}
            args = (a["shape"], a["color"], a["size"], a["position"], a["background"])
            plain = [words(make_caption(np.random.default_rng(s), *args)) for s in range(150)]
            held = [words(make_caption(np.random.default_rng(s), *args, novel=True)) for s in range(150)]
            used = {p for p in train if any(words(p) in c for c in plain)}
            assert used == set(train) and len(used) >= 3, (attr, value, used)
            for p in novel:
                assert not any(words(p) in c for c in plain), (attr, value, p)
                assert any(words(p) in c for c in held), (attr, value, p)


def test_draw_image_draws_the_given_object_with_the_datasets_jitter():
    from edge_t2i.eval import oracle

    obj = ShapeObject("hexagon", "green", "large", "left")
    rng = np.random.default_rng(0)
    images = [draw_image(rng, obj, "black", 64) for _ in range(12)]
    for img in images:
        j = oracle.judge(img)
        assert (j.shape, j.color, j.size, j.position, j.background) == ("hexagon", "green", "large", "left", "black")
        assert not img[0].any() and not img[-1].any()  # the background stays exactly flat
    assert len({img.tobytes() for img in images}) == 12  # position, radius, rotation and colour move


def test_random_background_draws_each_background_equally():
    rng = np.random.default_rng(0)
    drawn = [random_background(rng) for _ in range(3000)]
    assert all(900 < drawn.count(b) < 1100 for b in vocab.BACKGROUNDS)
