"""Helpers for integration tests: wait on conditions, capture frames inside a namespace,
run the CLI in-process."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from click.testing import CliRunner, Result

import cli
from vnf.adapters.packet import open_packet_socket
from vnf.adapters.process import in_netns

T = TypeVar("T")


def wait_for(
    condition: Callable[[], T], timeout: float = 20.0, interval: float = 0.05, what: str = ""
) -> T:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout``."""
    end = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")
        time.sleep(interval)


class Capture:
    """Frames seen on an interface inside a namespace, collected by a background thread."""

    def __init__(self, namespace: str, ifname: str) -> None:
        self.sock: socket.socket = in_netns(
            namespace, lambda: open_packet_socket(ifname, ignore_outgoing=False)
        )
        self.frames: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import select

        while not self._stop.is_set():
            ready, _, _ = select.select([self.sock], [], [], 0.05)
            if not ready:
                continue
            with contextlib.suppress(BlockingIOError):
                while True:
                    self.frames.append(self.sock.recv(4096))

    def close(self) -> list[bytes]:
        self._stop.set()
        self._thread.join()
        self.sock.close()
        return self.frames


@contextlib.contextmanager
def capture(namespace: str, ifname: str) -> Iterator[Capture]:
    cap = Capture(namespace, ifname)
    try:
        yield cap
    finally:
        cap.close()


def run_cli(lab: str, *args: str) -> Result:
    return CliRunner().invoke(cli.main, ["--lab", lab, *args], catch_exceptions=False)


def run_cli_raw(*args: str) -> Result:
    return CliRunner().invoke(cli.main, list(args), catch_exceptions=False)


def one_line_error(result: Result) -> str:
    """The CLI's error contract: non-zero exit, one line on stderr, no traceback."""
    assert result.exit_code != 0, result.output
    text: str = result.stderr if hasattr(result, "stderr") else result.output
    lines = [line for line in text.strip().splitlines() if line]
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


def counters(stats_rows: list[dict[str, Any]], node: str, name: str, labels: str = "") -> int:
    return sum(
        int(r["value"])
        for r in stats_rows
        if r["node"] == node and r["counter"] == name and (not labels or r["labels"] == labels)
    )
