"""Fault injection on a real lab: kill -9 (held or restarted), SIGSTOP, a cut management path,
and `vnf lab down` afterwards. One CP here: the pair's takeover is not what these test."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.integration.conftest import RunningLab, assert_gone, bring_up, lab_name
from tests.integration.helpers import one_line_error, run_cli, wait_for
from vnf.adapters.process import in_netns
from vnf.config import GRPC_PORT
from vnf.lab.adapters import lifecycle, netlink
from vnf.lab.adapters.state import process_starttime

pytestmark = pytest.mark.integration

SPARE = "dp-site1-2"  # the standby DP: killing it disturbs no session


@pytest.fixture(scope="module")
def lab() -> Iterator[RunningLab]:
    name = lab_name("f")
    running = bring_up(
        {
            "name": name,
            "control_plane": {"nodes": 1},
            "sites": [
                {
                    "name": "site1",
                    "data_plane": {"active": 1, "standby": 1},
                    "groups": 1,
                    "subscribers": {"pppoe": 2},
                    "modems": {"count": 0},
                    "dial": {"autostart": False},
                }
            ],
        }
    )
    index = running.state.index
    try:
        yield running
    finally:
        if name in running.store.labs():
            lifecycle.down(name, cleanup=True)
        assert_gone(name, index)


def _node(lab: RunningLab, name: str) -> Any:
    status = lifecycle.lab_status(lab.store, lab.name)
    (node,) = [n for n in status.nodes if n.name == name]
    return node


def _record(lab: RunningLab, name: str) -> Any:
    (record,) = [n for n in lab.state.nodes if n.name == name]
    return record


def _serving(lab: RunningLab, name: str) -> bool:
    node = _node(lab, name)
    return bool(node.state == "running" and node.health == "SERVING")


def _health(address: str, timeout: float = 0.5) -> str:
    """The node's own gRPC health answer, or the error code when it does not answer."""
    with grpc.insecure_channel(address) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=timeout
            )
        except grpc.RpcError as exc:
            return str(exc.code().name)
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


def _connects(netns: str, address: str, port: int = GRPC_PORT) -> bool:
    """A TCP connect from inside ``netns`` succeeds within half a second."""

    def attempt() -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.5)
            try:
                sock.connect((address, port))
            except OSError:
                return False
            return True

    return in_netns(netns, attempt)


def _faults(lab: RunningLab) -> list[dict[str, Any]]:
    result = run_cli(lab.name, "lab", "status", "-o", "json")
    assert result.exit_code == 0, result.output
    faults: list[dict[str, Any]] = json.loads(result.output)["faults"]
    return faults


def test_kill_with_hold_keeps_the_node_down_until_repair(lab: RunningLab) -> None:
    before = _node(lab, SPARE)
    result = run_cli(lab.name, "fail", "dp", SPARE, "--hold", "--wait", "0")
    assert result.exit_code == 0, result.output
    assert f"killed {SPARE}" in result.output and "held down" in result.output
    assert process_starttime(before.pid) is None  # that very process is gone
    held = _node(lab, SPARE)
    assert (held.state, held.pid) == ("held", 0)
    assert [(f["fault"], f["node"]) for f in _faults(lab)] == [("kill", SPARE)]
    assert "kill" in run_cli(lab.name, "lab", "status").output
    # Still down two reconcile ticks later (by the orchestrator's own clock).
    uptime = lifecycle.lab_status(lab.store, lab.name).uptime_s
    wait_for(lambda: lifecycle.lab_status(lab.store, lab.name).uptime_s > uptime + 1.0)
    assert _node(lab, SPARE).state == "held"
    assert "held down" in one_line_error(run_cli(lab.name, "fail", "dp", SPARE, "--wait", "0"))

    repaired = run_cli(lab.name, "repair", "dp", SPARE)
    assert repaired.exit_code == 0, repaired.output
    assert "restarted as pid" in repaired.output
    wait_for(lambda: _serving(lab, SPARE), what=f"{SPARE} to serve again")
    assert _node(lab, SPARE).pid not in (0, before.pid)
    assert _faults(lab) == []
    assert "not held down" in one_line_error(run_cli(lab.name, "repair", "dp", SPARE))


def test_kill_without_hold_is_restarted_at_once(lab: RunningLab) -> None:
    before = _node(lab, SPARE)
    result = run_cli(lab.name, "fail", "node", SPARE, "--wait", "0")
    assert result.exit_code == 0, result.output
    assert "restarting" in result.output
    after = wait_for(
        lambda: (n := _node(lab, SPARE)).pid not in (0, before.pid) and n,
        timeout=5.0,
        what="the restart",
    )
    assert after.restarts == before.restarts + 1
    wait_for(lambda: _serving(lab, SPARE), what=f"{SPARE} to serve again")
    assert _faults(lab) == []


def test_freeze_stops_answering_and_repair_resumes(lab: RunningLab) -> None:
    address = _node(lab, SPARE).grpc_address
    assert _health(address) == "SERVING"
    before = _node(lab, SPARE)
    result = run_cli(lab.name, "fail", "freeze", SPARE, "--wait", "0.3")
    assert result.exit_code == 0, result.output
    assert "SIGSTOP" in result.output
    assert "no takeover within 0.3 s: cp-a still active" in result.output
    assert _health(address) == "DEADLINE_EXCEEDED"
    frozen = _node(lab, SPARE)
    assert frozen.state == "frozen"
    # Not restarted, nor health-failed into a restart, while frozen.
    assert (frozen.pid, frozen.restarts) == (before.pid, before.restarts)
    assert [(f["fault"], f["node"], f["pid"]) for f in _faults(lab)] == [
        ("freeze", SPARE, before.pid)
    ]
    assert "already frozen" in one_line_error(run_cli(lab.name, "fail", "freeze", SPARE))

    repaired = run_cli(lab.name, "repair", "freeze", SPARE)
    assert repaired.exit_code == 0, repaired.output
    assert "SIGCONT" in repaired.output
    wait_for(lambda: _health(address) == "SERVING", what="health to answer again")
    wait_for(lambda: _serving(lab, SPARE), what="the orchestrator to see it serve")
    assert _node(lab, SPARE).pid == before.pid


def test_link_cut_drops_exactly_that_path_and_repair_restores_it(lab: RunningLab) -> None:
    dp, cp, emu = _record(lab, "dp-site1-1"), _record(lab, "cp-a"), _record(lab, "emu-site1")
    assert _connects(dp.netns, cp.mgmt_ip) and _connects(cp.netns, dp.mgmt_ip)
    result = run_cli(lab.name, "fail", "link", dp.name, cp.name, "--wait", "0")
    assert result.exit_code == 0, result.output
    assert not _connects(dp.netns, cp.mgmt_ip)  # dp -> cp
    assert not _connects(cp.netns, dp.mgmt_ip)  # cp -> dp
    assert _connects(emu.netns, cp.mgmt_ip)  # another pair still works
    assert _connects(dp.netns, emu.mgmt_ip)
    assert _health(f"{cp.mgmt_ip}:{GRPC_PORT}") == "SERVING"  # and the root namespace too
    assert netlink.fault_routes(dp.netns) == [f"{cp.mgmt_ip}/32"]
    assert netlink.fault_routes(cp.netns) == [f"{dp.mgmt_ip}/32"]
    assert [(f["fault"], f["node"], f["peer"]) for f in _faults(lab)] == [
        ("link", dp.name, cp.name)
    ]
    assert "already cut" in one_line_error(run_cli(lab.name, "fail", "link", cp.name, dp.name))

    repaired = run_cli(lab.name, "repair", "link", cp.name, dp.name)  # either order
    assert repaired.exit_code == 0, repaired.output
    assert netlink.fault_routes(dp.netns) == [] and netlink.fault_routes(cp.netns) == []
    assert _connects(dp.netns, cp.mgmt_ip) and _connects(cp.netns, dp.mgmt_ip)
    assert _faults(lab) == []


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("fail", "dp", "cp-a"), "no data-plane worker named 'cp-a'"),
        (("fail", "node", "ghost"), "no node named 'ghost'"),
        (("fail", "freeze", "srv1"), "without a process"),
        (("fail", "link", "dp-site1-1", "srv1"), "not on the management network"),
        (("fail", "link", "cp-a", "cp-a"), "from itself"),
        (("fail", "cp-standby"), "no control plane reports itself standby"),
        (("repair", "link", "dp-site1-1", "cp-a"), "is not cut"),
        (("repair", "freeze", "cp-a"), "not frozen"),
        (("repair", "cp-active"), "no control plane is held down"),
        (("switchover", "cp"), "single control plane"),
        (("move", "group", "1", "--to", "dp-ghost"), "no data-plane worker named 'dp-ghost'"),
    ],
)
def test_fault_mistakes_are_one_line(lab: RunningLab, args: tuple[str, ...], words: str) -> None:
    assert words in one_line_error(run_cli(lab.name, *args))


def test_lab_down_with_faults_in_place_removes_everything(lab: RunningLab) -> None:
    dp, cp = _record(lab, "dp-site1-1"), _record(lab, "cp-a")
    for args in (
        ("fail", "link", dp.name, cp.name, "--wait", "0"),
        ("fail", "freeze", "emu-site1", "--wait", "0"),
        ("fail", "dp", SPARE, "--hold", "--wait", "0"),
    ):
        result = run_cli(lab.name, *args)
        assert result.exit_code == 0, result.output
    assert len(_faults(lab)) == 3
    state = lab.state
    pids = [_node(lab, n.name).pid for n in state.nodes]
    result = run_cli(lab.name, "lab", "down", "--cleanup")
    assert result.exit_code == 0, result.output
    assert_gone(lab.name, state.index)
    assert lab.name not in lab.store.labs()
    assert [pid for pid in pids if pid and process_starttime(pid) is not None] == []
