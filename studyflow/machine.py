"""The machine a run or a benchmark ran on, described from /proc and the Python runtime.

Its figures (cores, CPU model, the vector and matrix extensions TensorFlow's kernels can use) are
what decides training speed, so reports and benchmark results name them beside their numbers.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path


def cpuinfo(field: str) -> str | None:
    """The value of the first `field` line of /proc/cpuinfo (None where there is none)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(field):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_flags() -> list[str]:
    """The CPU's vector and matrix extensions that decide which kernels TensorFlow can use."""
    return sorted(
        flag
        for flag in (cpuinfo("flags") or "").split()
        if flag.startswith(("avx512", "amx")) or flag in ("avx2", "fma")
    )


def memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return None


def description() -> str:
    """One line: cores, CPU model, memory, the extensions that matter for training, Python, OS."""
    flags = cpu_flags()
    notable = [flag for flag in ("avx512f", "avx512_bf16", "amx_bf16") if flag in flags] or flags[:2]
    memory = memory_gib()
    return ", ".join(
        filter(
            None,
            [
                f"{os.cpu_count()} cores",
                cpuinfo("model name") or "unknown CPU",
                f"{memory:.0f} GiB" if memory else None,
                " ".join(notable) if notable else None,
                f"Python {sys.version.split()[0]}",
                platform.system() + " " + platform.release(),
            ],
        )
    )
