"""Lab lifecycle: down after a crash removes exactly what the lab made; bad input is one line."""

from __future__ import annotations

import os
import pathlib
import signal

import pytest
from pyroute2 import IPRoute, netns

from tests.integration.conftest import assert_gone, bring_up, lab_name
from tests.integration.helpers import one_line_error, run_cli, run_cli_raw, wait_for
from vnf.lab.adapters import lifecycle
from vnf.lab.adapters.state import StateStore
from vnf.lab.plan import plan_lab
from vnf.lab.topology import parse_topology

pytestmark = pytest.mark.integration

SMALL = {
    "control_plane": {},
    "sites": [
        {
            "name": "site1",
            "data_plane": {"active": 1, "standby": 0},
            "groups": 1,
            "subscribers": {"pppoe": 2},
            "modems": {"count": 0},
            "dial": {"autostart": False},
        }
    ],
}


def test_down_after_a_crash_removes_the_lab_and_nothing_else() -> None:
    name = lab_name("c")
    foreign = f"vnftest-foreign-{os.getpid()}"
    netns.create(foreign)
    try:
        lab = bring_up({"name": name, **SMALL})
        state = lab.state
        records = StateStore().processes(name)
        assert {r.name for r in records} >= {
            "orchestrator",
            "cp-a",
            "dp-site1-1",
            "emu-site1",
            "core",
        }
        # Crash everything: the orchestrator and every node, without any chance to clean up.
        for record in records:
            os.kill(record.pid, signal.SIGKILL)
        wait_for(lambda: not any(r.alive() for r in records), what="the processes to die")
        assert all(ns in netns.listnetns() for ns in state.namespaces)  # still there
        result = run_cli(name, "lab", "down", "--cleanup")
        assert result.exit_code == 0, result.output
        assert_gone(name, state.index)
        assert foreign in netns.listnetns()  # not ours: untouched
        assert name not in StateStore().labs()
        assert not pathlib.Path(state.data_dir).exists()
    finally:
        netns.remove(foreign)


def test_down_after_a_crash_in_the_middle_of_bring_up() -> None:
    """Namespaces are recorded before they exist: a bring-up killed half way is removable."""
    name = lab_name("h")
    topology = parse_topology({"name": name, **SMALL})
    store = StateStore()
    state = store.allocate(name, "/tmp/unused", "", {})
    plan = plan_lab(topology, state.index, "/tmp/unused", "00")
    # What realize() does for the first namespaces, then a "crash" before the fourth exists.
    for ns in plan.namespaces[:3]:
        state.namespaces.append(ns)
        store.save(state)
        netns.create(ns)
    state.namespaces.append(plan.namespaces[3])  # recorded, never created
    store.save(state)
    result = run_cli(name, "lab", "down")
    assert result.exit_code == 0, result.output
    assert_gone(name, state.index)


def test_two_labs_side_by_side_do_not_interfere() -> None:
    a, b = lab_name("a"), lab_name("b")
    lab_a = bring_up({"name": a, **SMALL})
    try:
        lab_b = bring_up({"name": b, **SMALL})
        try:
            assert lab_a.state.index != lab_b.state.index
            with IPRoute() as ipr:
                assert ipr.link_lookup(ifname=f"vnf{lab_a.state.index}-mgmt")
                assert ipr.link_lookup(ifname=f"vnf{lab_b.state.index}-mgmt")
            one_line_error(run_cli_raw("sessions"))  # ambiguous: two labs, none named
        finally:
            lifecycle.down(b, cleanup=True)
        assert a in StateStore().labs()
        assert all(ns in netns.listnetns() for ns in lab_a.state.namespaces)
    finally:
        index = lab_a.state.index
        lifecycle.down(a, cleanup=True)
        assert_gone(a, index)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("sites:\n  - pool: 203.0.113.0/24\n", "sites[0].pool"),
        ("sites: [\n", "not valid YAML"),
        ("name: x\ncolour: blue\n", "colour: unknown field"),
        ("sites:\n  - data_plane: {active: two}\n", "sites[0].data_plane.active"),
    ],
)
def test_a_bad_topology_file_is_one_line_naming_the_field(
    tmp_path: pathlib.Path, text: str, words: str
) -> None:
    path = tmp_path / "lab.yaml"
    path.write_text(text)
    line = one_line_error(run_cli_raw("lab", "up", str(path)))
    assert words in line
    assert not [n for n in netns.listnetns() if n.startswith("vnf-x-")]


def test_missing_topology_file_and_unknown_lab() -> None:
    assert "cannot read" in one_line_error(run_cli_raw("lab", "up", "/nonexistent/lab.yaml"))
    assert "no lab named" in one_line_error(run_cli("ghost", "lab", "down"))
