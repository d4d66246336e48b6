"""The held-out phrasing set never meets the phrasings the text adapter trains on."""

import numpy as np
import pytest

from edge_t2i.data import phrasings as ph
from edge_t2i.data.captions import SYNONYMS, TEMPLATES_NOVEL, WHERE_NOVEL
from edge_t2i.data.prompts import normalize_prompt
from edge_t2i.data.vocab import BACKGROUNDS, COLORS, POSITIONS, SHAPES, SIZES


def _vocab(heldout: bool) -> set[str]:
    return {w for attr, values in ph.EXTRA.items() for v in values for w in ph._words(attr, v, heldout)}


def test_heldout_and_novel_words_and_patterns_are_never_augmentation():
    augment = _vocab(False)
    novel = {w for values in SYNONYMS.values() for _, held in values.values() for w in held}
    assert not (_vocab(True) & augment) and not (novel & augment) and not (novel & _vocab(True))
    assert not set(ph.HELDOUT_TEMPLATES) & set(ph.AUGMENT_TEMPLATES)
    assert not set(ph.HELDOUT_WHERE) & set(ph.AUGMENT_WHERE) and not set(ph.HELDOUT_BG) & set(ph.AUGMENT_BG)
    assert not set(TEMPLATES_NOVEL) & set(ph.AUGMENT_TEMPLATES) and not set(WHERE_NOVEL) & set(ph.AUGMENT_WHERE)


def test_no_heldout_caption_is_ever_an_augmentation_caption():
    rng = np.random.default_rng(0)

    def many(heldout: bool, n: int) -> set[str]:
        out = set()
        for _ in range(n):
            attrs = [str(rng.choice(v)) for v in (SHAPES, COLORS, SIZES, POSITIONS)]
            bg = str(rng.choice(BACKGROUNDS)) if rng.random() < 0.5 else None
            out.add(normalize_prompt(ph.phrase(rng, *attrs, bg, heldout)))
        return out

    assert not many(True, 3000) & many(False, 30000)


@pytest.mark.parametrize("heldout", [False, True])
def test_phrases_carry_the_attributes_and_name_the_background_only_when_asked(heldout):
    rng = np.random.default_rng(1)
    for _ in range(200):
        shape, color, size, pos = (str(rng.choice(v)) for v in (SHAPES, COLORS, SIZES, POSITIONS))
        text = ph.phrase(rng, shape, color, size, pos, None, heldout)
        assert "background" not in text and "{" not in text
        named = ph.phrase(rng, shape, color, size, pos, "white", heldout)
        assert any(w in named for w in ("white", *ph._words("background", "white", heldout))), named


@pytest.mark.parametrize("table", ["DESCRIPTIVE", *(f"DESCRIPTIVE_BLIND{n}" for n in ("", "_2", "_3", "_4", "_5"))])
def test_descriptive_words_are_in_no_training_phrasing_synonym_or_template(table):
    trained = {w for values in SYNONYMS.values() for train, novel in values.values() for p in train + novel
               for w in normalize_prompt(p).replace("-", " ").split()}
    trained |= {w for attr, values in ph.EXTRA.items() for v in values for p in ph._words(attr, v, False)
                for w in normalize_prompt(p).replace("-", " ").split()}
    trained |= {w for t in ph.AUGMENT_TEMPLATES + ph.AUGMENT_WHERE + ph.AUGMENT_PREFIX + ph.AUGMENT_SUFFIX
                for w in normalize_prompt(t.format(pos="", size="", color="", shape="", where="", where_cap="",
                                                   bg="")).split()}
    plain = {w for v in (*COLORS, *SIZES, *POSITIONS) for w in v.split("-")} | {"in", "the", "at", "on", "up", "down"}
    for attr, values in getattr(ph, table).items():
        for value, phrases in values.items():
            for p in phrases:
                new = set(normalize_prompt(p).replace("-", " ").split()) - plain - {"blue", "green", "corner", "side"}
                assert new, f"{p!r} ({attr} {value}) says nothing beyond plain words"
                assert not new & trained, f"{p!r}: {new & trained} is in a training phrasing"


@pytest.mark.parametrize("table", ["DESCRIPTIVE", *(f"DESCRIPTIVE_BLIND{n}" for n in ("", "_2", "_3", "_4", "_5"))])
def test_descriptive_prompts_say_one_attribute_descriptively(table):
    rng = np.random.default_rng(2)
    attrs = set()
    for _ in range(100):
        shape, color, size, pos = (str(rng.choice(v)) for v in (SHAPES, COLORS, SIZES, POSITIONS))
        text, attr = ph.descriptive(rng, shape, color, size, pos, getattr(ph, table))
        assert shape in text and "{" not in text
        words = getattr(ph, table)[attr][{"color": color, "size": size, "position": pos}[attr]]
        assert any(p in text for p in words)
        attrs.add(attr)
    assert attrs == set(getattr(ph, table))
