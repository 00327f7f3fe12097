"""The control plane's redundancy logic, sans-IO: the 1+1 pair's replication and promotion,
DP failover to the site's standby, planned group moves (docs/redundancy.md)."""

from __future__ import annotations

import dataclasses

import pytest

from control_plane.replica import ReplicaState
from control_plane.sessions import SessionState
from vnf.emulator.fleet import SubscriberState
from vnf.lab.inprocess import InProcessLab
from vnf.model.accounting import RecordType
from vnf.model.session import TerminateCause, Usage


def _client_sessions(h: InProcessLab) -> set[tuple[bytes, int, int]]:
    """(client MAC, PPPoE session id, address) of every client that is up."""
    return {
        (c.spec.mac, c.session_id, c.addressing.local_ip)
        for c in h.fleet.subscribers
        if c.state is SubscriberState.UP and c.addressing is not None
    }


def test_the_standby_mirrors_every_established_session() -> None:
    h = InProcessLab(subscribers=8, pair=True)
    h.dial()
    assert h.up() == 8
    assert h.standby is not None
    active = {k: r for k, r in h.cp.replica.sessions.items()}
    assert set(active) == set(h.standby.replica.sessions)
    assert all(r.active and r.started for r in h.standby.replica.sessions.values())
    assert h.standby.replica.placement == h.cp.replica.placement
    assert {r.record_type for r in h.mirrored} == {RecordType.START}
    assert len(h.mirrored) == 8


def test_a_rule_waits_for_the_standby_before_any_dp_sees_it() -> None:
    h = InProcessLab(subscribers=1, pair=True)
    h.fleet.dial(0, 0, 0, h.clock())
    for _ in range(50):  # drive the client until IPCP is up, without replicating
        out = h.fleet.outbox[:]
        h.fleet.outbox.clear()
        for frame in out:
            h.punt(frame)
        for frames in h.cp.drain_tx().values():
            for frame in frames:
                h.fleet.receive(frame, h.clock())
        h.clock.advance(0.01)
        if h.cp.sessions.counts[SessionState.INSTALLING]:
            break
    assert h.cp.sessions.counts[SessionState.INSTALLING] == 1
    assert not any(h.cp.rules.values())  # held: the standby has not acknowledged
    h.replicate()
    # Then the serving DP and the site's hot standby DP get it, once each.
    key = next(k for g in h.cp.placement.by_id.values() for k in g.members)
    group = h.cp.placement.by_id[h.cp.sessions.by_key[key].group]
    assert {dp: [r.session_key for r in rules] for dp, rules in h.cp.rules.items() if rules} == {
        group.dp: [key],
        "dp-site1-3": [key],
    }


def test_killing_the_active_loses_no_session_and_writes_no_second_start() -> None:
    h = InProcessLab(subscribers=10, pair=True)
    h.dial()
    before = _client_sessions(h)
    assert len(before) == 10
    dead = h.fail_active()
    assert h.cp.active and h.cp.epoch > dead.epoch
    assert len(h.cp.sessions) == 10
    assert all(s.state is SessionState.ACTIVE for s in h.cp.sessions.by_key.values())
    # The DPs got the complete set again under the new epoch; nothing was removed: each
    # session on its serving DP and on the hot standby.
    serving = [t for dp, t in h.installed.items() if h.cp.placement.groups_of(dp)]
    assert sum(len(t) for t in serving) == 10
    assert len(h.installed["dp-site1-3"]) == 10
    h.run(35.0, tick=0.5)  # several LCP echo intervals: the restored engines keep the link
    assert _client_sessions(h) == before
    assert h.fleet.counts[SubscriberState.DOWN] == 0
    starts = [r for r in h.drain_accounting() if r.record_type is RecordType.START]
    assert starts == []  # the dead active wrote them; the new one must not repeat them
    takeover = h.cp.takeovers[-1]
    assert takeover.kind == "cp_failover" and takeover.sessions == 10 and takeover.done


def test_after_a_takeover_addresses_and_session_ids_are_never_handed_out_twice() -> None:
    h = InProcessLab(subscribers=12, pair=True)
    h.dial(count=6)
    h.fail_active()
    h.dial(seconds=5.0)  # the other six dial on the new active
    assert h.up() == 12
    addresses = [s.ipv4 for s in h.cp.sessions.by_key.values()]
    ids = [(s.group, s.sid) for s in h.cp.sessions.by_key.values()]
    keys = list(h.cp.sessions.by_key)
    assert len(set(addresses)) == 12
    assert len(set(ids)) == 12
    assert len(set(keys)) == 12


def test_stops_after_a_takeover_carry_the_whole_session() -> None:
    h = InProcessLab(subscribers=3, pair=True)
    h.dial()
    h.run(2.0, tick=0.5)
    h.fail_active()
    h.drain_accounting()
    count = h.cp.terminate(
        list(h.cp.sessions.by_key.values()), TerminateCause.ADMIN_RESET, h.clock()
    )
    assert count == 3
    h.run(5.0, tick=0.1)
    stops = [r for r in h.drain_accounting() if r.record_type is RecordType.STOP]
    assert len(stops) == 3
    assert all(r.session_time_s >= 2.0 for r in stops)


def test_a_session_negotiating_at_the_takeover_gets_a_padt_and_can_redial() -> None:
    h = InProcessLab(subscribers=1, pair=True)
    h.fleet.dial(0, 0, 0, h.clock())
    for _ in range(3):  # PADI/PADO/PADR/PADS and the start of LCP only
        h.step()
    assert h.cp.sessions.counts[SessionState.NEGOTIATING] == 1
    h.fail_active()
    h.run(5.0, tick=0.1)  # well within the client's own timeouts
    assert h.count("discovery_tx", "padt_unknown_session") >= 1
    gone = h.fleet.counts[SubscriberState.DOWN] + h.fleet.counts[SubscriberState.FAILED]
    assert gone == 1
    h.dial()
    assert h.up() == 1


def test_dp_failure_moves_its_groups_to_the_standby_without_a_redial() -> None:
    h = InProcessLab(subscribers=12, pair=True)
    h.dial()
    before = _client_sessions(h)
    failed = "dp-site1-1"
    moved = {g.group_id for g in h.cp.placement.groups_of(failed)}
    keys = set(h.installed[failed])
    assert moved and keys
    h.disconnect(failed)
    h.deliver()
    standby = "dp-site1-3"
    assert {g.group_id for g in h.cp.placement.groups_of(standby)} == moved
    assert set(h.installed[standby]) == keys
    assert h.standby is not None
    assert all(h.standby.replica.placement[g] == standby for g in moved)
    takeover = h.cp.takeovers[-1]
    assert (takeover.kind, takeover.from_node, takeover.to_node) == (
        "dp_failover",
        failed,
        standby,
    )
    assert takeover.done and takeover.sessions == len(keys)
    h.run(35.0, tick=0.5)
    assert _client_sessions(h) == before
    # The restarted DP comes back as the new standby: it serves nothing and holds every
    # session of its site, ready to claim.
    h.connect(failed)
    h.deliver()
    assert h.cp.placement.groups_of(failed) == []
    assert h.cp.prepared_on[failed] == set(h.cp.placement.by_id)
    assert set(h.installed[failed]) == set(h.cp.sessions.by_key)


def test_the_hot_standby_dp_holds_every_site_session_before_any_failure() -> None:
    h = InProcessLab(subscribers=12, pair=True)
    h.dial()
    standby = "dp-site1-3"
    assert h.cp.placement.groups_of(standby) == []
    assert h.cp.prepared_on[standby] == set(h.cp.placement.by_id)
    assert set(h.installed[standby]) == set(h.cp.sessions.by_key) and len(h.cp.sessions) == 12
    # Sessions that end leave the standby too; new ones arrive there as well.
    victim = next(iter(h.cp.sessions.by_key.values()))
    h.cp.terminate([victim], TerminateCause.ADMIN_RESET, h.clock())
    h.run(2.0)
    assert victim.key not in h.installed[standby]
    assert set(h.installed[standby]) == set(h.cp.sessions.by_key)
    # Its acknowledgements never decide a session's state: only the serving DP's do.
    assert all(s.state is SessionState.ACTIVE for s in h.cp.sessions.by_key.values())


def test_a_failover_to_a_hot_standby_claims_first_and_confirms_after() -> None:
    h = InProcessLab(subscribers=12, pair=True)
    h.dial()
    failed, standby = "dp-site1-1", "dp-site1-3"
    moved = {g.group_id for g in h.cp.placement.groups_of(failed)}
    keys = set(h.installed[failed])
    h.cp.full_sync.clear()
    h.cp.dp_disconnected(failed, h.clock())
    # The urgent half: the claim, nothing to convert.
    claim = h.cp.assignments[standby]
    assert {g.group_id for g in claim.groups} - claim.prepared == moved
    assert standby not in h.cp.full_sync and h.cp.unsettled
    assert not h.cp.takeovers or h.cp.takeovers[-1].kind != "dp_failover"
    # Usage the new DP reports before the rest already adds to what the old one counted.
    key = next(iter(keys))
    counted = h.cp.sessions.by_key[key].usage
    h.cp.usage([_usage(key, 1)], standby)
    assert h.cp.sessions.by_key[key].usage[0] == counted[0] + 1
    h.cp.settle()
    assert {r.session_key for r in h.cp.full_sync[standby]} == keys
    assert not h.cp.unsettled
    h.deliver()
    takeover = h.cp.takeovers[-1]
    assert takeover.kind == "dp_failover" and takeover.done
    assert h.standby is not None
    h.replicate()
    assert h.standby.replica.sessions[key].base == h.cp.sessions.by_key[key].base


@pytest.mark.parametrize(
    ("hot", "max_groups", "held"),
    [(True, 0, True), (True, 16, True), (True, 2, False), (False, 16, False)],
)
def test_a_standby_dp_is_hot_only_when_configured_and_big_enough(
    hot: bool, max_groups: int, held: bool
) -> None:
    h = InProcessLab(subscribers=6, config_edit=lambda c: dataclasses.replace(c, hot_standby=hot))
    standby = "dp-site1-3"
    h.cp.dp_connected(standby, "site1", h.clock(), max_groups)
    h.dial()
    assert len(h.cp.placement.by_id) == 4
    assert bool(h.cp.prepared_on[standby]) is held
    assert bool(h.installed[standby]) is held
    assert (h.cp.counters["hot_standby_too_small", standby] > 0) is (hot and not held)
    # Hot or warm, a failover keeps every session of the failed DP.
    failed = "dp-site1-1"
    keys = set(h.installed[failed])
    h.disconnect(failed)
    h.deliver()
    assert set(h.installed[standby]) == keys


def test_without_a_standby_the_groups_wait_and_expire_after_the_headless_timeout() -> None:
    h = InProcessLab(
        topology={"sites": [{"subscribers": {"pppoe": 4}, "data_plane": {"standby": 0}}]},
    )
    h.dial()
    failed = "dp-site1-1"
    on_failed = {k for g in h.cp.placement.groups_of(failed) for k in g.members}
    assert on_failed
    h.disconnect(failed)
    assert set(h.cp.orphaned) == {g.group_id for g in h.cp.placement.groups_of(failed)}
    h.drain_accounting()
    h.clock.advance(h.config.headless_timeout_s + 1)
    h.cp.tick(h.clock())
    stops = [r for r in h.drain_accounting() if r.record_type is RecordType.STOP]
    assert {r.terminate_cause for r in stops} == {"lost-service"}
    assert len(stops) == len(on_failed)
    assert not on_failed & set(h.cp.sessions.by_key)


def test_a_dp_back_before_the_headless_timeout_keeps_its_sessions() -> None:
    h = InProcessLab(
        topology={"sites": [{"subscribers": {"pppoe": 4}, "data_plane": {"standby": 0}}]},
    )
    h.dial()
    failed = "dp-site1-1"
    keys = set(h.installed[failed])
    h.disconnect(failed)
    h.clock.advance(h.config.headless_timeout_s / 2)
    h.cp.tick(h.clock())
    h.connect(failed)
    h.deliver()
    assert set(h.installed[failed]) == keys
    assert not h.cp.orphaned
    h.clock.advance(h.config.headless_timeout_s)
    h.cp.tick(h.clock())
    assert len(h.cp.sessions) == 4


def test_a_planned_move_is_make_before_break_and_keeps_usage() -> None:
    h = InProcessLab(subscribers=8, pair=True)
    h.dial()
    group = h.cp.placement.groups_of("dp-site1-1")[0]
    keys = set(group.members)
    assert keys
    for key in keys:  # what the old DP counted so far
        h.cp.usage([_usage(key, 5)], "dp-site1-1")
    h.ack_rules = False  # hold the target's acknowledgement: nothing is claimed before it
    move = h.cp.start_move(group.group_id, "dp-site1-3", h.clock())
    assignment = h.cp.assignments["dp-site1-3"]
    assert group.group_id in assignment.prepared
    assert group.dp == "dp-site1-1"
    h.ack_rules = True
    h.deliver()
    assert group.dp == "dp-site1-3"
    assert not h.cp.moves and move.takeover.done
    assert h.cp.moves_done[-1][0] == group.group_id
    h.deliver()
    assert keys <= set(h.installed["dp-site1-1"])  # still forwarding while routes follow
    h.clock.advance(2.0)
    h.cp.tick(h.clock())
    h.deliver()  # the old DP's new assignment (without the group)
    assert {k for k, r in h.installed["dp-site1-3"].items()} >= keys
    assert not keys & set(h.installed["dp-site1-1"])
    # The old DP's final count and the new DP's count add up.
    for key in keys:
        h.cp.usage([_usage(key, 7)], "dp-site1-1")  # its final report
        h.cp.usage([_usage(key, 3)], "dp-site1-3")
        assert h.cp.sessions.by_key[key].usage[0] == 10


@pytest.mark.parametrize(
    ("group_id", "to_dp", "error"),
    [
        (99, "dp-site1-3", "no subscriber group 99"),
        (1, "dp-nowhere", "no data-plane worker"),
    ],
)
def test_impossible_moves_are_refused_with_a_reason(group_id: int, to_dp: str, error: str) -> None:
    h = InProcessLab(subscribers=1)
    with pytest.raises(ValueError, match=error):
        h.cp.start_move(group_id, to_dp, h.clock())


def test_a_late_standby_gets_a_snapshot_equal_to_the_active_state() -> None:
    h = InProcessLab(subscribers=6)
    h.dial()
    late = ReplicaState()
    for change in h.cp.replica.snapshot():
        late.apply(change)
    assert late.sessions == h.cp.replica.sessions
    assert late.placement == h.cp.replica.placement
    assert late.epoch == h.cp.replica.epoch
    assert late.next_key == h.cp.replica.next_key


def _usage(key: int, packets: int) -> Usage:
    return Usage(key, packets, packets * 100, 0, 0)
