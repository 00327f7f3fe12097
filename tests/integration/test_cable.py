"""Cable modems on a real lab, converged with PPPoE on one site (docs/cable.md): they
register through the DP workers, their CPEs get addresses by DHCP, traffic crosses the DOCSIS
fast path both ways at the service class's rates, a DSC changes the rate without
re-registration, a reset re-registers, and a DP failure moves modems and PPPoE sessions
alike without either re-registering or redialing."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.conftest import RunningLab, assert_gone, bring_up, lab_name
from tests.integration.helpers import one_line_error, run_cli, wait_for
from vnf.api import common_pb2, management_pb2
from vnf.lab.adapters import faults, lifecycle
from vnf.lab.adapters.operations import dial_and_wait, run_traffic
from vnf.model.addresses import parse_mac

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PPPOE = 6
MODEMS = 6
POOL = "100.64.0.0/16"
SIZE = 1000  # IPv4 bytes per test packet
PPS = 400  # per session and direction: 3.2 Mbit/s offered, above every class below


@pytest.fixture(scope="module")
def lab() -> Iterator[RunningLab]:
    name = lab_name("c")
    running = bring_up(
        {
            "name": name,
            "control_plane": {"nodes": 1},
            "rate_profiles": {
                "default": {},
                "cm-1m": {"up_kbps": 1000, "down_kbps": 2000},
                "cm-2m": {"up_kbps": 2000, "down_kbps": 2500},
            },
            "cable": {"ranging_interval_s": 2},
            "sites": [
                {
                    "name": "site1",
                    "pool": POOL,
                    "subscribers": {"pppoe": PPPOE},
                    "modems": {"count": MODEMS, "service_class": "cm-1m"},
                    "dial": {"autostart": False},
                }
            ],
        }
    )
    index = running.state.index
    try:
        with running.client() as client:
            outcome = dial_and_wait(client, timeout_s=60)
        assert (outcome.up, outcome.failed) == (PPPOE + MODEMS, 0), outcome.failures
        yield running
    finally:
        lifecycle.down(name, cleanup=True)
        assert_gone(name, index)


def _modems(lab: RunningLab) -> list[dict[str, Any]]:
    result = run_cli(lab.name, "cable", "modems", "-o", "json")
    assert result.exit_code == 0, result.output
    rows: list[dict[str, Any]] = json.loads(result.output)
    return rows


def _rate_bps(report: Any, direction: str, seconds: float) -> float:
    (d,) = [d for d in report.directions if d.direction == direction]
    return float(d.received) * SIZE * 8 / seconds


def _traffic(lab: RunningLab, sessions: int, seconds: float = 5.0) -> Any:
    with lab.client() as client:
        (report,) = run_traffic(client, seconds, PPS, SIZE, sessions, kind="docsis")
    return report


def test_modems_register_and_their_cpes_get_addresses_beside_pppoe(lab: RunningLab) -> None:
    rows = _modems(lab)
    assert len(rows) == MODEMS
    assert {r["state"] for r in rows} == {"online"}
    addresses = [ipaddress.IPv4Address(r["cpe_ip"]) for r in rows]
    assert len(set(addresses)) == MODEMS
    assert all(a in ipaddress.IPv4Network(POOL) for a in addresses)
    assert all(r["forwarding"] == "active" and r["service_class"] == "cm-1m" for r in rows)
    with lab.client() as client:
        status = client.management().GetStatus(common_pb2.Empty(), timeout=5)
        pages = client.management().ListSessions(management_pb2.SessionQuery(), timeout=10)
        pppoe = [s for p in pages for s in p.sessions]
    assert status.sessions == PPPOE + MODEMS  # one CP, one set of groups, both kinds
    assert len(pppoe) == PPPOE
    serving = {g.dp for g in status.groups}  # the same DP workers serve both kinds
    assert {r["dp"] for r in rows} | {s.dp for s in pppoe} <= serving
    table = run_cli(lab.name, "cable", "modems")
    assert table.exit_code == 0 and "MAC state" in table.output and "online" in table.output


def test_both_directions_are_rate_limited_to_the_service_class(lab: RunningLab) -> None:
    seconds = 5.0
    report = _traffic(lab, MODEMS, seconds)
    up = _rate_bps(report, "upstream", seconds) / MODEMS
    down = _rate_bps(report, "downstream", seconds) / MODEMS
    assert abs(up - 1_000_000) <= 50_000, up
    assert abs(down - 2_000_000) <= 100_000, down


def test_a_service_class_change_holds_within_a_second_without_reregistration(
    lab: RunningLab,
) -> None:
    before = {r["mac"]: r["session_key"] for r in _modems(lab)}
    for mac in before:
        result = run_cli(lab.name, "cable", "modem", mac, "service-class", "set", "cm-2m")
        assert result.exit_code == 0 and "DSC sent" in result.output, result.output
    wait_for(
        lambda: all(r["service_class"] == "cm-2m" for r in _modems(lab)),
        1.0,
        what="every modem's DSC to complete",
    )
    seconds = 5.0
    report = _traffic(lab, MODEMS, seconds)
    up = _rate_bps(report, "upstream", seconds) / MODEMS
    down = _rate_bps(report, "downstream", seconds) / MODEMS
    assert abs(up - 2_000_000) <= 100_000, up
    assert abs(down - 2_500_000) <= 125_000, down
    after = {r["mac"]: r["session_key"] for r in _modems(lab)}
    assert after == before  # same registrations, same accounting sessions


def test_reset_makes_the_modem_register_again(lab: RunningLab) -> None:
    rows = _modems(lab)
    victim = rows[0]
    result = run_cli(lab.name, "cable", "modem", victim["mac"], "reset")
    assert result.exit_code == 0, result.output

    def back() -> bool:
        row = [r for r in _modems(lab) if r["mac"] == victim["mac"]]
        return (
            bool(row)
            and row[0]["forwarding"] == "active"
            and (row[0]["session_key"] != victim["session_key"])
        )

    wait_for(back, 15.0, what="the reset modem to register again")
    with lab.client() as client:
        pages = client.management().ListAccounting(
            management_pb2.AccountingQuery(record_type="stop"), timeout=10
        )
        stops = [r for p in pages for r in p.records if r.username == victim["mac"]]
    assert [r.terminate_cause for r in stops] == ["admin-reset"]


def test_bad_cli_input_is_one_line(lab: RunningLab) -> None:
    assert "not a MAC" in one_line_error(run_cli(lab.name, "cable", "modem", "x", "reset"))
    unknown = run_cli(lab.name, "cable", "modem", "02:ff:ff:ff:ff:ff", "reset")
    assert "not online" in one_line_error(unknown)
    mac = _modems(lab)[0]["mac"]
    bad = run_cli(lab.name, "cable", "modem", mac, "service-class", "set", "nope")
    assert "unknown service class" in one_line_error(bad)
    assert parse_mac(mac)


def test_a_dp_failure_moves_modems_and_pppoe_sessions_without_reregistration(
    lab: RunningLab,
) -> None:
    before = {r["mac"]: (r["session_key"], r["cpe_ip"], r["sid"]) for r in _modems(lab)}
    victim = next(r["dp"] for r in _modems(lab))
    with lab.client() as client:
        faults.inject(client, "kill", victim)  # the orchestrator restarts it as the standby
        wait_for(
            lambda: victim not in {r["dp"] for r in _modems(lab)},
            10.0,
            what="the failed DP's groups to move",
        )
        (report,) = run_traffic(client, 3.0, 20, 200, 0)
        for d in report.directions:
            assert d.received == d.sent, (d.direction, d.sent, d.received)
    after = {r["mac"]: (r["session_key"], r["cpe_ip"], r["sid"]) for r in _modems(lab)}
    assert after == before
    assert {r["state"] for r in _modems(lab)} == {"online"}
