"""A screenshot of the web page running a pack: `python examples/web/screenshot.py PACK OUT.png`.

Starts serve.py on a free port, opens the page in headless Chromium through Selenium
(`pip install selenium`; Debian: `apt-get install chromium chromium-driver`), waits until the grid is
drawn and saves a PNG. tests/web/test_web.py drives the page with the same helpers.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHROMIUM = os.environ.get("EDGE_T2I_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("EDGE_T2I_CHROMEDRIVER", "/usr/bin/chromedriver")
ORT_JS = HERE / "node_modules" / "onnxruntime-web" / "dist" / "ort.webgpu.min.js"  # what index.html loads
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# WebGPU without a GPU: Chromium's software Vulkan (SwiftShader), slow but enough to check the WebGPU path.
SOFTWARE_WEBGPU = ["--enable-unsafe-webgpu", "--enable-unsafe-swiftshader", "--use-webgpu-adapter=swiftshader",
                   "--use-angle=swiftshader", "--enable-features=Vulkan,WebGPU"]


def missing() -> str | None:
    """Why the browser cannot run here (None if it can)."""
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium chromium-driver)"
    if not Path(CHROMEDRIVER).exists():
        return f"no chromedriver at {CHROMEDRIVER} (Debian: apt-get install chromium-driver)"
    if not ORT_JS.is_file():
        return f"onnxruntime-web is not installed: run `npm ci` in {HERE}"
    if importlib.util.find_spec("selenium") is None:
        return "selenium is not installed (pip install -e '.[dev]')"
    return None


@contextlib.contextmanager
def served(pack: str | Path, timeout: float = 30.0) -> Iterator[str]:
    """Run `serve.py PACK --port 0` in a child process; yields the page's URL."""
    proc = subprocess.Popen([sys.executable, str(HERE / "serve.py"), str(pack), "--port", "0", "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # "serving PACK at http://127.0.0.1:PORT/  (Ctrl-C stops)"
        if " at http" not in line:
            raise RuntimeError(f"serve.py did not start: {line}{proc.stdout.read() if proc.poll() is not None else ''}")
        yield line.split(" at ", 1)[1].split()[0]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def chromium(width: int = 1200, height: int = 820, software_webgpu: bool = False) -> Iterator[object]:
    """Headless Chromium driven by Selenium, with a fresh profile; yields the WebDriver. Without a GPU
    (--disable-gpu) the page has no WebGPU adapter and runs on WebAssembly; `software_webgpu` gives it
    SwiftShader's instead."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    with tempfile.TemporaryDirectory(prefix="edge-t2i-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        flags = ([f for f in FLAGS if f != "--disable-gpu"] + SOFTWARE_WEBGPU) if software_webgpu else FLAGS
        for flag in [*flags, f"--user-data-dir={profile}", f"--window-size={width},{height}"]:
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
        try:
            driver.set_script_timeout(300)
            yield driver
        finally:
            driver.quit()


def wait_until_ready(driver: object, timeout: float = 300.0) -> None:
    """Wait until the page has drawn its first grid (body[data-state] == "ready"); RuntimeError if the
    page reports an error or time runs out."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        page_state = driver.execute_script("return document.body && document.body.dataset.state")  # type: ignore[attr-defined]
        if page_state == "ready":
            return
        if page_state == "error":
            status = driver.execute_script("return document.getElementById('status').textContent")  # type: ignore[attr-defined]
            raise RuntimeError(f"the page failed: {status}")
        time.sleep(0.2)
    raise RuntimeError(f"the page was not ready after {timeout:.0f} s")


def settle(driver: object) -> dict:
    """Wait until the page has drawn every pending update; returns edgeT2I.state()."""
    return driver.execute_async_script(  # type: ignore[attr-defined]
        "const done = arguments[arguments.length - 1];"
        "window.edgeT2I.settled().then(done, (err) => done({error: String(err)}));")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pack", help="a pack folder, e.g. build/shapes64")
    parser.add_argument("out", help="the PNG to write")
    parser.add_argument("--a", default="large red star center", help="prompt A: the first match of this filter")
    parser.add_argument("--b", default="large blue circle center", help="prompt B: the first match of this filter")
    parser.add_argument("--typed", default="a teeny crimson starr in the upper left",
                        help="a typed sentence drawn as prompt A (read by the pack's text encoder; '' for --a)")
    parser.add_argument("--blend", type=float, default=0.0, help="blend slider position (default 0)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the first image (default 7)")
    args = parser.parse_args(argv)
    if (why := missing()) is not None:
        raise SystemExit(why)
    with served(args.pack) as url, chromium(height=700) as driver:
        driver.get(url)  # type: ignore[attr-defined]
        wait_until_ready(driver)
        driver.execute_script("""
            const [a, b, blend, seed] = arguments;
            const set = (id, value, event) => {
              const el = document.getElementById(id);
              el.value = value;
              el.dispatchEvent(new Event(event));
            };
            for (const [letter, filter] of [['a', a], ['b', b]]) {  // filter, then Enter picks the first match
              set(`search-${letter}`, filter, 'input');
              document.getElementById(`search-${letter}`).dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter'}));
            }
            set('seed', String(seed), 'input');
            set('blend', String(blend), 'input');
        """, args.a, args.b, args.blend, args.seed)  # type: ignore[attr-defined]
        settle(driver)
        if args.typed:
            box = driver.find_element("id", "typed")  # type: ignore[attr-defined]
            box.send_keys(args.typed + "\n")
            deadline = time.monotonic() + 120  # the first sentence loads the text encoder
            while not settle(driver).get("typed") and time.monotonic() < deadline:
                time.sleep(0.2)
        for _ in range(3):  # a few more updates so the images/s line has something to average
            driver.execute_script("document.getElementById('blend').dispatchEvent(new Event('input'))")  # type: ignore[attr-defined]
            settle(driver)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(args.out))  # type: ignore[attr-defined]
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
