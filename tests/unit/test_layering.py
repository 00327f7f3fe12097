"""Only adapters/, io/ and main.py modules may do I/O (STYLE.md): every other module of our
packages imports no socket, event loop, RPC, netlink, capture, metrics, clock or process
library. A reviewer can then tell from a path whether a file may touch the outside world."""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PACKAGES = ("vnf", "control_plane", "data_plane", "orchestrator")
FORBIDDEN = {
    "socket",
    "asyncio",
    "grpc",
    "grpc_health",
    "grpc_reflection",
    "pyroute2",
    "scapy",
    "prometheus_client",
    "time",
    "subprocess",
    "threading",
    "sqlite3",
    "select",
    "signal",
    "mmap",
    "ctypes",
}


def _pure_modules() -> list[pathlib.Path]:
    out = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT)
            parts = set(rel.parts[:-1])
            if parts & {"adapters", "io"} or rel.name == "main.py" or "api" in rel.parts:
                continue
            out.append(path)
    return out


def _imports(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_there_are_pure_modules_to_check() -> None:
    names = {p.name for p in _pure_modules()}
    assert {"service.py", "fastpath.py", "ppp_session.py", "reconcile.py", "plan.py"} <= names


@pytest.mark.parametrize("path", _pure_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_pure_module_does_no_io(path: pathlib.Path) -> None:
    bad = _imports(path) & FORBIDDEN
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}: move that to adapters/"
