"""gRPC clients the CLI uses to reach a running lab's nodes over the management network."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc

from vnf.adapters import grpc_server
from vnf.api import dataplane_admin_pb2_grpc, emulator_pb2_grpc, management_pb2_grpc
from vnf.config import Endpoint
from vnf.errors import NotFound
from vnf.lab.adapters.state import LabState, NodeRecord, StateStore


@dataclass
class Node:
    record: NodeRecord
    channel: grpc.Channel

    @property
    def name(self) -> str:
        return self.record.name


class LabClient:
    """Channels to the lab's nodes, opened lazily, closed on exit."""

    def __init__(self, store: StateStore, lab: str) -> None:
        self.store = store
        self.lab = lab
        self.state: LabState = store.load(lab)
        self._channels: dict[str, grpc.Channel] = {}

    def __enter__(self) -> LabClient:
        return self

    def __exit__(self, *exc: object) -> None:
        for channel in self._channels.values():
            channel.close()

    def nodes(self, kind: str) -> list[NodeRecord]:
        return [n for n in self.state.nodes if n.kind == kind]

    def channel(self, node: NodeRecord) -> grpc.Channel:
        channel = self._channels.get(node.name)
        if channel is None:
            channel = grpc_server.sync_channel(Endpoint(node.mgmt_ip).grpc)
            self._channels[node.name] = channel
        return channel

    def active_cp(self) -> NodeRecord:
        cps = self.nodes("cp")
        if not cps:
            raise NotFound(f"lab {self.lab} has no control plane")
        for cp in cps:
            if cp.role == "active":
                return cp
        return cps[0]

    def management(self) -> Any:
        return management_pb2_grpc.ManagementStub(self.channel(self.active_cp()))

    def dp_admin(self, node: NodeRecord) -> Any:
        return dataplane_admin_pb2_grpc.DataPlaneAdminStub(self.channel(node))

    def emulator(self, node: NodeRecord) -> Any:
        return emulator_pb2_grpc.EmulatorStub(self.channel(node))
