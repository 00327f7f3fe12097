"""gRPC clients the CLI uses to reach a running lab's nodes over the management network."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc

from vnf.adapters import grpc_server
from vnf.api import (
    common_pb2,
    dataplane_admin_pb2_grpc,
    emulator_pb2_grpc,
    management_pb2_grpc,
)
from vnf.config import Endpoint
from vnf.errors import NotFound
from vnf.lab.adapters.state import LabState, NodeRecord, StateStore

STATUS_TIMEOUT_S = 2.0


@dataclass
class CpView:
    """One CP node and what its GetStatus said (``status`` None: ``error`` says why)."""

    node: NodeRecord
    status: Any
    error: str

    @property
    def role(self) -> str:
        return str(self.status.role) if self.status is not None else "unreachable"


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
        self._active: NodeRecord | None = None

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

    def cp_statuses(self, timeout_s: float = STATUS_TIMEOUT_S) -> list[CpView]:
        """Every CP node's Management.GetStatus, asked in parallel (None: did not answer)."""
        cps = self.nodes("cp")
        calls = [
            (cp, self.management_of(cp).GetStatus.future(common_pb2.Empty(), timeout=timeout_s))
            for cp in cps
        ]
        views = []
        for cp, call in calls:
            try:
                views.append(CpView(cp, call.result(), ""))
            except grpc.RpcError as exc:
                code = exc.code() if hasattr(exc, "code") else None
                views.append(CpView(cp, None, code.name.lower() if code else str(exc)))
        return views

    def forget_active(self) -> None:
        """Ask again which CP is active on the next call (after a takeover)."""
        self._active = None

    def active_cp(self) -> NodeRecord:
        """The CP that reports itself active (the highest epoch if several do), else the
        first that answers, else the first CP. Asked once per client (see forget_active)."""
        if self._active is not None:
            return self._active
        cps = self.nodes("cp")
        if not cps:
            raise NotFound(f"lab {self.lab} has no control plane")
        chosen = cps[0]
        if len(cps) > 1:
            views = self.cp_statuses()
            active = [v for v in views if v.status is not None and v.status.role == "active"]
            answering = [v for v in views if v.status is not None]
            if active:
                chosen = max(active, key=lambda v: v.status.epoch if v.status else 0).node
            elif answering:
                chosen = answering[0].node
        self._active = chosen
        return chosen

    def management(self) -> Any:
        """Management stub of the active CP."""
        return self.management_of(self.active_cp())

    def management_of(self, node: NodeRecord) -> Any:
        return management_pb2_grpc.ManagementStub(self.channel(node))

    def dp_admin(self, node: NodeRecord) -> Any:
        return dataplane_admin_pb2_grpc.DataPlaneAdminStub(self.channel(node))

    def emulator(self, node: NodeRecord) -> Any:
        return emulator_pb2_grpc.EmulatorStub(self.channel(node))
