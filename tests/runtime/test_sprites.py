"""Sprite packs: a 4-channel (premultiplied RGBA) generator converts, gates and runs in `generate`, the game loop
and the web page, each returning or drawing its alpha."""

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import edge_t2i
from edge_t2i.cli import main
from edge_t2i.imaging import composite, unpremultiply
from tests.conftest import BANK_PROMPTS

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sprite_pack(tmp_path_factory, prompt_files) -> Path:
    import torch

    from edge_t2i.models.checkpoint import save_generator
    from edge_t2i.models.config import ModelConfig
    from edge_t2i.models.networks import NetG

    torch.manual_seed(0)
    g = NetG(ModelConfig(resolution=32, ngf=8, ndf=8, noise_in_fusion=8, channels=4))
    folder = tmp_path_factory.mktemp("sprite")
    save_generator(folder / "ckpt", g.eval(), {"steps": 0, "dataset_kind": "general"})
    assert main(["convert", str(folder / "ckpt"), "--out", str(folder / "pack"), "--prompts", str(prompt_files["bank"]),
                 "--calib-prompts", str(prompt_files["calib"]), "--eval-prompts", str(prompt_files["eval"]),
                 "--calib-samples", "16", "--gate-images", "32", "--no-kid", "--no-encoder"]) == 0
    return folder / "pack"


def test_sprite_pack_declares_rgba_and_passes_its_gate(sprite_pack):
    manifest = json.loads((sprite_pack / "manifest.json").read_text())
    assert manifest["model"]["channels"] == 4
    assert manifest["io"]["outputs"][0]["shape"] == ["batch", 4, 32, 32]
    assert manifest["gate"]["passed"] is True and "int8" in manifest["models"]


def test_generate_returns_premultiplied_rgba_and_writes_straight_alpha_pngs(sprite_pack, tmp_path):
    with edge_t2i.load(sprite_pack, backend="onnxruntime") as gen:
        assert gen.channels == 4
        img = gen.generate(BANK_PROMPTS[0], seeds=[0, 1])
        bgra = gen.generate(BANK_PROMPTS[0], seeds=[0], bgr=True)
    assert img.shape == (2, 32, 32, 4) and img.dtype == np.uint8
    assert np.array_equal(bgra[0], img[0][..., [2, 1, 0, 3]])
    over_black, over_white = composite(img, (0, 0, 0)), composite(img, (255, 255, 255))
    assert np.array_equal(over_black, img[..., :3])  # "over" black leaves premultiplied colour as it is
    assert (over_white.astype(int) >= over_black).all()
    out = tmp_path / "grid.png"
    assert main(["generate", str(sprite_pack), "--prompt", BANK_PROMPTS[0], "--seeds", "0-1", "--out", str(out),
                 "--backend", "onnxruntime"]) == 0
    assert cv2.imread(str(out), cv2.IMREAD_UNCHANGED).shape[2] == 3  # the grid: tiles over a checkerboard
    (tmp_path / "p.txt").write_text(BANK_PROMPTS[0] + "\n")
    assert main(["generate", str(sprite_pack), "--prompts-file", str(tmp_path / "p.txt"), "--out",
                 str(tmp_path / "imgs"), "--backend", "onnxruntime"]) == 0
    png = cv2.cvtColor(cv2.imread(str(tmp_path / "imgs" / "00000.png"), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGRA2RGBA)
    assert np.abs(png.astype(int) - unpremultiply(img[:1])[0]).max() <= 1  # a PNG holds straight alpha


@pytest.mark.slow
def test_game_loop_composites_a_sprite_pack(sprite_pack, tmp_path):
    from tests.test_game_loop import run_headless

    stats = run_headless(sprite_pack, 60, tmp_path)
    assert stats["channels"] == 4 and stats["images_generated"] > 0


def test_game_loop_blends_premultiplied_alpha_over_its_backdrop():
    pygame = pytest.importorskip("pygame")
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import game_loop
    finally:
        sys.path.remove(str(ROOT / "examples"))
    sprite = np.zeros((4, 4, 4), np.uint8)
    sprite[:2] = (100, 0, 0, 128)  # top half: red at half alpha, premultiplied; bottom half transparent
    screen = pygame.Surface((4, 4))
    screen.fill((0, 0, 200))
    screen.blit(game_loop.to_surface(pygame, sprite), (0, 0), special_flags=pygame.BLEND_PREMULTIPLIED)
    top, bottom = screen.get_at((1, 0)), screen.get_at((1, 3))
    assert tuple(bottom)[:3] == (0, 0, 200)
    assert abs(top.r - 100) <= 2 and abs(top.b - 200 * 127 // 255) <= 2


def test_the_web_page_draws_a_sprite_pack_as_python_does(sprite_pack):
    import importlib.util

    spec = importlib.util.spec_from_file_location("edge_t2i_web_screenshot", ROOT / "examples" / "web" / "screenshot.py")
    web = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(web)
    why = web.missing()
    if why is not None or not web.ORT_JS.is_file():
        pytest.skip(why or "onnxruntime-web is not installed")
    with web.served(sprite_pack) as url, web.chromium() as driver:
        driver.get(url)
        web.wait_until_ready(driver)
        result = driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "window.edgeT2I.generate(arguments[0], '3', 'int8').then((x) => done(Array.from(x)), (e) => done(String(e)));",
            BANK_PROMPTS[1])
        assert isinstance(result, list), result
        with edge_t2i.load(sprite_pack, precision="int8", backend="onnxruntime") as pipe:
            py = pipe.generate(BANK_PROMPTS[1], seeds=[3])[0]
        js = np.array(result, np.int16).reshape(py.shape)
        assert py.shape[2] == 4 and np.abs(js - py.astype(np.int16)).max() <= 2
        # the grid's canvases are marked as sprites (a checkerboard behind them) and hold the alpha
        alpha = driver.execute_script(
            "const c = document.querySelector('#grid canvas'); const d = c.getContext('2d')"
            ".getImageData(0, 0, c.width, c.height).data; let lo = 255;"
            "for (let i = 3; i < d.length; i += 4) lo = Math.min(lo, d[i]); return [c.className, lo];")
        assert alpha[0] == "sprite" and alpha[1] < 255
