"""Orchestrator reconcile: start order, restart with backoff, crash loops left failed."""

from __future__ import annotations

from orchestrator.model import Kind, NodeSpec, stop_sequence
from orchestrator.reconcile import Observed, backoff_s, reconcile

NODES = [
    NodeSpec("emu", Kind.EMULATOR, "", "s", "ns-e", "198.19.0.5"),
    NodeSpec("dp1", Kind.DP, "active", "s", "ns-d", "198.19.0.4"),
    NodeSpec("cp", Kind.CP, "active", "", "ns-c", "198.19.0.3"),
    NodeSpec("core", Kind.ROUTER, "", "", "ns-r", "198.19.0.2"),
    NodeSpec("srv1", Kind.SERVER, "", "", "ns-s", ""),
]


def test_first_start_in_dependency_order_and_servers_have_no_process() -> None:
    actions = reconcile(NODES, {}, now=0.0)
    assert [a.node.name for a in actions] == ["core", "cp", "dp1", "emu"]
    assert not any(a.restart for a in actions)


def test_running_nodes_are_left_alone() -> None:
    observed = {n.name: Observed(running=True) for n in NODES}
    assert reconcile(NODES, observed, now=10.0) == []


def test_first_restart_is_immediate_then_backoff_then_a_crash_loop_is_left_failed() -> None:
    observed = {n.name: Observed(running=True) for n in NODES}
    dp = observed["dp1"]
    dp.running, dp.exit_code, dp.exited_at = False, 1, 100.0
    dp.recent_failures = [100.0]
    (action,) = reconcile(NODES, observed, now=100.0)  # first crash: no delay
    assert action.node.name == "dp1" and action.restart
    dp.recent_failures = [90.0, 100.0]
    assert reconcile(NODES, observed, now=100.4) == []  # second: 0.5 s
    assert [a.node.name for a in reconcile(NODES, observed, now=100.5)] == ["dp1"]
    dp.recent_failures = [80.0, 90.0, 100.0]
    assert reconcile(NODES, observed, now=100.9) == []  # third: 1 s
    assert [a.node.name for a in reconcile(NODES, observed, now=101.0)] == ["dp1"]
    dp.recent_failures = [100.0, 101.0, 102.0, 103.0, 104.0]
    dp.exited_at = 104.0
    assert reconcile(NODES, observed, now=500.0 - 300.0 + 104.0 - 0.1) == []


def test_backoff_policy() -> None:
    assert [backoff_s(n) for n in range(8)] == [0.0, 0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0]
    assert backoff_s(20) == 30.0


def test_a_killed_node_restarts_at_once_and_is_not_a_crash() -> None:
    observed = {n.name: Observed(running=True) for n in NODES}
    dp = observed["dp1"]
    # Many earlier crashes would be a crash loop; a kill on purpose is not held against it.
    dp.recent_failures = [100.0, 101.0, 102.0, 103.0, 104.0]
    dp.running, dp.exit_code, dp.exited_at, dp.killed_on_purpose = False, -9, 105.0, True
    (action,) = reconcile(NODES, observed, now=105.0)
    assert action.node.name == "dp1" and action.restart


def test_a_held_node_stays_down_and_a_frozen_one_is_running() -> None:
    observed = {n.name: Observed(running=True) for n in NODES}
    observed["cp"] = Observed(running=False, exit_code=-9, killed_on_purpose=True, held=True)
    observed["dp1"].frozen = True
    assert reconcile(NODES, observed, now=1000.0) == []
    assert observed["cp"].state == "held"
    assert observed["dp1"].state == "frozen"
    observed["cp"].held = False  # repaired
    assert [a.node.name for a in reconcile(NODES, observed, now=1000.0)] == ["cp"]


def test_stopped_on_purpose_is_not_restarted() -> None:
    observed = {n.name: Observed(running=True) for n in NODES}
    observed["cp"] = Observed(running=False, exit_code=0, stopped_on_purpose=True)
    assert reconcile(NODES, observed, now=1000.0) == []


def test_stop_order_puts_the_control_plane_first() -> None:
    stages = stop_sequence(NODES)
    assert [[n.name for n in stage] for stage in stages] == [
        ["cp"],
        ["emu"],
        ["dp1"],
        ["core"],
        ["srv1"],
    ][:4]
