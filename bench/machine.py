"""The machine a benchmark ran on, recorded with every report."""

from __future__ import annotations

import os
import pathlib
import platform
import sys
from typing import Any


def describe() -> dict[str, Any]:
    model = ""
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kib = 0
    try:
        for line in pathlib.Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    except OSError:
        pass
    virtualized = ""
    try:
        if "hypervisor" in pathlib.Path("/proc/cpuinfo").read_text():
            virtualized = "yes (hypervisor flag)"
    except OSError:
        pass
    import numpy

    return {
        "cpu_model": model,
        "cpus": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "virtualized": virtualized or "no",
        "python": sys.version.split()[0],
        "numpy": numpy.__version__,
        "hostname": platform.node(),
    }


def rss_bytes(pid: int | str = "self") -> int:
    """Resident memory of process ``pid`` (this one by default), from /proc/<pid>/statm."""
    pages = int(pathlib.Path(f"/proc/{pid}/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")
