"""Process start-up shared by every node: enter its namespace, log JSON lines, stop on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import pathlib
import signal
import sys
import time
from typing import Any

from pyroute2 import netns


def enter_netns(name: str) -> None:
    """Move this process into network namespace ``name``.

    Must run before any thread starts (gRPC, metrics): ``setns`` changes the calling thread,
    and threads started afterwards inherit it. Sockets created later live in that namespace.
    """
    if name:
        netns.setns(name, flags=0)


class JsonFormatter(logging.Formatter):
    def __init__(self, node: str) -> None:
        super().__init__()
        self.node = node

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 6),
            "level": record.levelname.lower(),
            "node": self.node,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def setup_logging(node: str, path: str, level: int = logging.INFO) -> logging.Logger:
    """JSON lines to ``path`` (one file per node), plus stderr for warnings and worse."""
    root = logging.getLogger()
    root.handlers.clear()
    root.setLevel(level)
    formatter = JsonFormatter(node)
    if path:
        pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.FileHandler(path)
        handler.setFormatter(formatter)
        root.addHandler(handler)
    err = logging.StreamHandler(sys.stderr)
    err.setLevel(logging.WARNING)
    err.setFormatter(formatter)
    root.addHandler(err)
    logging.getLogger("grpc").setLevel(logging.WARNING)
    return logging.getLogger(node)


def install_stop_signals(loop: asyncio.AbstractEventLoop) -> asyncio.Event:
    """An event set on SIGTERM or SIGINT: the node then shuts down cleanly."""
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


def monotonic() -> float:
    return time.monotonic()


def pin_to_cpu(cpu: int | None) -> None:
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})
