"""The CLI's error contract for the fault and maintenance commands: a user mistake is one line
on stderr and a non-zero exit, never a traceback (no lab needed: these fail before any RPC).
And what `vnf fail` prints from a takeover."""

from __future__ import annotations

import pathlib

import pytest
from click.testing import CliRunner, Result

import cli
from vnf.api import management_pb2
from vnf.console.format import fail_report
from vnf.lab.adapters.clients import CpView
from vnf.lab.adapters.faults import (
    CpSnapshot,
    FailOutcome,
    FaultResult,
    GapRow,
    TakeoverResult,
    _snapshot,
    describe_no_takeover,
    find_takeover,
)
from vnf.lab.adapters.state import NodeRecord


@pytest.fixture(autouse=True)
def no_labs(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VNF_RUNTIME_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("VNF_DATA_DIR", str(tmp_path / "data"))


def _run(*args: str) -> Result:
    return CliRunner().invoke(cli.main, list(args), catch_exceptions=False)


def _one_line(result: Result) -> str:
    assert result.exit_code != 0, result.output
    lines = [line for line in result.stderr.strip().splitlines() if line]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    return lines[0]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["fail", "bogus"], "No such command 'bogus'"),
        (["fail", "dp"], "Missing argument 'NAME'"),
        (["fail", "link", "cp-a"], "Missing argument 'PEER'"),
        (["fail", "freeze"], "Missing argument 'NODE'"),
        (["fail", "cp-active", "--wait", "-1"], "--wait"),
        (["fail", "cp-active", "--traffic-pps", "0"], "--traffic-pps"),
        (["fail", "dp", "dp-x", "--traffic-s", "3"], "--traffic-sessions need --traffic-pps"),
        (
            ["fail", "dp", "dp-x", "--traffic-sessions", "5"],
            "--traffic-sessions need --traffic-pps",
        ),
        (["fail", "link", "a", "b", "--hold"], "No such option '--hold'"),
        (["repair", "link", "cp-a"], "Missing argument 'PEER'"),
        (["repair", "dp"], "Missing argument 'NAME'"),
        (["move", "group", "x", "--to", "dp-site1-1"], "'x' is not a valid integer"),
        (["move", "group", "0", "--to", "dp-site1-1"], "GROUP"),
        (["move", "group", "1"], "Missing option '--to'"),
        (["switchover", "cp", "--timeout", "0"], "--timeout"),
        (["--bogus"], "No such option"),
    ],
)
def test_usage_mistakes_are_one_line_with_status_2(args: list[str], words: str) -> None:
    result = _run(*args)
    line = _one_line(result)
    assert result.exit_code == 2
    assert words in line


@pytest.mark.parametrize(
    "args",
    [
        ["fail", "cp-active"],
        ["fail", "dp", "dp-site1-1", "--hold"],
        ["fail", "link", "cp-a", "dp-site1-1"],
        ["repair", "freeze", "cp-a"],
        ["repair", "cp-standby"],
        ["switchover", "cp"],
        ["move", "group", "1", "--to", "dp-site1-3"],
        ["lab", "status"],
    ],
)
def test_without_a_lab_every_command_is_one_line(args: list[str]) -> None:
    assert "no lab is running" in _one_line(_run(*args))


def test_a_bare_group_prints_its_help() -> None:
    result = _run("fail")
    assert "vnf fail cp-active" in result.output and "freeze NODE" in result.output


# -- what a fail reports ---------------------------------------------------------------------


def _view(name: str, role: str, epoch: int, sessions: int, takeovers: list[dict]) -> CpView:  # type: ignore[type-arg]
    status = management_pb2.CpStatus(
        name=name,
        role=role,
        epoch=epoch,
        sessions=sessions,
        takeovers=[management_pb2.Takeover(**t) for t in takeovers],
    )
    return CpView(NodeRecord(name, "cp", "", "", f"ns-{name}", "198.19.0.50"), status, "")


def _down(name: str) -> CpView:
    return CpView(NodeRecord(name, "cp", "", "", f"ns-{name}", "198.19.0.51"), None, "unavailable")


def test_the_takeover_of_this_fault_is_the_one_stamped_after_it() -> None:
    old = {"kind": "cp_failover", "from_node": "cp-b", "to_node": "cp-a", "at_wall": 50.0}
    new = {
        "kind": "cp_failover",
        "from_node": "cp-a",
        "to_node": "cp-b",
        "at_wall": 100.2,
        "detection_ms": 251.0,
        "takeover_ms": 40.0,
        "sessions": 20,
        "epoch": 4,
    }
    views = [_down("cp-a"), _view("cp-b", "active", 4, 20, [old, new])]
    assert find_takeover(views[:1], 100.0) is None
    found = find_takeover(views, 100.0)
    assert found is not None
    view, takeover = found
    assert view.node.name == "cp-b" and takeover.to_node == "cp-b"
    assert find_takeover([_view("cp-b", "active", 4, 20, [old])], 100.0) is None


def test_no_takeover_says_what_the_status_shows() -> None:
    before = _snapshot([_view("cp-a", "active", 3, 20, []), _view("cp-b", "standby", 3, 0, [])])
    assert (before.active, before.sessions, before.epoch) == ("cp-a", 20, 3)
    after = _snapshot([_down("cp-a"), _view("cp-b", "standby", 3, 0, [])])
    text = describe_no_takeover(before, after, 10.0)
    assert text == "no takeover within 10 s: cp-a unreachable, cp-b still standby"


def test_fail_text_prints_times_sessions_and_gaps() -> None:
    outcome = FailOutcome(
        fault=FaultResult("kill", "cp-a", "", False, 1234, 1_700_000_000.25, "SIGKILL to pid 1234"),
        before=CpSnapshot({"cp-a": "active", "cp-b": "standby"}, "cp-a", 20, 3),
        takeover=TakeoverResult(
            True,
            "",
            kind="cp_failover",
            from_node="cp-a",
            to_node="cp-b",
            detection_ms=251.0,
            takeover_ms=40.5,
            carried=20,
            groups=4,
            epoch=4,
            active_cp="cp-b",
            sessions_before=20,
            sessions_after=20,
        ),
        traffic=[GapRow("upstream", 20, 1200, 1190, 10, 0.833, 300.0, 280.0, 345.0)],
        traffic_s=6.0,
        injected_after_s=2.0,
    )
    text = fail_report(outcome)
    assert "killed cp-a at" in text and "SIGKILL to pid 1234" in text
    assert "cp_failover cp-a -> cp-b: detection 251.0 ms, takeover 40.5 ms, epoch 4" in text
    assert "sessions kept: 20 of 20 on cp-b" in text
    assert "p99 flow gap ms" in text and "280.000" in text
    assert "max arrival gap ms" in text and "345.000" in text
    outcome.takeover = TakeoverResult(False, "no takeover within 10 s: cp-b still standby")
    outcome.traffic = []
    assert fail_report(outcome).splitlines()[-1] == "no takeover within 10 s: cp-b still standby"
