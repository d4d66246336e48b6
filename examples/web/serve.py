"""Serve the web page for a pack: `python examples/web/serve.py PACK [--port 8000] [--host 127.0.0.1]`.

Standard library only. Serves
  /            the page (index.html, app.js, style.css of this folder),
  /pack/NAME   the pack's manifest.json and the files its manifest lists (nothing else of the folder), each
               checked at start (a regular file of its declared size and sha256) and served from memory,
  /ort/NAME    onnxruntime-web's dist files (`npm ci` in this folder installs them into node_modules),
  /tokenizers/NAME  Tokenizers.js's (npm @huggingface/tokenizers), which the page's text path imports,
with no directory listings and no paths: a NAME with a slash, "..", or anything not on those lists is a 404.
It sends the cross-origin isolation headers (COOP/COEP), so the page may run ONNX Runtime's WebAssembly
on several threads (browsers allow that on https and on localhost/127.0.0.1).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import stat
import sys
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

HERE = Path(__file__).resolve().parent
ORT_DIST = HERE / "node_modules" / "onnxruntime-web" / "dist"
TOKENIZERS_DIST = HERE / "node_modules" / "@huggingface" / "tokenizers" / "dist"
PAGE = {"": "index.html", "index.html": "index.html", "app.js": "app.js", "text.js": "text.js", "style.css": "style.css"}
PLAIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
TYPES = {
    ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
    ".json": "application/json", ".wasm": "application/wasm", ".map": "application/json",
    ".onnx": "application/octet-stream", ".safetensors": "application/octet-stream",
    ".png": "image/png", ".md": "text/markdown; charset=utf-8", ".txt": "text/plain; charset=utf-8",
}


def read_pack(pack: Path) -> dict[str, bytes]:
    """What /pack/ serves, read once at start and served from memory: manifest.json and every file the manifest
    lists, each a regular file in the folder (no link, FIFO or device) whose size and sha256 match the manifest's,
    as the Python runtime checks them (edge_t2i/runtime/packfile.py), so the page runs only verified bytes.
    Raises SystemExit (one line) for anything else."""
    def read(name: str, limit: int) -> bytes:
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        try:
            fd = os.open(pack / name, flags)
        except OSError as exc:
            raise SystemExit(f"{pack}/{name}: {exc.strerror} (a pack's files are regular files, not links)") from None
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode) or st.st_size > limit:
                raise SystemExit(f"{pack}/{name} is not a regular file of at most {limit} bytes")
            return fh.read(limit + 1)

    try:
        manifest = json.loads(read("manifest.json", 4 << 20).decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise SystemExit(f"{pack} is not a pack: manifest.json is not JSON ({str(exc)[:100]})") from None
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict):
        raise SystemExit(f"{pack}/manifest.json has no 'files'")
    served = {"manifest.json": read("manifest.json", 4 << 20)}
    for name, entry in files.items():
        if not (isinstance(name, str) and PLAIN_NAME.match(name) and isinstance(entry, dict)):
            raise SystemExit(f"{pack}/manifest.json lists {str(name)[:60]!r}, not a plain file name with a sha256")
        data = read(name, 2**31 - 1)
        if len(data) != entry.get("bytes", len(data)) or hashlib.sha256(data).hexdigest() != entry.get("sha256"):
            raise SystemExit(f"{pack}/{name} does not match its size and sha256 in the manifest (altered): not served")
        served[name] = data
    return served


def resolve(path: str, pack: Path, pack_names: dict[str, bytes]) -> Path | None:
    """The file a request path stands for, or None (404)."""
    parts = unquote(urlsplit(path).path).split("/")[1:]
    if len(parts) == 1 and parts[0] in PAGE:
        return HERE / PAGE[parts[0]]
    if len(parts) != 2 or not PLAIN_NAME.match(parts[1]):
        return None
    folder, name = parts
    if folder == "pack" and name in pack_names:
        return pack / name
    for prefix, dist in (("ort", ORT_DIST), ("tokenizers", TOKENIZERS_DIST)):
        if folder == prefix and (dist / name).is_file():
            return dist / name
    return None


def make_handler(pack: Path, pack_names: dict[str, bytes]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "edge-t2i-web"

        def do_GET(self) -> None:
            self.send(body=True)

        def do_HEAD(self) -> None:
            self.send(body=False)

        def send(self, body: bool) -> None:
            file = resolve(self.path, pack, pack_names)
            if file is None:
                self.send_error(HTTPStatus.NOT_FOUND)
                return
            try:  # a pack file from memory (verified at start), the page and onnxruntime-web from disk
                data = pack_names[file.name] if file.parent == pack else file.read_bytes()
            except OSError:
                self.send_error(HTTPStatus.NOT_FOUND)
                return
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", TYPES.get(file.suffix, "application/octet-stream"))
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-cache")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Cross-Origin-Opener-Policy", "same-origin")
            self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
            self.end_headers()
            if body:
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        def log_message(self, format: str, *args: object) -> None:
            if not self.server.quiet:  # type: ignore[attr-defined]
                super().log_message(format, *args)

    return Handler


def make_server(pack: str | Path, host: str = "127.0.0.1", port: int = 8000,
                quiet: bool = False) -> ThreadingHTTPServer:
    """An HTTP server for `pack` (not started: call serve_forever). Port 0 picks a free one.
    Raises SystemExit if the folder is not a pack or onnxruntime-web is not installed."""
    pack = Path(pack).resolve()
    names = read_pack(pack)
    if not (ORT_DIST / "ort.webgpu.min.js").is_file() or not (TOKENIZERS_DIST / "tokenizers.min.mjs").is_file():
        raise SystemExit(f"onnxruntime-web or @huggingface/tokenizers is not installed: run `npm ci` in {HERE}")
    server = ThreadingHTTPServer((host, port), make_handler(pack, names))
    server.daemon_threads = True
    server.quiet = quiet  # type: ignore[attr-defined]
    return server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pack", help="a pack folder (with manifest.json), e.g. build/shapes64")
    parser.add_argument("--port", type=int, default=8000, help="port (0: any free one; default 8000)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--quiet", action="store_true", help="do not log requests")
    args = parser.parse_args(argv)
    try:
        server = make_server(args.pack, args.host, args.port, args.quiet)
    except OSError as exc:  # the port is taken, the address is not this machine's, ...
        raise SystemExit(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from exc
    host, port = server.server_address[:2]
    shown = f"[{host}]" if ":" in str(host) else host
    print(f"serving {Path(args.pack).resolve()} at http://{shown}:{port}/  (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    sys.exit(main())
