"""The colour lexicon a pack's bank carries (convert/lexicon.py): survey colour names -> the bank's colour words."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edge_t2i.convert.lexicon import color_lexicon, lexicon_for, oklab, read_lexicon
from edge_t2i.data.spelling import vocabulary
from edge_t2i.errors import ConvertError

SHAPES_WORDS = vocabulary(f"a small {c} star in the top-left" for c in
                          ("red", "orange", "yellow", "green", "cyan", "blue", "purple", "pink"))


def test_oklab_of_white_black_and_red_are_the_published_values():
    # Ottosson's reference: white L=1, a=b=0; sRGB red = (0.627955, 0.224863, 0.125846)
    lab = oklab(np.array([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]))
    assert np.allclose(lab[0], [1, 0, 0], atol=1e-4) and np.allclose(lab[1], 0, atol=1e-9)
    assert np.allclose(lab[2], [0.627955, 0.224863, 0.125846], atol=1e-4)


@pytest.mark.parametrize("name,word", [("crimson", "red"), ("scarlet", "red"), ("navy", "blue"), ("cobalt", "blue"),
                                       ("violet", "purple"), ("lavender", "purple"), ("lime green", "green"),
                                       ("teal", "cyan"), ("robin egg blue", "cyan"), ("gold", "yellow"),
                                       ("tangerine", "orange"), ("hot pink", "pink")])
def test_colour_names_map_to_the_bank_colour_people_would_say(name, word):
    assert color_lexicon(SHAPES_WORDS)[name] == word


def test_greys_and_the_banks_own_words_are_left_alone_and_few_colours_make_no_lexicon():
    lexicon = color_lexicon(SHAPES_WORDS)
    assert not {"grey", "gray", "black", "white", "silver", "red", "blue", "star"} & set(lexicon)
    assert set(lexicon.values()) <= SHAPES_WORDS and len(lexicon) > 800
    assert color_lexicon(vocabulary(["a red heart", "a blue car", "a cat"])) == {}  # two colour words: no palette


def test_lexicon_choice_auto_is_colours_for_shapes_data_only(tmp_path):
    texts = [f"a {c} star" for c in ("red", "green", "blue")]
    assert lexicon_for("auto", texts, shapes=False) == ({}, None)
    assert lexicon_for("none", texts, shapes=True) == ({}, None)
    assert lexicon_for("auto", texts, shapes=True)[0]["crimson"] == "red"
    assert lexicon_for("colors", texts, shapes=False)[0]["navy"] == "blue"
    own = tmp_path / "words.json"
    own.write_text(json.dumps({"Kitty Cat": "cat", "pup": "dog"}))
    assert lexicon_for(str(own), texts, shapes=False) == ({"kitty cat": "cat", "pup": "dog"}, "words.json")


@pytest.mark.parametrize("content,match", [(None, "No such file"), ("{", "Expecting"), ("[1]", "JSON object"),
                                           ('{"a": 1}', "JSON object"), ('{"a b c d": "x"}', "1-3 normalized words")])
def test_a_users_lexicon_file_is_refused_in_one_line(tmp_path, content, match):
    path = tmp_path / "words.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConvertError, match=match):
        read_lexicon(path)


def test_a_converted_shapes_pack_carries_the_colour_lexicon_in_its_bank(pack_dir):
    from edge_t2i.runtime.bank import PromptBank

    bank = PromptBank.load(pack_dir / "bank.safetensors")
    assert bank.lexicon["crimson"] == "red" and bank.reading("a navy star").text == "a blue star"
