"""Faults injected on purpose (pure): which requests are valid, and the book of active faults.

Three kinds, applied for real by the orchestrator's adapters:

* ``KILL`` — SIGKILL the node's recorded process. It is restarted at once (a kill is not a
  crash: it neither waits for backoff nor counts toward the crash-loop limit), unless
  ``hold``: then it stays down, listed here, until Repair(KILL) lets it start.
* ``FREEZE`` — SIGSTOP; Repair sends SIGCONT. A frozen node is neither health-checked nor
  restarted while it is frozen.
* ``LINK`` — cut the management path between two nodes (blackhole routes to each other's
  management address in both namespaces); Repair removes exactly those routes.

Only held kills, freezes and link cuts are *active* faults (a kill without hold is over once
the node is restarted). Mistakes raise: :class:`~vnf.errors.NotFound` for an unknown node,
:class:`~vnf.errors.ConfigError` for a request that cannot make sense (LINK without a peer),
:class:`~vnf.errors.Conflict` for one the current state does not allow (repairing what is not
failed, freezing twice).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from orchestrator.model import NodeSpec
from vnf.errors import ConfigError, Conflict, NotFound


class FaultKind(enum.StrEnum):
    KILL = "kill"
    FREEZE = "freeze"
    LINK = "link"


@dataclass(frozen=True, slots=True)
class Fault:
    """A request to fail (or repair) something."""

    kind: FaultKind
    node: str
    peer: str = ""
    hold: bool = False


@dataclass(frozen=True, slots=True)
class ActiveFault:
    kind: FaultKind
    node: str
    peer: str = ""
    pid: int = 0
    at_wall: float = 0.0
    detail: str = ""

    def matches(self, kind: FaultKind, node: str, peer: str = "") -> bool:
        if self.kind is not kind:
            return False
        if kind is FaultKind.LINK:
            return {self.node, self.peer} == {node, peer}
        return self.node == node

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "kind": str(self.kind)}

    @staticmethod
    def from_json(data: dict[str, Any]) -> ActiveFault:
        return ActiveFault(**{**data, "kind": FaultKind(data["kind"])})


class FaultBook:
    """The lab's active faults, and the checks a Fail or Repair request must pass."""

    def __init__(self, nodes: Iterable[NodeSpec]) -> None:
        self.nodes = {n.name: n for n in nodes}
        self.active: list[ActiveFault] = []

    # -- queries ---------------------------------------------------------------------------

    def find(self, kind: FaultKind, node: str, peer: str = "") -> ActiveFault | None:
        for fault in self.active:
            if fault.matches(kind, node, peer):
                return fault
        return None

    def held(self, node: str) -> bool:
        return self.find(FaultKind.KILL, node) is not None

    def frozen(self, node: str) -> bool:
        return self.find(FaultKind.FREEZE, node) is not None

    def node(self, name: str) -> NodeSpec:
        spec = self.nodes.get(name)
        if spec is None:
            known = ", ".join(sorted(self.nodes))
            raise NotFound(f"no node named {name!r} in this lab (nodes: {known})")
        return spec

    # -- checks ----------------------------------------------------------------------------

    def check_fail(self, fault: Fault, running: bool) -> tuple[NodeSpec, NodeSpec | None]:
        """The node (and peer, for LINK) a valid Fail acts on. ``running``: the node's process
        is alive now."""
        if fault.kind is FaultKind.LINK:
            node, peer = self._link_ends(fault)
            if self.find(FaultKind.LINK, node.name, peer.name) is not None:
                raise Conflict(f"the link {node.name} <-> {peer.name} is already cut")
            return node, peer
        node = self._process_node(fault)
        if fault.peer:
            raise ConfigError("peer", f"only a LINK fault names a peer, not {fault.kind}")
        if fault.kind is FaultKind.FREEZE and self.frozen(node.name):
            raise Conflict(f"{node.name} is already frozen")
        if not running:
            why = " (held down: vnf repair lets it start)" if self.held(node.name) else ""
            raise Conflict(f"{node.name} is not running{why}")
        return node, None

    def check_repair(self, fault: Fault) -> ActiveFault:
        """The active fault a valid Repair undoes."""
        if fault.kind is FaultKind.LINK:
            node, peer = self._link_ends(fault)
            found = self.find(FaultKind.LINK, node.name, peer.name)
            if found is None:
                raise Conflict(f"the link {node.name} <-> {peer.name} is not cut")
            return found
        node = self._process_node(fault)
        found = self.find(fault.kind, node.name)
        if found is None:
            state = "held down" if fault.kind is FaultKind.KILL else "frozen"
            raise Conflict(f"{node.name} is not {state}: nothing to repair")
        return found

    def _process_node(self, fault: Fault) -> NodeSpec:
        if not fault.node:
            raise ConfigError("node", "name the node to fail")
        node = self.node(fault.node)
        if not node.has_process:
            raise ConfigError("node", f"{node.name} is a {node.kind} without a process")
        return node

    def _link_ends(self, fault: Fault) -> tuple[NodeSpec, NodeSpec]:
        if not fault.node or not fault.peer:
            raise ConfigError("peer", "a LINK fault needs a node and a peer")
        if fault.hold:
            raise ConfigError("hold", "hold applies to KILL faults only")
        node, peer = self.node(fault.node), self.node(fault.peer)
        if node.name == peer.name:
            raise ConfigError("peer", f"cannot cut {node.name} from itself")
        for end in (node, peer):
            if not end.mgmt_ip:
                raise ConfigError("node", f"{end.name} is not on the management network")
        return node, peer

    # -- changes ---------------------------------------------------------------------------

    def add(self, fault: ActiveFault) -> None:
        self.active.append(fault)

    def remove(self, fault: ActiveFault) -> None:
        self.active.remove(fault)

    def forget_node(self, name: str, kinds: tuple[FaultKind, ...]) -> list[ActiveFault]:
        """Drop ``name``'s faults of these kinds (its process went away); returns them."""
        gone = [f for f in self.active if f.node == name and f.kind in kinds]
        self.active = [f for f in self.active if f not in gone]
        return gone

    def to_json(self) -> list[dict[str, Any]]:
        return [f.to_json() for f in self.active]
