"""Fault requests: what the orchestrator accepts, and how mistakes are named."""

from __future__ import annotations

import pytest

from orchestrator.faults import ActiveFault, Fault, FaultBook, FaultKind
from orchestrator.model import Kind, NodeSpec
from vnf.errors import ConfigError, Conflict, NotFound

NODES = [
    NodeSpec("cp-a", Kind.CP, "active", "", "ns-a", "198.19.0.50"),
    NodeSpec("dp1", Kind.DP, "active", "s", "ns-d", "198.19.0.101"),
    NodeSpec("srv1", Kind.SERVER, "server", "", "ns-s", ""),
]


def _book() -> FaultBook:
    return FaultBook(NODES)


@pytest.mark.parametrize(
    ("fault", "error", "words"),
    [
        (Fault(FaultKind.KILL, "ghost"), NotFound, "no node named 'ghost'"),
        (Fault(FaultKind.KILL, ""), ConfigError, "name the node"),
        (Fault(FaultKind.KILL, "srv1"), ConfigError, "without a process"),
        (Fault(FaultKind.FREEZE, "dp1", peer="cp-a"), ConfigError, "only a LINK"),
        (Fault(FaultKind.LINK, "dp1"), ConfigError, "needs a node and a peer"),
        (Fault(FaultKind.LINK, "dp1", "dp1"), ConfigError, "from itself"),
        (Fault(FaultKind.LINK, "dp1", "srv1"), ConfigError, "management network"),
        (Fault(FaultKind.LINK, "dp1", "ghost"), NotFound, "ghost"),
        (Fault(FaultKind.LINK, "dp1", "cp-a", hold=True), ConfigError, "KILL faults only"),
    ],
)
def test_bad_fail_requests_name_the_problem(
    fault: Fault, error: type[Exception], words: str
) -> None:
    with pytest.raises(error) as info:
        _book().check_fail(fault, running=True)
    assert words in str(info.value)
    assert "\n" not in str(info.value)


def test_only_a_running_node_can_be_killed_or_frozen() -> None:
    book = _book()
    with pytest.raises(Conflict, match="not running"):
        book.check_fail(Fault(FaultKind.KILL, "dp1"), running=False)
    book.add(ActiveFault(FaultKind.KILL, "dp1", pid=7))
    with pytest.raises(Conflict, match="held down"):
        book.check_fail(Fault(FaultKind.FREEZE, "dp1"), running=False)


def test_freeze_twice_and_cut_twice_are_conflicts() -> None:
    book = _book()
    node, peer = book.check_fail(Fault(FaultKind.LINK, "dp1", "cp-a"), running=True)
    assert (node.name, peer and peer.name) == ("dp1", "cp-a")
    book.add(ActiveFault(FaultKind.LINK, "dp1", "cp-a"))
    with pytest.raises(Conflict, match="already cut"):
        book.check_fail(Fault(FaultKind.LINK, "cp-a", "dp1"), running=True)  # either order
    book.add(ActiveFault(FaultKind.FREEZE, "cp-a", pid=9))
    assert book.frozen("cp-a") and not book.held("cp-a")
    with pytest.raises(Conflict, match="already frozen"):
        book.check_fail(Fault(FaultKind.FREEZE, "cp-a"), running=True)


def test_repair_finds_the_active_fault_or_says_nothing_is_failed() -> None:
    book = _book()
    for fault, words in (
        (Fault(FaultKind.KILL, "dp1"), "not held down"),
        (Fault(FaultKind.FREEZE, "dp1"), "not frozen"),
        (Fault(FaultKind.LINK, "dp1", "cp-a"), "is not cut"),
    ):
        with pytest.raises(Conflict, match=words):
            book.check_repair(fault)
    cut = ActiveFault(FaultKind.LINK, "dp1", "cp-a", at_wall=5.0)
    book.add(cut)
    assert book.check_repair(Fault(FaultKind.LINK, "cp-a", "dp1")) is cut
    book.remove(cut)
    assert book.active == []
    with pytest.raises(NotFound):
        book.check_repair(Fault(FaultKind.FREEZE, "ghost"))


def test_a_dead_node_forgets_its_freeze_and_faults_round_trip_as_json() -> None:
    book = _book()
    book.add(ActiveFault(FaultKind.FREEZE, "dp1", pid=3, at_wall=1.5, detail="SIGSTOP to pid 3"))
    book.add(ActiveFault(FaultKind.LINK, "dp1", "cp-a"))
    rows = book.to_json()
    assert rows[0]["kind"] == "freeze" and rows[1]["peer"] == "cp-a"
    assert [ActiveFault.from_json(r) for r in rows] == book.active
    assert len(book.forget_node("dp1", (FaultKind.FREEZE,))) == 1
    assert [f.kind for f in book.active] == [FaultKind.LINK]
