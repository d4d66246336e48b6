"""What this CPU offers INT8 inference: its model name and the relevant instruction-set extensions.

Recorded in a pack's manifest (the host that converted and gated it) and used by the runtime to pick
the ONNX Runtime CPU variant of an INT8 model: unsigned 8-bit activations (U8S8) run ONNX Runtime's
fastest x86 kernels but can saturate where the CPU has no VNNI (AVX2's vpmaddubsw adds two u8 x s8
products in 16 bits); with AVX-512 VNNI or AVX-VNNI (vpdpbusd accumulates in 32 bits) they are exact.
Source: Intel Intrinsics Guide (vpmaddubsw, vpdpbusd); ONNX Runtime docs, "Quantize ONNX models",
section "When and why do I need to try U8U8 / S8S8".
"""

from __future__ import annotations

import functools
import platform
from pathlib import Path

# Strongest first: the first flag the CPU has names its INT8 class.
INT8_ISA_ORDER = ("amx_int8", "avx512_vnni", "avx_vnni", "avx512f", "avx2", "asimddp", "asimd")
VNNI = ("amx_int8", "avx512_vnni", "avx_vnni")  # 32-bit accumulation of u8 x s8: U8S8 cannot saturate


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (Linux; `Features` on ARM); empty elsewhere."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


@functools.lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's model name (e.g. "Intel(R) Xeon(R) Processor"), else the machine type."""
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def int8_isa(flags: frozenset[str] | None = None) -> str:
    """The strongest INT8-relevant extension of `flags` (default: this CPU), or the machine type."""
    flags = cpu_flags() if flags is None else flags
    return next((f for f in INT8_ISA_ORDER if f in flags), platform.machine() or "unknown")


def host_record() -> dict:
    """{"cpu", "int8_isa", "vnni"} for a manifest."""
    return {"cpu": cpu_model(), "machine": platform.machine(), "int8_isa": int8_isa(),
            "vnni": any(f in cpu_flags() for f in VNNI)}
