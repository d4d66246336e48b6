"""edge-t2i: text-to-image GAN generators as packs for real-time programs.

The public API is torch-free: `load(pack)` -> `Pipeline`, `PromptBank`, `AsyncPipeline`.
Training (`edge_t2i.train`) and conversion (`edge_t2i.convert`) need the extras.
"""

import os as _os
import sys as _sys
import warnings as _warnings

# Nothing written outside what the user asked for, nothing sent (README "Safety"), set before anything imports the
# engines. ONNX Runtime 1.32's telemetry writes a persistent device id and a usage database under ~/.cache/Microsoft
# and a session file in $TMPDIR in every process (ORT_DISABLE_TELEMETRY=0 set by the caller is respected). Importing
# OpenVINO 2026 runs its converter's telemetry (openvino/tools/ovc/__init__.py), which writes ~/intel/openvino_ga_cid
# and ~/intel/stats and sends an import event to Google Analytics; with `openvino_telemetry` unimportable OpenVINO
# uses its own stub. Both only where the caller has not imported them already.
_os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
if "openvino" not in _sys.modules and _os.environ.get("EDGE_T2I_OPENVINO_TELEMETRY") != "1":
    _sys.modules.setdefault("openvino_telemetry", None)  # type: ignore[arg-type]

from edge_t2i.errors import EdgeT2IError
from edge_t2i.runtime import AsyncPipeline, Pipeline, PromptBank, load

__version__ = "0.1.0"
__all__ = ["AsyncPipeline", "EdgeT2IError", "Pipeline", "PromptBank", "load", "__version__"]

_DEPRECATED = {"Generator": "Pipeline", "AsyncGenerator": "AsyncPipeline"}


def __getattr__(name: str) -> object:
    """The names of 0.1's runtime classes still resolve, with a DeprecationWarning."""
    if name in _DEPRECATED:
        new = _DEPRECATED[name]
        _warnings.warn(f"edge_t2i.{name} is now edge_t2i.{new}", DeprecationWarning, stacklevel=2)
        return globals()[new]
    raise AttributeError(f"module 'edge_t2i' has no attribute {name!r}")
