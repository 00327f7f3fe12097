"""Process start-up shared by every node: enter its namespace, log JSON lines, stop on SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import pathlib
import signal
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, TypeVar

from pyroute2 import netns

from vnf import config as vnf_config
from vnf.errors import ConfigError

T = TypeVar("T")


def in_netns(name: str | None, work: Callable[[], T]) -> T:
    """Run ``work`` in a helper thread that entered network namespace ``name`` (None: ours).

    The process's own namespace is untouched. What ``work`` creates there stays there: a
    socket keeps its namespace, /proc/sys/net is the namespace's own. Its exception, if any,
    is raised here."""
    result: list[T] = []
    error: list[BaseException] = []

    def run() -> None:
        try:
            if name:
                netns.setns(name, flags=0)
            result.append(work())
        except BaseException as exc:  # handed to the caller's thread below
            error.append(exc)

    thread = threading.Thread(target=run, name=f"in-{name or 'self'}")
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


def write_sysctl(name: str | None, key: str, value: str) -> None:
    """Write /proc/sys/<key> as seen from namespace ``name``."""
    try:
        in_netns(name, lambda: pathlib.Path("/proc/sys", key).write_text(value))
    except (OSError, ValueError) as exc:
        raise OSError(f"sysctl {key}={value} in {name or 'root'}: {exc}") from None


class DeadlineTimer:
    """One pending ``loop.call_at`` for an engine's earliest deadline.

    ``arm(deadline)`` after every interaction: it schedules ``fire`` at the deadline unless
    an earlier or equal call is already pending (the callback re-arms after it runs)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, fire: Callable[[], None]) -> None:
        self.loop = loop
        self.fire = fire
        self._handle: asyncio.TimerHandle | None = None
        self._at: float | None = None

    def arm(self, deadline: float | None) -> None:
        if deadline is None:
            return
        if self._handle is not None and self._at is not None and self._at <= deadline:
            return
        if self._handle is not None:
            self._handle.cancel()
        self._at = deadline
        self._handle = self.loop.call_at(deadline, self._run)

    def _run(self) -> None:
        self._handle = None
        self._at = None
        self.fire()


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


class NodeConfig(Protocol):
    """What every node's configuration has (read-only: the configs are frozen)."""

    @property
    def name(self) -> str: ...

    @property
    def netns(self) -> str: ...

    @property
    def log_path(self) -> str: ...


C = TypeVar("C", bound=NodeConfig)


def run_node(
    prog: str,
    description: str | None,
    config_type: type[C],
    serve: Callable[[C], Coroutine[Any, Any, None]],
    argv: list[str] | None = None,
    before_loop: Callable[[C], None] | None = None,
) -> int:
    """The ``main()`` of every node process: ``--config FILE`` → load → enter the node's
    namespace → JSON logs → run ``serve`` until it returns. A broken config file is one line
    on stderr and exit 2; a start-up OSError (address in use, no such interface) is logged
    and exit 1. ``before_loop`` runs in the namespace before the event loop starts (sockets
    that must be made in another namespace, while the process is still single-threaded)."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--config", required=True, help="node configuration (JSON)")
    args = parser.parse_args(argv)
    try:
        config = vnf_config.loads(config_type, pathlib.Path(args.config).read_text())
    except (OSError, ConfigError) as exc:
        print(f"{prog}: {args.config}: {exc}", file=sys.stderr)
        return 2
    enter_netns(config.netns)
    log = setup_logging(config.name, config.log_path)
    try:
        if before_loop is not None:
            before_loop(config)
        asyncio.run(serve(config))
    except OSError as exc:
        log.error("cannot start: %s", exc)
        return 1
    return 0
