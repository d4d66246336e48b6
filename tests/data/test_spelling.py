"""One-letter typos of the words a pack knows are read as those words (data/spelling.py, PromptBank.explain)."""

from __future__ import annotations

import numpy as np
import pytest

from edge_t2i.data.spelling import alternatives, one_edit, read, vocabulary
from edge_t2i.runtime.bank import PromptBank

KNOWN = vocabulary(["a large yellow square in the top-left", "a small red star in the center",
                    "a large pink cross at the bottom"])


@pytest.mark.parametrize("typed,meant", [("yelloow", "yellow"), ("sqaure", "square"), ("lrage", "large"),
                                         ("cneter", "center"), ("yelow", "yellow"), ("crss", "cross"),
                                         ("smal", "small"), ("botom", "bottom"), ("starr", "star")])
def test_one_edit_typos_of_known_words_are_corrected(typed, meant):
    r = read(f"a {typed} thing", KNOWN)
    assert r.corrected == {typed: meant} and meant in r.text.split() and r.unknown == ("thing",)


@pytest.mark.parametrize("typed", ["red", "bed", "dragon", "yellowish", "pinkish", "top", "12345"])
def test_short_far_or_unknown_words_stay(typed):
    r = read(typed, KNOWN)
    assert r.corrected == {} and r.text == typed


def test_ambiguous_typos_stay_as_typed():
    known = vocabulary(["a cart", "a card"])
    assert read("a carx", known).corrected == {} and read("a carx", known).unknown == ("carx",)


def test_one_edit_is_damerau():
    edits = one_edit("ab")
    assert {"a", "b", "ba", "abc", "xab", "ac"} <= edits and "ab" not in edits


def test_a_bank_explains_what_it_read_and_encodes_the_corrected_text():
    class Recording:
        name = "recording"
        texts: list[str] = []

        def encode(self, texts):
            Recording.texts += texts
            return np.ones((len(texts), 3), np.float32) / np.sqrt(3)
    texts = ["a large yellow square in the top-left", "a small red star in the center"]
    bank = PromptBank(texts, np.eye(3, dtype=np.float32)[:2], "test", Recording())
    bank.lookup("a large yelloow square in the top-left", "encode")
    assert Recording.texts[-1] == "a large yellow square in the top-left"
    bank.lookup("a large yellow square, top-left please", "encode")  # nothing corrected: the text as typed
    assert Recording.texts[-1] == "a large yellow square, top-left please"
    e = bank.explain("a smal red dragon")
    assert e["in_bank"] is False and e["corrected"] == {"smal": "small"} and e["unknown_words"] == ["dragon"]
    assert e["read_as"] == "a small red dragon" and e["nearest"]["prompt"] in texts
    assert bank.explain(texts[1])["in_bank"] is True


def test_generate_says_what_it_read(pack_dir, tmp_path, capsys):
    from edge_t2i.cli import main
    from tests.conftest import BANK_PROMPTS

    typed = BANK_PROMPTS[1].replace("large", "lrage") + " with a dragon"
    assert main(["generate", str(pack_dir), "--prompt", typed, "--unknown", "nearest", "--seeds", "0",
                 "--out", str(tmp_path / "x.png")]) == 0
    err = capsys.readouterr().err
    assert "(spelling corrected: lrage -> large)" in err and f"drawn as the bank prompt {BANK_PROMPTS[1]!r}" in err
    assert "note: no bank prompt uses 'with', 'dragon'" in err


def test_metadata_records_the_prompt_as_typed_and_as_read(pack_dir, tmp_path):
    import json

    from edge_t2i.cli import main
    from tests.conftest import BANK_PROMPTS

    typed = BANK_PROMPTS[2].replace("green", "gren")
    (tmp_path / "p.txt").write_text(f"{BANK_PROMPTS[0]}\n{typed}\n")
    assert main(["generate", str(pack_dir), "--prompts-file", str(tmp_path / "p.txt"), "--unknown", "nearest",
                 "--out", str(tmp_path / "out")]) == 0
    rows = [json.loads(line) for line in (tmp_path / "out" / "metadata.jsonl").read_text().splitlines()]
    assert rows[0]["text"] == rows[0]["read_as"] == BANK_PROMPTS[0] and "corrected" not in rows[0]
    assert rows[1]["text"] == typed and rows[1]["read_as"] == BANK_PROMPTS[2] and rows[1]["corrected"] == {"gren": "green"}



@pytest.mark.parametrize("typed", ["pin", "let", "tar", "str", "rd"])
def test_three_letter_words_stay_without_the_encoders_vocabulary(typed):
    assert read(f"a {typed}", KNOWN | {"pink", "left", "star"}).corrected == {}


WHOLE_WORDS = frozenset({"pin", "let", "tar", "ink", "a", "rd"})  # as MiniLM's vocabulary holds them


@pytest.mark.parametrize("typed,meant", [("str", "star"), ("pnk", "pink"), ("lft", "left"), ("pin", None),
                                         ("let", None), ("tar", None), ("ink", None), ("rd", None)])
def test_three_letter_typos_are_told_from_words_by_the_encoders_vocabulary(typed, meant):
    r = read(f"a {typed}", KNOWN | {"pink", "left", "star"}, whole_words=WHOLE_WORDS)
    assert r.corrected == ({typed: meant} if meant else {})


def test_letters_are_counted_without_hyphens_and_apostrophes():
    assert read("a star in the top-lef", KNOWN).corrected == {"top-lef": "top-left"}


LEXICON = {"crimson": "red", "robin egg blue": "pink", "navy": "red", "red": "pink", "drab": "yellow"}


def test_lexicon_phrases_are_read_as_their_bank_words_longest_first():
    r = read("A Crimson star, robin egg blue; NAVY cross", KNOWN, LEXICON)
    assert r.text == "a red star pink red cross"
    assert r.corrected == {"crimson": "red", "robin egg blue": "pink", "navy": "red"}
    assert read("a red star", KNOWN, LEXICON).text == "a red star"  # a word the bank uses keeps its meaning


def test_without_the_encoders_vocabulary_typos_are_corrected_to_bank_words_only():
    r = read("draw a crimsn star", KNOWN, LEXICON)  # "draw" is one edit from "drab", "crimsn" from "crimson"
    assert r.corrected == {} and r.unknown == ("draw", "crimsn")


LEXICON_WORDS = WHOLE_WORDS | {"draw", "near", "humongous", "crimson"}  # real words MiniLM holds whole


@pytest.mark.parametrize("typed,meant", [("crimsn", "red"), ("humongus", "large"), ("navyy", "red"),
                                         ("eensy", "small"), ("draw", None), ("crimsonn", None), ("navi", None)])
def test_long_typos_that_are_no_word_are_read_through_the_lexicon(typed, meant):
    """"draw" is a whole word of the encoder (one edit from "drab"); "crimsonn" is one edit from two entries that
    mean different colours, "eensy" from two that both mean small; "navi" has 4 letters, fewer than
    LEXICON_MIN_LETTERS."""
    lexicon = {**LEXICON, "humongous": "large", "crimsons": "pink", "teensy": "small", "weensy": "small"}
    r = read(f"a {typed} star", KNOWN, lexicon, whole_words=LEXICON_WORDS)
    assert r.corrected == ({typed: meant} if meant else {})
    assert r.unknown == (() if meant else (typed,))


BANK = ["a small red star in the center", "a large pink square in the top-left", "a small yellow cross at the top"]
SIZES_AND_COLOURS = {"paprika": "pink", "lemon": "yellow", "crimson": "red", "teeny": "small", "huge": "large",
                     "robin egg": "pink", "xx": "red star"}


@pytest.mark.parametrize("typed,text,corrected", [
    ("a paprika red star", "a red star", {"paprika red": "red"}),  # a thing's colour, then which colour: red
    ("a lemon yellow star", "a yellow star", {"lemon yellow": "yellow"}),  # the same colour: said once
    ("a teeny red star", "a small red star", {"teeny": "small"}),  # "small red" is said together: two attributes
    ("a paprika star", "a pink star", {"paprika": "pink"}),
    ("a red paprika star", "a red pink star", {"paprika": "pink"}),  # only the word after the phrase decides
    ("a paprika reed star", "a pink red star", {"paprika": "pink", "reed": "red"}),  # a bank word as typed only
    ("a robin egg red star", "a red star", {"robin egg red": "red"}),  # a phrase of two words
    ("a star paprika", "a star pink", {"paprika": "pink"}),  # at the end: nothing after it
    ("an xx red", "an red star red", {"xx": "red star"}),  # a meaning of two words says no one attribute
])
def test_a_lexicon_phrase_before_a_bank_word_of_its_attribute_reads_as_that_word(typed, text, corrected):
    known = vocabulary(BANK)
    same = alternatives(BANK, SIZES_AND_COLOURS)
    assert same("red", "pink") and same("red", "red") and not same("small", "red") and not same("red", "star")
    r = read(typed, known, SIZES_AND_COLOURS, same=same)
    assert (r.text, r.corrected) == (text, corrected)
    without = read(typed, known, SIZES_AND_COLOURS).corrected  # without `same`: each phrase alone
    assert all(k in SIZES_AND_COLOURS or " " not in k for k in without) and len(without) >= len(corrected)


def test_alternatives_of_a_hostile_bank_stay_linear_in_what_its_prompts_say():
    """Every prompt says 60 meaning words: pairs would be 1,770 a prompt; the index keeps 60."""
    lexicon = {f"x{i}": f"w{i}" for i in range(20_000)}
    texts = [" ".join(f"w{(p * 7 + j) % 20_000}" for j in range(60)) for p in range(2_000)]
    same = alternatives(texts, lexicon)
    assert sum(map(len, same.said.values())) == 2_000 * 60
    assert not same("w0", "w1") and same("w0", "w100") and same("w0", "w0") and not same("w0", "w19999")  # unused


def test_explain_counts_a_phrase_and_the_bank_word_after_it_as_the_lexicons():
    bank = PromptBank(BANK, np.eye(3, dtype=np.float32), "test", lexicon=SIZES_AND_COLOURS)
    r = bank.explain("a teeny paprika red stra")
    assert r["read_as"] == "a small red star"
    assert r["corrected"] == {"teeny": "small", "paprika red": "red", "stra": "star"}
    assert r["described"] == {"teeny": "small", "paprika red": "red"}  # "stra" is a typo, not a description


def test_a_bank_keeps_its_lexicon_through_save_and_load_and_refuses_a_crafted_one(tmp_path):
    from edge_t2i.errors import PackError

    texts = ["a large yellow square in the top-left", "a small red star in the center"]
    bank = PromptBank(texts, np.eye(3, dtype=np.float32)[:2], "test", lexicon={"crimson": "red"})
    bank.save(tmp_path / "bank.safetensors")
    loaded = PromptBank.load(tmp_path / "bank.safetensors")
    assert loaded.lexicon == {"crimson": "red"} and loaded.reading("a crimson star").text == "a red star"
    assert loaded.explain("a crimson star")["corrected"] == {"crimson": "red"}
    for bad in ({"Crimson": "red"}, {"crimson": ""}, {"a b c d": "red"}, {"crimson": 7}, {"x" * 65: "red"}, [1],
                {str(i): "red" for i in range(20_001)}):
        with pytest.raises(PackError, match="lexicon"):
            PromptBank(texts, np.eye(3, dtype=np.float32)[:2], "test", lexicon=bad)


def test_a_prompt_that_reads_as_more_than_64_words_is_refused_in_one_line():
    from edge_t2i.errors import InputError

    texts = ["a large yellow square in the top-left", "a small red star in the center"]
    bank = PromptBank(texts, np.eye(3, dtype=np.float32)[:2], "test", lexicon={"x": "red red star"})
    assert len(bank.reading("x " * 21).text.split()) == 63
    with pytest.raises(InputError, match="reads as 66 words with the pack's lexicon: at most 64"):
        bank.reading("x " * 22)


@pytest.mark.slow  # the text pack exports the text encoder
def test_generate_says_when_no_word_of_a_prompt_is_known_and_skips_little_words(text_pack_dir, tmp_path, capsys):
    from edge_t2i.cli import main

    for prompt, said in [("qwxz blorp", "note: no word of 'qwxz blorp' is one the pack's bank uses"),
                         ("a shiny star at the top", "note: no bank prompt uses 'shiny'"),
                         ("a red star on it", None)]:
        assert main(["generate", str(text_pack_dir), "--prompt", prompt, "--seeds", "0",
                     "--out", str(tmp_path / "x.png"), "--force"]) == 0
        err = capsys.readouterr().err
        assert (said in err) if said else "note:" not in err, err
        assert "'at'" not in err and "'on'" not in err
