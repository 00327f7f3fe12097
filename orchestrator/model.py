"""What the orchestrator manages: nodes, the module each kind runs, start and stop order."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Kind(enum.StrEnum):
    ROUTER = "router"
    CP = "cp"
    DP = "dp"
    EMULATOR = "emulator"
    SERVER = "server"


MODULES: dict[Kind, str] = {
    Kind.ROUTER: "vnf.router.main",
    Kind.CP: "control_plane.main",
    Kind.DP: "data_plane.main",
    Kind.EMULATOR: "vnf.emulator.main",
}

# Start the core first (routes), then the CPs the DPs connect to, then the DPs, then clients.
START_ORDER = (Kind.ROUTER, Kind.CP, Kind.DP, Kind.EMULATOR)
# Stop the CPs first while DPs and clients still run: sessions end with PADT, final counters
# come back from the DPs and accounting stops are written. Then the rest.
STOP_ORDER = (Kind.CP, Kind.EMULATOR, Kind.DP, Kind.ROUTER)


@dataclass(frozen=True, slots=True)
class NodeSpec:
    name: str
    kind: Kind
    role: str
    site: str
    netns: str
    mgmt_ip: str

    @property
    def module(self) -> str:
        return MODULES[self.kind]

    @property
    def has_process(self) -> bool:
        return self.kind in MODULES


def start_sequence(nodes: list[NodeSpec]) -> list[NodeSpec]:
    return sorted((n for n in nodes if n.has_process), key=lambda n: START_ORDER.index(n.kind))


def stop_sequence(nodes: list[NodeSpec]) -> list[list[NodeSpec]]:
    """Stages of nodes that may stop together, in order."""
    stages = []
    for kind in STOP_ORDER:
        stage = [n for n in nodes if n.kind is kind]
        if stage:
            stages.append(stage)
    return stages
