"""The lexicon a pack's bank carries (convert/lexicon.py): colour names -> the bank's colour words (xkcd survey, CSS,
WordNet), WordNet's size words -> the bank's size words."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edge_t2i.convert import colornames, wordnet
from edge_t2i.convert.lexicon import color_lexicon, lexicon_for, oklab, read_lexicon, size_lexicon
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
                                       ("teal", "cyan"), ("aqua", "cyan"), ("gold", "yellow"),
                                       ("tangerine", "orange"), ("hot pink", "pink")])
def test_colour_names_map_to_the_bank_colour_people_would_say(name, word):
    assert color_lexicon(SHAPES_WORDS)[name] == word


def test_greys_and_the_banks_own_words_are_left_alone_and_few_colours_make_no_lexicon():
    lexicon = color_lexicon(SHAPES_WORDS)
    assert not {"grey", "gray", "black", "white", "silver", "red", "blue", "star"} & set(lexicon)
    assert set(lexicon.values()) <= SHAPES_WORDS and len(lexicon) > 6000
    assert color_lexicon(vocabulary(["a red heart", "a blue car", "a cat"])) == {}  # two colour words: no palette


@pytest.mark.parametrize("name,word", [("vermilion", "red"), ("cardinal", "red"), ("sanguine", "red"),
                                       ("viridity", "green"), ("solferino", "pink"), ("lazuline", "blue")])
def test_colour_names_the_survey_lacks_map_by_their_wordnet_hypernyms(name, word):
    import matplotlib.colors as mc

    assert f"xkcd:{name}" not in mc.XKCD_COLORS and name not in mc.CSS4_COLORS
    assert name not in colornames.load()["colors"]
    assert color_lexicon(SHAPES_WORDS)[name] == word


def test_a_measured_colour_wins_over_wordnets_tree():
    # WordNet files teal under green and turquoise under blue; the survey's sRGB of each is nearest cyan
    assert wordnet.load()["color"]["teal"][1] == ["green", "greenness", "viridity"]
    assert color_lexicon(SHAPES_WORDS)["teal"] == "cyan" and color_lexicon(SHAPES_WORDS)["turquoise"] == "cyan"


@pytest.mark.parametrize("name,word", [("teeny", "small"), ("itty-bitty", "small"), ("diminutive", "small"),
                                       ("tiny", "small"), ("gigantic", "large"), ("humongous", "large"),
                                       ("jumbo", "large"), ("oversized", "large")])
def test_wordnet_size_words_map_to_the_banks_size_word(name, word):
    assert size_lexicon(SHAPES_WORDS | {"large"})[name] == word


def test_size_words_that_are_adverbs_too_or_a_bank_without_the_size_word_are_left_alone():
    lexicon = size_lexicon(SHAPES_WORDS | {"large"})
    assert not {"deep", "wide", "super", "double", "little", "big", "small", "large"} & set(lexicon)  # "deep red"
    assert lexicon["wee"] == lexicon["puny"] == lexicon["minute"] == "small" and lexicon["great"] == "large"
    assert lexicon["half-pint"] == lexicon["dwarf"] == "small" and lexicon["hulk"] == "large"  # nouns of sizes
    assert set(size_lexicon(SHAPES_WORDS).values()) == {"small"}  # the bank says "small" only
    assert size_lexicon({"a", "red", "cat"}) == {}


def test_wordnet_files_are_read_as_the_wndb_format_says(tmp_path):
    header = ("  1 This software and database is being provided to you, the LICENSEE, by Princeton University\n"
              "  2 WordNet 3.1 Copyright 2011 by Princeton University.  All rights reserved.  \n")
    (tmp_path / "data.adj").write_text(header + "\n".join([
        "00000001 00 a 02 small 0 little 0 003 & 00000002 s 0000 & 00000003 s 0000 ! 00000004 a 0101 | limited",
        "00000002 00 s 01 teeny 0 001 & 00000001 a 0000 | very small",
        "00000003 00 s 02 deep 0 minute(a) 0 001 & 00000001 a 0000 | small in quantity",
        "00000004 00 a 02 large 0 big 0 001 ! 00000001 a 0101 | above average",
        "00000005 00 a 01 deep 0 000 | far down"]) + "\n")
    (tmp_path / "index.adj").write_text(header + "\n".join([
        "small a 1 1 & 1 0 00000001", "teeny a 1 1 & 1 0 00000002", "deep a 2 1 & 2 0 00000005 00000003",
        "minute a 1 1 & 1 0 00000003", "large a 1 1 ! 1 0 00000004"]) + "\n")
    (tmp_path / "index.adv").write_text(header + "deep r 1 0 1 0 00000099\n")
    (tmp_path / "data.noun").write_text(header + "\n".join([
        "00000010 07 n 02 chromatic_color 0 spectral_color 0 001 ~ 00000011 n 0000 | a color that has hue",
        "00000011 07 n 01 red 0 002 @ 00000010 n 0000 ~ 00000012 n 0000 | red color",
        "00000012 07 n 02 scarlet 0 vermilion 0 001 @ 00000011 n 0000 | a bright red",
        "00000020 18 n 01 small_person 0 001 ~ 00000021 n 0000 | a person who is small",
        "00000021 18 n 02 runt 0 half-pint 0 002 @ 00000020 n 0000 ~ 00000022 n 0000 | a small person",
        "00000022 18 n 01 tom_thumb 0 001 @ 00000021 n 0000 | a very small person"]) + "\n")
    built = wordnet.build(tmp_path)
    assert built["size"] == {"small": ["minute", "teeny"], "large": []}  # "deep" is an adverb too
    assert built["color"]["vermilion"] == [["scarlet", "vermilion"], ["red"], ["chromatic color", "spectral color"]]
    assert set(built["color"]) == {"red", "scarlet", "vermilion"}
    assert built["size_nouns"] == {"small": ["half-pint", "runt", "tom thumb"], "large": []}  # no "large person"
    assert built["license"].splitlines()[1] == "WordNet 3.1 Copyright 2011 by Princeton University.  All rights reserved."
    (tmp_path / "data.adj").write_text((tmp_path / "data.adj").read_text().replace("3.1 Copyright 2011", "3.0 "
                                                                                   "Copyright 2006"))
    with pytest.raises(ValueError, match="WordNet 3.1 Copyright 2011"):  # another release: not what the docs cite
        wordnet.build(tmp_path)


def test_the_committed_wordnet_words_carry_the_licence_and_both_parts():
    data = wordnet.load()
    assert "WordNet 3.1 Copyright 2011 by Princeton University" in data["license"]
    assert len(data["size"]["small"]) > 20 and len(data["size"]["large"]) > 30 and len(data["color"]) > 150
    assert {"dwarf", "pygmy", "half-pint"} <= set(data["size_nouns"]["small"])
    assert "giant" in data["size_nouns"]["large"]


def test_lexicon_choice_auto_is_descriptive_for_shapes_data_only(tmp_path):
    texts = [f"a small {c} star" for c in ("red", "green", "blue")]
    assert lexicon_for("auto", texts, shapes=False) == ({}, None)
    assert lexicon_for("none", texts, shapes=True) == ({}, None)
    assert lexicon_for("auto", texts, shapes=True)[0]["crimson"] == "red"
    assert lexicon_for("descriptive", texts, shapes=False)[0]["navy"] == "blue"
    assert lexicon_for("descriptive", texts, shapes=False)[0]["teeny"] == "small"
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


def test_a_converted_shapes_pack_carries_the_lexicon_in_its_bank_and_wordnets_notice_in_its_report(pack_dir):
    from edge_t2i.runtime.bank import PromptBank

    bank = PromptBank.load(pack_dir / "bank.safetensors")
    assert bank.lexicon["crimson"] == "red" and bank.reading("a navy star").text == "a blue star"
    assert bank.reading("a teeny vermilion star").text == "a small red star"
    report = (pack_dir / "report.md").read_text()
    assert "## Lexicon" in report and f"- {wordnet.NOTICE} Its licence:" in report
    assert "> WordNet 3.1 Copyright 2011 by Princeton University." in report
    assert f"- {colornames.NOTICE}. Its licence:" in report and "> Copyright (c) 2017 David Aerne" in report


def test_measured_spellings_and_synonyms_of_a_wordnet_name_decide_its_colour():
    lexicon = color_lexicon(SHAPES_WORDS)
    assert lexicon["sky-blue"] == lexicon["sky blue"] and lexicon["purplish-red"] == lexicon["purplish red"]
    assert lexicon["wine-colored"] == lexicon["wine"]  # its synset's "wine" has a survey colour


def test_the_old_colors_choice_says_its_new_name(tmp_path, monkeypatch):
    from edge_t2i.convert.pack import ConvertOptions, preflight

    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConvertError, match="now --lexicon descriptive"):
        preflight(ConvertOptions(lexicon="colors"))


def test_rebuilding_the_wordnet_words_from_a_wrong_folder_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        wordnet.main([str(tmp_path)])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "not a WordNet 3.1 dict folder" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("name,word", [("papaya", "orange"), ("persimmon", "orange"), ("daffodil", "yellow"),
                                       ("cotton candy", "pink"), ("caribbean blue", "blue"),
                                       ("garnet", "pink")])  # a dark red, nearer the survey's pink in OKLab: a miss
def test_colour_names_of_color_name_list_that_the_survey_lacks_are_read(name, word):
    import matplotlib.colors as mc

    assert f"xkcd:{name}" not in mc.XKCD_COLORS and name in colornames.load()["colors"]
    assert color_lexicon(SHAPES_WORDS)[name] == word


def test_a_compound_reads_as_its_last_colour_word_whatever_its_srgb():
    lexicon = color_lexicon(SHAPES_WORDS)
    # the survey's "powder blue" and "sky blue" are nearer its cyan than its blue; "pistachio green" nearer cyan
    assert lexicon["powder blue"] == lexicon["sky blue"] == lexicon["sky-blue"] == lexicon["robin egg blue"] == "blue"
    assert lexicon["pistachio green"] == "green" and lexicon["sunset orange"] == "orange"
    assert lexicon["greenish blue"] == "blue" and lexicon["pinkish red"] == "red"  # "greenish" is no palette word
    assert "blue green" not in lexicon  # bank words only: the encoder's


def test_color_name_list_is_kept_only_for_names_wordnet_calls_things(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "LICENSE").write_text("MIT License\n\nCopyright (c) 2017 David Aerne\n")
    (tmp_path / "src" / "colornames.csv").write_text("\n".join([
        "name,hex,good name", "Garnet,#733635,", "Create,#aa2222,x", "Calm,#22aa22,", "Caribbean Blue,#1ac1dd,x",
        "Left on Red,#ff0000,", "Cotton Candy,#ffbcd9,x", "Crimson,#dc143c,", "Ash,#808080,", "Ash,#ff0000,",
        "Lumpy Toad Green,#30a030,", "Very Old Rose Pink Hue,#ff00aa,"]) + "\n")
    dict_dir = tmp_path / "dict"
    dict_dir.mkdir()
    for pos, lemmas in {"noun": ["garnet", "calm", "cotton candy", "cotton", "candy", "left", "red", "caribbean",
                                 "blue", "ash", "toad", "green", "crimson", "create"],
                        "adj": ["calm", "left", "on", "red", "blue", "caribbean", "green", "lumpy"],
                        "verb": ["create", "calm"], "adv": ["on"]}.items():
        (dict_dir / f"index.{pos}").write_text("".join(f"{w.replace(' ', '_')} {pos[0]} 1 0 1 0 00000001\n"
                                                       for w in lemmas))
    built = colornames.build(tmp_path / "src" / "colornames.csv", dict_dir)
    # garnet: a noun only; caribbean blue: nouns/adjectives ending in a colour word; cotton candy: a WordNet noun.
    # Not: create (a verb too), calm (an adjective too), left on red ("on" is an adverb), crimson (a noun, but the
    # survey's), ash (grey; its second, red row does not count), very old rose pink hue (over 3 words); lumpy toad
    # green is kept: nouns and adjectives, a colour last
    assert built["colors"] == {"garnet": "733635", "caribbean blue": "1ac1dd", "cotton candy": "ffbcd9",
                               "lumpy toad green": "30a030"}
    assert built["license"].startswith("MIT License")
    (tmp_path / "src" / "colornames.csv").write_text("name,hex\nGarnet,#7336\n")
    with pytest.raises(ValueError, match="no #rrggbb"):
        colornames.build(tmp_path / "src" / "colornames.csv", dict_dir)
    (tmp_path / "src" / "colornames.csv").write_text("name,hex\nGarnet\n")
    with pytest.raises(ValueError, match="line 2 has no name,hex"):
        colornames.build(tmp_path / "src" / "colornames.csv", dict_dir)
    (tmp_path / "LICENSE").unlink()
    with pytest.raises(ValueError, match="no MIT licence"):
        colornames.build(tmp_path / "src" / "colornames.csv", dict_dir)


def test_the_committed_color_name_list_carries_its_licence():
    data = colornames.load()
    assert "MIT License" in data["license"] and "David Aerne" in data["license"]
    assert len(data["colors"]) > 5000 and not {"create", "calm", "left on red", "abstract"} & set(data["colors"])
