"""Integration fixtures: real labs in real namespaces, removed exactly afterwards.

Each test session uses its own runtime and data directories (never /run/vnf or /var/lib/vnf)
and lab names with a random suffix, and checks that no namespace or root link of its labs is
left behind.
"""

from __future__ import annotations

import os
import pathlib
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from pyroute2 import netns

from vnf.lab.adapters import lifecycle
from vnf.lab.adapters.clients import LabClient
from vnf.lab.adapters.state import StateStore
from vnf.lab.topology import parse_topology


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="integration tests need root (network namespaces)")
    for item in items:
        if "integration" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def isolated_dirs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[pathlib.Path]:
    root = tmp_path_factory.mktemp("vnf")
    old = {k: os.environ.get(k) for k in ("VNF_RUNTIME_DIR", "VNF_DATA_DIR")}
    os.environ["VNF_RUNTIME_DIR"] = str(root / "run")
    os.environ["VNF_DATA_DIR"] = str(root / "data")
    yield root
    for key, value in old.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def lab_name(prefix: str = "t") -> str:
    return f"{prefix}{secrets.token_hex(3)}"


def assert_gone(name: str, index: int) -> None:
    leftovers = [n for n in netns.listnetns() if n.startswith(f"vnf-{name}-")]
    assert not leftovers, leftovers
    assert not pathlib.Path(f"/sys/class/net/vnf{index}-mgmt").exists()


class RunningLab:
    def __init__(self, name: str, topology: dict[str, Any]) -> None:
        self.name = name
        self.topology = topology
        self.store = StateStore()

    def client(self) -> LabClient:
        return LabClient(self.store, self.name)

    @property
    def state(self) -> Any:
        return self.store.load(self.name)


def bring_up(topology: dict[str, Any]) -> RunningLab:
    topo = parse_topology(topology)
    lifecycle.up(topo, topology, "", timeout_s=60.0)
    return RunningLab(topo.name, topology)


@pytest.fixture(scope="module")
def lab() -> Iterator[RunningLab]:
    """A small default-shaped lab: the CP pair, 2 active DPs + 1 standby, 20 subscribers."""
    name = lab_name()
    topology = {
        "name": name,
        "control_plane": {"interim_interval_s": 2},
        "sites": [
            {
                "name": "site1",
                "subscribers": {"pppoe": 20},
                "modems": {"count": 0},
                "dial": {"autostart": False},
            }
        ],
    }
    running = bring_up(topology)
    index = running.state.index
    try:
        yield running
    finally:
        lifecycle.down(name, cleanup=True)
        assert_gone(name, index)
