"""The web page (examples/web) in a real browser: headless Chromium through Selenium, against the Python
runtime. Its JavaScript noise must equal Python's bit for bit, its images must be the Python runtime's
(within 2/255: two builds of ONNX Runtime), its blend slider must be PromptBank.blend, and a typed sentence must
be tokenized, read (lexicon, typos), encoded and drawn as the Python runtime does it.

Skipped, with the reason, where Chromium, chromedriver, selenium or examples/web/node_modules are missing
(Debian: apt-get install chromium chromium-driver; cd examples/web && npm ci)."""

from __future__ import annotations

import importlib.util
import json
import re
import struct
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from edge_t2i.data.prompts import normalize_prompt
from edge_t2i.runtime.bank import PromptBank
from edge_t2i.runtime.noise import noise

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "examples" / "web"
SEEDS = [0, 1, 42, 2**53 + 1, 2**64 - 1]
MAX_PIXEL_DIFF = 2  # of 255


def _load_helpers():
    spec = importlib.util.spec_from_file_location("edge_t2i_web_screenshot", WEB / "screenshot.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


web = _load_helpers()


@pytest.fixture(scope="module")
def web_pack(text_pack_dir: Path) -> Path:
    """The tiny pack with a text encoder, phrase reader and descriptive lexicon (tests/conftest.py text_pack_dir)."""
    return text_pack_dir


@pytest.fixture(scope="module")
def server(request: pytest.FixtureRequest):
    """serve.py on a free port with the tiny pack; yields the page's URL."""
    if not web.ORT_JS.is_file():  # checked before the pack is built
        pytest.skip(f"onnxruntime-web is not installed: run `npm ci` in {WEB}")
    with web.served(request.getfixturevalue("web_pack")) as url:
        yield url


@pytest.fixture(scope="module")
def page(request: pytest.FixtureRequest):
    """Headless Chromium showing the page, its first grid drawn; yields the WebDriver."""
    why = web.missing()
    if why is not None:
        pytest.skip(why)
    with web.chromium() as driver:
        driver.get(request.getfixturevalue("server"))
        web.wait_until_ready(driver)
        yield driver


def call(driver, expression: str, *args):
    """Evaluate an async JavaScript expression (arguments as args[0], ...) and return its value."""
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1]; const args = Array.from(arguments).slice(0, -1);"
        f"(async () => ({expression}))().then((value) => done({{value}}), (err) => done({{error: String(err)}}));",
        *args)
    assert "error" not in result, result["error"]
    return result["value"]


def spec_vectors() -> tuple[dict[int, list[int]], list[int]]:
    """docs/pack-spec.md's test vectors: {seed: first 8 binary32 bit patterns}, SplitMix64 from state 0."""
    text = (ROOT / "docs" / "pack-spec.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| (0|42|2\^64 - 1) \| `([0-9a-f ]+)`", text, re.M)
    vectors = {2**64 - 1 if s == "2^64 - 1" else int(s): [int(h, 16) for h in bits.split()] for s, bits in rows}
    mix = re.search(r"`next\(\)` = `([0-9a-f]+)`, `([0-9a-f]+)`, `([0-9a-f]+)`", text)
    assert len(vectors) == 3 and mix, "the test vectors of docs/pack-spec.md moved"
    return vectors, [int(h, 16) for h in mix.groups()]


# ---- noise -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("nz", [100, 7])
def test_js_noise_equals_python_bit_for_bit(page, nz):
    js = call(page, "args[0].map((s) => Array.from(new Uint32Array(window.edgeT2I.noise(s, args[1]).buffer)))",
              [str(s) for s in SEEDS], nz)
    py = noise(SEEDS, nz).view(np.uint32)
    for seed, row_js, row_py in zip(SEEDS, js, py, strict=True):
        assert row_js == row_py.tolist(), f"seed {seed}: JavaScript noise differs from Python's"


def test_js_noise_gives_the_spec_test_vectors(page):
    vectors, mix = spec_vectors()
    for seed, bits in vectors.items():
        js = call(page, "Array.from(new Uint32Array(window.edgeT2I.noise(args[0], 8).buffer))", str(seed))
        assert js == bits, f"seed {seed}"
    assert call(page, "window.edgeT2I.splitmix64(0n, 3)") == [f"{x:016x}" for x in mix]
    # seeds as Numbers and BigInts are the same seeds; out-of-range ones are refused
    same = "[42, 42n, '42'].map((s) => Array.from(window.edgeT2I.noise(s, 4)))"
    assert len({tuple(row) for row in call(page, same)}) == 1
    with pytest.raises(AssertionError, match="RangeError"):
        call(page, "window.edgeT2I.noise((1n << 64n).toString(), 4)")


# ---- prompts and bank -----------------------------------------------------------------------------------
def test_js_prompt_keys_and_bank_equal_python(page, web_pack):
    texts = ["  A Small  RED circle\tin the TOP-left ", "ａ ｌａｒｇｅ blue\u200b star", "café\u00a0au\x1clait",
             "cafe\u0301", "\ufeffpink\u2060 cross\n\n", "Ｓｔａｒ\u3000①", "a STRAßE ẞ red star", "ΣΊΣΥΦΟΣ ς",
             "Ꭰ\u13a1 ꭰ ǰ ẖ ŉ", "İstanbul DİYARBAKIR"]
    assert call(page, "args[0].map(window.edgeT2I.normalizePrompt)", texts) == [normalize_prompt(t) for t in texts]
    bank = PromptBank.load(web_pack / "bank.safetensors")
    js = call(page, "{prompts: window.edgeT2I.pack.bank.prompts, emb: Array.from(window.edgeT2I.pack.bank.embeddings)}")
    assert js["prompts"] == bank.texts
    assert np.array_equal(np.array(js["emb"], np.float32).reshape(bank.embeddings.shape), bank.embeddings)


# ---- images --------------------------------------------------------------------------------------------
def compare_pixels(driver, web_pack: Path, precision: str, cases: list[tuple[int, int]]) -> int:
    """Max difference (of 255) between the page's `generate` and the Python runtime's, over (bank row, seed)."""
    import edge_t2i

    pipe = edge_t2i.load(web_pack, precision=precision, backend="onnxruntime")
    worst = 0
    for row, seed in cases:
        prompt = pipe.bank.texts[row]
        js = call(driver, "Array.from(await window.edgeT2I.generate(args[0], args[1], args[2]))",
                  prompt, str(seed), precision)
        py = pipe.generate(prompt, seeds=[seed])[0]
        diff = int(np.abs(np.array(js, np.int16).reshape(py.shape) - py.astype(np.int16)).max())
        assert diff <= MAX_PIXEL_DIFF, f"{precision} {prompt!r} seed {seed}: max difference {diff}/255"
        worst = max(worst, diff)
    return worst


@pytest.mark.parametrize("precision", ["int8", "fp32"])
def test_page_pixels_equal_the_python_runtime(page, web_pack, precision):
    cases = [(0, 0), (3, 42), (5, 2**64 - 1), (7, 2**53 + 1)]
    worst = compare_pixels(page, web_pack, precision, cases)
    backend = call(page, "window.edgeT2I.backend(args[0])", precision)
    print(f"\n{precision} on {backend}: page vs Python max pixel difference {worst}/255 over {len(cases)} images")
    assert backend == "wasm"  # headless Chromium with --disable-gpu has no WebGPU adapter: the page falls back


@pytest.mark.slow
def test_page_pixels_on_webgpu_equal_the_python_runtime(request):
    """The WebGPU path, on Chromium's software WebGPU (SwiftShader): catches a WebGPU build of ONNX Runtime
    Web that computes wrong images (ort.min.js's JSEP WebGPU was 138/255 off on INT8 in 1.30.0)."""
    why = web.missing()
    if why is not None:
        pytest.skip(why)
    with web.chromium(software_webgpu=True) as driver:
        driver.get(request.getfixturevalue("server"))
        web.wait_until_ready(driver)
        if call(driver, "window.edgeT2I.backend('int8')") != "webgpu":
            pytest.skip("this Chromium has no software WebGPU adapter (SwiftShader)")
        for precision in ("int8", "fp32"):
            worst = compare_pixels(driver, request.getfixturevalue("web_pack"), precision, [(1, 3), (6, 2**64 - 1)])
            assert call(driver, "window.edgeT2I.backend(args[0])", precision) == "webgpu"
            print(f"\n{precision} on webgpu (SwiftShader): max pixel difference {worst}/255")


def test_the_blend_slider_is_prompt_bank_blend_and_the_grid_shows_it(page, web_pack, tmp_path):
    import edge_t2i

    a, b, t, seed = 2, 5, 0.37, 2**64 - 3  # the grid's seeds wrap: 2^64-3, 2^64-2, 2^64-1, 0, 1, ...
    page.execute_script("""
        const [a, b, t, seed] = arguments;
        const pick = (id, value) => {
          const el = document.getElementById(id);
          el.value = value;
          el.dispatchEvent(new Event('change'));
        };
        pick('precision', 'int8');
        pick('prompt-a', String(a));
        pick('prompt-b', String(b));
        const set = (id, value) => {
          const el = document.getElementById(id);
          el.value = value;
          el.dispatchEvent(new Event('input'));
        };
        set('seed', seed);
        set('blend', String(t));
    """, a, b, t, str(seed))
    state = web.settle(page)
    assert (state["a"], state["b"], state["t"], state["precision"]) == (a, b, t, "int8")
    seeds = [(seed + i) % 2**64 for i in range(8)]
    assert state["seeds"] == [str(s) for s in seeds]

    pipe = edge_t2i.load(web_pack, precision="int8", backend="onnxruntime")
    expected = pipe.bank.blend(pipe.bank.texts[a], pipe.bank.texts[b], t)
    got = np.array(call(page, "Array.from(window.edgeT2I.currentEmbedding())"), np.float32)
    assert np.abs(got - expected).max() <= 1e-6

    # the grid's canvases hold the Python runtime's images of that blend and those seeds
    cells = page.execute_script("""
        return Array.from(document.querySelectorAll('#grid canvas'), (c) => {
          const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
          return Array.from(d.filter((_, i) => i % 4 !== 3));
        });""")
    py = pipe.generate(np.repeat(expected[None], 8, axis=0), seeds=seeds)
    diff = np.abs(np.array(cells, np.int16).reshape(py.shape) - py.astype(np.int16)).max()
    assert diff <= MAX_PIXEL_DIFF, f"grid vs Python: max difference {diff}/255"
    assert "images/s" in page.find_element("id", "fps").text

    shot = tmp_path / "web.png"
    page.save_screenshot(str(shot))
    width, height = struct.unpack(">II", shot.read_bytes()[16:24])  # PNG IHDR
    assert width >= 800 and height >= 500


# ---- the server -------------------------------------------------------------------------------------------
def _get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), b""


def test_serve_serves_the_page_pack_and_runtime_and_nothing_else(server, web_pack):
    status, headers, body = _get(server)
    assert status == 200 and headers["Content-Type"].startswith("text/html") and b"app.js" in body
    assert headers["Cross-Origin-Embedder-Policy"] == "require-corp"
    status, headers, body = _get(server + "pack/manifest.json")
    assert status == 200 and body == (web_pack / "manifest.json").read_bytes()
    status, _, body = _get(server + "pack/bank.safetensors")
    assert status == 200 and body == (web_pack / "bank.safetensors").read_bytes()
    status, headers, _ = _get(server + "ort/ort-wasm-simd-threaded.asyncify.wasm")
    assert status == 200 and headers["Content-Type"] == "application/wasm"
    status, headers, _ = _get(server + "ort/ort-wasm-simd-threaded.asyncify.mjs")
    assert status == 200 and headers["Content-Type"].startswith("text/javascript")
    assert (web_pack / "report.md").is_file()  # in the folder, not in the manifest's files
    for path in ["pack/report.md", "pack/", "ort/", "pack", "pack/..%2fmanifest.json", "pack/%2e%2e",
                 "pack/../tiny/manifest.json", "ort/../package.json", "serve.py", "..%2f..%2fetc%2fpasswd",
                 "node_modules/onnxruntime-web/package.json", "pack/.%2fmanifest.json"]:
        assert _get(server + path)[0] == 404, path


@pytest.fixture(scope="module")
def unconditional_pack(tmp_path_factory) -> Path:
    """A tiny DCGAN pack (noise alone -> image), converted through the CLI."""
    torch = pytest.importorskip("torch")
    from edge_t2i.cli import main
    from edge_t2i.models.dcgan import DCGANConfig, DCGANGenerator

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("dcgan")
    torch.save({"netG_state_dict": DCGANGenerator(DCGANConfig(32, 8, 16)).state_dict()}, folder / "g.tar")
    assert main(["convert", str(folder / "g.tar"), "--arch", "dcgan", "--out", str(folder / "pack"),
                 "--gate-images", "32", "--calib-samples", "8", "--no-kid"]) == 0
    return folder / "pack"


def test_the_page_draws_an_unconditional_pack_from_seeds_alone(unconditional_pack):
    import edge_t2i

    why = web.missing()
    if why is not None or not web.ORT_JS.is_file():
        pytest.skip(why or "onnxruntime-web is not installed")
    with web.served(unconditional_pack) as url, web.chromium() as driver:
        driver.get(url)
        web.wait_until_ready(driver)
        assert driver.find_element("id", "prompt-a").is_displayed() is False
        assert "unconditional" in driver.find_element("id", "pack-info").text
        with edge_t2i.load(unconditional_pack, precision="int8", backend="onnxruntime") as pipe:
            for seed in (0, 7, 2**64 - 1):
                js = call(driver, "Array.from(await window.edgeT2I.generate(null, args[0], 'int8'))", str(seed))
                py = pipe.generate(seeds=[seed])[0]
                assert np.abs(np.array(js, np.int16).reshape(py.shape) - py.astype(np.int16)).max() <= MAX_PIXEL_DIFF


def test_serve_refuses_packs_whose_files_are_not_what_the_manifest_hashed(web_pack, tmp_path):
    """The page runs what the server hands it: only regular files of the declared size and sha256 (as the runtime)."""
    import shutil

    spec = importlib.util.spec_from_file_location("edge_t2i_web_serve", WEB / "serve.py")
    serve = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(serve)
    assert set(serve.read_pack(web_pack)) == {"manifest.json", *json.loads((web_pack / "manifest.json").read_text())["files"]}
    linked = Path(shutil.copytree(web_pack, tmp_path / "linked"))
    shutil.move(linked / "bank.safetensors", tmp_path / "bank.safetensors")
    (linked / "bank.safetensors").symlink_to(tmp_path / "bank.safetensors")
    with pytest.raises(SystemExit, match="bank.safetensors: Too many levels of symbolic links"):
        serve.read_pack(linked)
    altered = Path(shutil.copytree(web_pack, tmp_path / "altered"))
    data = bytearray((altered / "bank.safetensors").read_bytes())
    data[-1] ^= 1
    (altered / "bank.safetensors").write_bytes(bytes(data))
    with pytest.raises(SystemExit, match="does not match its size and sha256"):
        serve.read_pack(altered)


def test_the_page_refuses_prompts_over_the_runtimes_limit(page):
    result = page.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "window.edgeT2I.generate('a'.repeat(1001), 0).then(() => done('drew'), (e) => done(String(e)));")
    assert "at most 1000 characters" in result


# ---- typed sentences: tokens, reading, encoder and reader, the grid ---------------------------------------
def typed_sentences(bank_texts: list[str], n: int = 300) -> list[str]:
    """`n` sentences as people type them: the bank's, held-out phrasings, descriptive words, one-letter typos,
    and edge cases for a tokenizer (accents, CJK, emoji, punctuation, NFKC, over 128 tokens)."""
    from edge_t2i.data import vocab
    from edge_t2i.data.phrasings import descriptive, phrase

    rng = np.random.default_rng(5)
    out = list(bank_texts) + [
        "A Crimson Sqaure, café — top-left!", "  ＡＢＣ ① naïve résumé 東京 emoji 🐉 dragon", "don't-stop it's",
        "x" * 150, "Ünïcödé\u200b zero\u00a0width", "yelloow sqaure in teh middle", "ROBIN EGG BLUE star!!!",
        "a [CLS] token [SEP] and [PAD]", "tab\tseparated\nlines", "supercalifragilisticexpialidocious " * 25,
        "ａ ｌａｒｇｅ blue\u200b star", "cafe\u0301 au lait", "#1 star @ (top) {left} 100%", "",
    ]
    while len(out) < n:
        attrs = [str(rng.choice(v)) for v in (vocab.SHAPES, vocab.COLORS, vocab.SIZES, vocab.POSITIONS)]
        text = phrase(rng, *attrs, None, heldout=bool(rng.random() < 0.5)) if rng.random() < 0.6 \
            else descriptive(rng, *attrs)[0]
        if rng.random() < 0.3:  # one letter dropped
            i = int(rng.integers(len(text)))
            text = text[:i] + text[i + 1:]
        out.append(text)
    return out[:n]


def test_js_tokens_equal_the_python_tokenizer_on_300_sentences_and_their_windows(page, web_pack):
    from tokenizers import Tokenizer

    from edge_t2i.runtime.encoder import MAX_TOKENS

    tok = Tokenizer.from_file(str(web_pack / "tokenizer.json"))
    tok.enable_truncation(MAX_TOKENS)  # as the runtime's OnnxTextEncoder, without its padding
    tok.no_padding()
    from edge_t2i.data.prompts import phrase_windows

    texts = typed_sentences(PromptBank.load(web_pack / "bank.safetensors").texts)
    texts += sorted({w for t in texts[-40:] for w in phrase_windows(t, 4)})  # the windows the encoder gets too
    js = call(page, "window.edgeT2I.tokens(args[0])", texts)
    py = [e.ids for e in tok.encode_batch(texts)]
    bad = [(t, a, b) for t, a, b in zip(texts, js, py, strict=True) if a != b]
    assert not bad, f"{len(bad)} of {len(texts)} differ; first: {bad[0][0]!r}: {bad[0][1][:20]} vs {bad[0][2][:20]}"
    assert max(len(ids) for ids in js) == MAX_TOKENS  # the long ones were truncated as Python truncates


def test_js_reading_equals_the_python_runtime(page, web_pack):
    """Lexicon phrases and typo corrections: the same text, the same corrections, the same unknown words."""
    bank = PromptBank.load(web_pack / "bank.safetensors")  # its prompts and lexicon; the encoder's words: below
    assert len(bank.lexicon) > 500  # the descriptive lexicon of the conftest pack
    texts = typed_sentences(bank.texts, 200)
    import edge_t2i

    texts += ["a paprika red star", "a teeny red star"]  # a thing's colour, then the colour meant; two attributes
    texts += ["an itty-bitty vermilion star", "a Teensy-Weensy turkey red cross"]  # hyphens, phrases of WordNet
    texts += ["an eensy star"]  # one edit from two lexicon words that mean the same: "teensy", "weensy"
    texts += ["a humongus crimsn star"]  # typos of lexicon words (long, no whole word of the encoder)
    texts += ["a str in the lft", "a pin shaped red cross, let it be", "a pnk sta"]  # 3-letter typos and words
    js = call(page, "window.edgeT2I.readPrompt(args[0])", texts)
    with edge_t2i.load(web_pack, backend="onnxruntime") as pipe:
        wants = [pipe.bank.reading(t) for t in texts]
    assert wants[-3].corrected == {"str": "star", "lft": "left"} and wants[-2].corrected == {} and wants[-1].corrected == {
        "pnk": "pink", "sta": "star"}
    for text, got, want in zip(texts, js, wants, strict=True):
        assert (got["text"], got["corrected"], got["unknown"]) == (want.text, want.corrected, list(want.unknown)), text
    assert any(r["corrected"] for r in js) and any(r["unknown"] for r in js)
    assert js[-4]["corrected"] == {"humongus": "large", "crimsn": "red"}
    assert js[-5]["corrected"] == {"eensy": "small"}
    assert js[-9]["corrected"] == {"paprika red": "red"} and js[-8]["corrected"] == {"teeny": "small"}
    assert js[-7]["text"] == "an small red star" and js[-6]["corrected"] == {"teensy-weensy": "small", "turkey red": "red"}


def test_js_refuses_what_python_refuses_in_a_pack_text_path(page):
    """A crafted lexicon (bank.py check_lexicon) and a tokenizer with a regular expression (encoder.py)."""
    assert call(page, "window.edgeT2I.checkLexicon({'crimson': 'red', 'robin egg blue': 'cyan'})") == [
        ["crimson", "red"], ["robin egg blue", "cyan"]]
    for bad in ({"crimson": {}}, {"Crimson": "red"}, {"a b c d": "red"}, {"x": "y " * 40}, [1], {"x" * 65: "red"}):
        with pytest.raises(AssertionError, match="lexicon"):
            call(page, "window.edgeT2I.checkLexicon(args[0])", bad)
    spec = {"pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "(a|a)+$"}}]}}
    with pytest.raises(AssertionError, match="regular expression"):
        call(page, "window.edgeT2I.checkTokenizer(args[0])", spec)
    assert call(page, "window.edgeT2I.checkTokenizer(args[0])", {"model": {"type": "WordPiece"}}) is True


TYPED = ["a teeny crimson starr in the upper left", "draw me a jumbo navy blue square by the bottom",
         "robin egg blue circle please", "a small red circle in the top-left", "🐉 a dragon made of fire"]


def test_js_embeddings_of_typed_sentences_equal_the_python_runtimes(page, web_pack):
    import edge_t2i

    with edge_t2i.load(web_pack, precision="int8", backend="onnxruntime") as pipe:
        for text in TYPED:
            got = call(page, "window.edgeT2I.embedPrompt(args[0])", text)
            want = pipe.bank.lookup(text, "encode")
            diff = float(np.abs(np.array(got["embedding"], np.float32) - want).max())
            assert diff <= 1e-4, f"{text!r}: max difference {diff} from the Python runtime's embedding"
            nearest = pipe.bank.explain(text)["nearest"]
            assert got["nearest"]["prompt"] == nearest["prompt"], text
            assert abs(got["nearest"]["similarity"] - nearest["similarity"]) <= 1e-3, text


def test_a_typed_sentence_is_drawn_and_the_page_says_how_it_was_read(page, web_pack):
    import edge_t2i

    text = TYPED[0]
    box = page.find_element("id", "typed")
    box.clear()
    box.send_keys(text + "\n")
    deadline = time.monotonic() + 120  # the first sentence loads the text encoder
    while not call(page, "window.edgeT2I.state().typed") and time.monotonic() < deadline:
        time.sleep(0.2)
    state = web.settle(page)
    said = page.find_element("id", "reading").text
    assert state["typed"]["text"] == text and "teeny \u2192 small, crimson \u2192 red, starr \u2192 star" in said, said
    # A is the typed sentence now: the bank list shows no pick and no filter; little words go unmentioned
    assert call(page, "document.getElementById('prompt-a').selectedIndex") == -1
    assert page.find_element("id", "search-a").get_attribute("value") == ""
    assert "\u201cin\u201d" not in said
    pick = page.find_element("id", "blend")
    assert float(pick.get_attribute("value")) == state["t"]
    with edge_t2i.load(web_pack, precision=state["precision"], backend="onnxruntime") as pipe:
        a = pipe.bank.lookup(text, "encode")
        b = pipe.bank.embeddings[state["b"]]
        expected = pipe.bank.blend(a, b, state["t"]) if state["t"] else a
        seeds = [int(s) for s in state["seeds"]]
        py = pipe.generate(np.repeat(expected[None], len(seeds), axis=0), seeds=seeds)
    cells = page.execute_script("""
        return Array.from(document.querySelectorAll('#grid canvas'), (c) => {
          const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
          return Array.from(d.filter((_, i) => i % 4 !== 3));
        });""")
    diff = np.abs(np.array(cells, np.int16).reshape(py.shape) - py.astype(np.int16)).max()
    assert diff <= MAX_PIXEL_DIFF, f"typed sentence grid vs Python: max difference {diff}/255"


def test_a_pack_without_a_phrase_reader_encodes_typed_sentences_as_python_does(web_pack, tmp_path):
    """Without reader.onnx the prompt's own sentence embedding is the generator's input: the prompt as typed (as
    read where something was corrected), not its normalized key ("ＲＥＤ" tokenizes to [UNK] in both)."""
    import shutil

    import edge_t2i

    why = web.missing()
    if why is not None or not web.ORT_JS.is_file():
        pytest.skip(why or "onnxruntime-web is not installed")
    pack = Path(shutil.copytree(web_pack, tmp_path / "plain"))
    m = json.loads((pack / "manifest.json").read_text())
    del m["encoder"]["reader"], m["files"]["reader.onnx"]
    (pack / "reader.onnx").unlink()
    (pack / "manifest.json").write_text(json.dumps(m))
    with web.served(pack) as url, web.chromium() as driver, edge_t2i.load(pack, backend="onnxruntime") as pipe:
        driver.get(url)
        web.wait_until_ready(driver)
        for text in ["ＲＥＤ star, top LEFT", "a crimson starr please", "🐉"]:
            got = np.array(call(driver, "window.edgeT2I.embedPrompt(args[0])", text)["embedding"], np.float32)
            diff = float(np.abs(got - pipe.bank.lookup(text, "encode")).max())
            assert diff <= 1e-4, f"{text!r}: max difference {diff}"
