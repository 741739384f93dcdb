"""One line naming the hardware a benchmark ran on."""

from __future__ import annotations

import platform
from pathlib import Path

from ..exact._executors import default_workers

__all__ = ["hardware"]



def hardware() -> str:
    """One line describing this machine (CPU model, cores)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {default_workers()} usable cores, Python {platform.python_version()}"

