"""CP↔DP partitions shorter and longer than the headless timeout, on a site without a
standby DP (docs/redundancy.md, "CP↔DP partitions"): the partition is a real cut (blackhole
routes in both namespaces), the sessions' fate is what the table there says.

One CP and one DP: with the pair, a DP that alone reports the active silent is a majority
and the standby would promote, which is a CP failover, not a partition. The case with a
standby DP runs in test_redundancy.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.conftest import RunningLab, assert_gone, bring_up, lab_name
from tests.integration.helpers import wait_for
from vnf.api import common_pb2, management_pb2
from vnf.lab.adapters import faults, lifecycle
from vnf.lab.adapters.operations import dial_and_wait, start_traffic, traffic_rows, wait_traffic

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SUBSCRIBERS = 10
HEADLESS_S = 3.0
CP, DP = "cp-a", "dp-site1-1"


@pytest.fixture(scope="module")
def lab() -> Iterator[RunningLab]:
    name = lab_name("p")
    running = bring_up(
        {
            "name": name,
            "control_plane": {
                "nodes": 1,
                "headless_timeout_s": HEADLESS_S,
                # Echoes tolerate 10 s of silence (longer than either partition here) and
                # find a session the CP ended within 2 s once the path is back.
                "lcp": {"echo_interval_s": 2, "echo_failures": 5},
            },
            "sites": [
                {
                    "name": "site1",
                    "data_plane": {"active": 1, "standby": 0},
                    "groups": 2,
                    "subscribers": {"pppoe": SUBSCRIBERS},
                    "modems": {"count": 0},
                    "dial": {"autostart": False},
                }
            ],
        }
    )
    index = running.state.index
    try:
        with running.client() as client:
            outcome = dial_and_wait(client, timeout_s=60)
        assert (outcome.up, outcome.failed) == (SUBSCRIBERS, 0)
        yield running
    finally:
        lifecycle.down(name, cleanup=True)
        assert_gone(name, index)


def _cp(client: Any) -> Any:
    return client.management().GetStatus(common_pb2.Empty(), timeout=5)


def _dp(client: Any) -> Any:
    (node,) = [n for n in client.nodes("dp") if n.name == DP]
    return client.dp_admin(node).GetStatus(common_pb2.Empty(), timeout=5)


def _dp_seen(client: Any) -> bool:
    return any(d.dp_id == DP and d.connected for d in _cp(client).dps)


def _sessions(client: Any) -> dict[str, tuple[str, int]]:
    """acct session id → (address, PPPoE session id) of every session on the CP."""
    pages = client.management().ListSessions(management_pb2.SessionQuery(), timeout=10)
    return {s.acct_session_id: (s.ipv4, s.pppoe_session_id) for p in pages for s in p.sessions}


def _stops(client: Any) -> list[Any]:
    pages = client.management().ListAccounting(management_pb2.AccountingQuery(), timeout=10)
    return [r for p in pages for r in p.records if r.record_type == "stop"]


def _emulator_up(client: Any) -> int:
    emu = client.nodes("emulator")[0]
    return int(client.emulator(emu).GetStatus(common_pb2.Empty(), timeout=5).up)


def test_a_partition_shorter_than_the_headless_timeout_keeps_every_session(
    lab: RunningLab,
) -> None:
    with lab.client() as client:
        before = _sessions(client)
        stops = len(_stops(client))
        assert len(before) == SUBSCRIBERS
        start_traffic(client, 3.0, 50, 128)
        faults.inject(client, "link", CP, DP)
        try:
            wait_for(lambda: not _dp_seen(client), 5.0, what="the CP to lose the DP")
            wait_for(lambda: _dp(client).headless_s > 0, 5.0, what="the DP to run headless")
            # Headless: the DP keeps every session and keeps forwarding.
            assert _dp(client).sessions == SUBSCRIBERS
        finally:
            faults.repair(client, "link", CP, DP)
        rows = traffic_rows(wait_traffic(client, 3.0))
        wait_for(lambda: _dp_seen(client), 10.0, what="the DP to reconnect")
        wait_for(lambda: _dp(client).headless_s == 0, 5.0, what="the DP to follow the CP again")
        status = _dp(client)
        after = _sessions(client)
        assert after == before
        assert len(_stops(client)) == stops  # nothing ended
        assert status.sessions == SUBSCRIBERS and sorted(status.groups) == [1, 2]
    assert sum(r["lost"] for r in rows) == 0, rows


def test_a_partition_longer_than_the_headless_timeout_ends_the_sessions_and_they_redial(
    lab: RunningLab,
) -> None:
    with lab.client() as client:
        before = _sessions(client)
        stops = len(_stops(client))
        faults.inject(client, "link", CP, DP)
        try:
            wait_for(lambda: not _dp_seen(client), 5.0, what="the CP to lose the DP")
            # Both sides use the same timeout: the CP ends the sessions, the DP flushes them.
            wait_for(lambda: not _sessions(client), HEADLESS_S + 5.0, what="the CP to end them")
            wait_for(lambda: _dp(client).sessions == 0, HEADLESS_S + 5.0, what="the DP flush")
            assert _dp(client).groups == []
        finally:
            faults.repair(client, "link", CP, DP)
        ended = _stops(client)[stops:]
        assert {r.acct_session_id for r in ended} == set(before)
        assert {r.terminate_cause for r in ended} == {"lost-service"}
        wait_for(lambda: _dp_seen(client), 10.0, what="the DP to reconnect")
        # The clients' next LCP echo reaches the CP as an unknown session: a PADT each.
        wait_for(lambda: _emulator_up(client) == 0, 20.0, what="the clients to learn it")
        outcome = dial_and_wait(client, timeout_s=60)
        assert (outcome.up, outcome.failed) == (SUBSCRIBERS, 0)
        after = _sessions(client)
        assert len(after) == SUBSCRIBERS and not set(after) & set(before)  # new sessions
        assert sorted(_dp(client).groups) == [1, 2]
