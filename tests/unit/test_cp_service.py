"""The control plane's service core with real client engines (in-process, fake clock)."""

from __future__ import annotations

import dataclasses
import ipaddress
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from control_plane.sessions import SessionState
from vnf.codec.ppp import ControlCode, PppProtocol, decode_control
from vnf.codec.pppoe import (
    DiscoveryPacket,
    PppoeCode,
    Tag,
    TagType,
    decode_discovery_frame,
    decode_session_frame,
    encode_discovery_frame,
    encode_session_frame,
)
from vnf.config import CpConfig, GroupConfig
from vnf.emulator.fleet import SubscriberState
from vnf.lab.inprocess import InProcessLab
from vnf.model.accounting import AccountingRecord, RecordType
from vnf.model.subscriber import AuthType, Subscriber


def _records(h: InProcessLab) -> list[AccountingRecord]:
    return [r for r in h.drain_accounting() if isinstance(r, AccountingRecord)]


def test_dial_brings_every_session_up_with_unique_addresses_on_both_active_dps() -> None:
    h = InProcessLab(subscribers=20)
    h.dial()
    assert h.up() == 20
    sessions = list(h.cp.sessions.by_key.values())
    assert all(s.state is SessionState.ACTIVE for s in sessions)
    addresses = [s.ipv4 for s in sessions]
    assert len(set(addresses)) == 20
    for s in sessions:
        pool = h.cp.placement.by_id[s.group].group.pool
        assert ipaddress.IPv4Address(s.ipv4) in pool
    by_dp = {dp: len(rules) for dp, rules in h.installed.items()}
    assert h.cp.placement.groups_of("dp-site1-3") == []  # the standby serves no group,
    assert by_dp["dp-site1-3"] == 20  # it holds every session, ready to claim
    assert by_dp["dp-site1-1"] == by_dp["dp-site1-2"] == 10
    starts = [r for r in _records(h) if r.record_type is RecordType.START]
    assert len({r.acct_session_id for r in starts}) == 20
    assert h.count("auth_ok", "chap") == h.count("auth_ok", "pap") == 10
    # The client learned the same address and DNS the CP handed out (its own view: local).
    for sub in h.fleet.subscribers:
        assert sub.addressing is not None
        assert sub.addressing.local_ip in addresses
        assert str(ipaddress.IPv4Address(sub.addressing.dns1)) == h.config.dns[0]


def test_a_padi_heard_through_every_active_dp_is_answered_once() -> None:
    h = InProcessLab(subscribers=5)
    h.dial()
    assert h.count("discovery_rx", "padi") == 5
    assert h.count("padi_duplicates") == 5  # one extra copy from the second active DP
    assert h.count("discovery_tx", "pado") == 5


def test_wrong_password_fails_cleanly_and_starts_no_accounting() -> None:
    h = InProcessLab(subscribers=2)
    victim = h.lab_subscribers[0]
    h.directory.put(Subscriber(victim.username, "not-the-password", AuthType(victim.auth)))
    h.dial()
    assert h.up() == 1
    assert h.fleet.counts[SubscriberState.FAILED] == 1
    assert h.count("auth_fail", "bad_password") == 1
    assert len(h.cp.sessions) == 1  # the failed one is gone, id and address returned
    records = _records(h)
    assert all(r.username != victim.username for r in records)
    # The failed session got a PADT.
    padts = [f for f in h.sent_to_clients if f[:6] == victim.mac and f[15] == PppoeCode.PADT]
    assert padts
    # Nothing leaked: exactly one address and one session id are out, held by the good session.
    groups = h.cp.placement.by_id.values()
    assert sum(g.pool.size - g.pool.free for g in groups) == 1
    assert sum(g.session_ids.size - g.session_ids.free for g in groups) == 1
    assert sum(g.reserved for g in groups) == 0


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda d, s: d.remove(s.username), "unknown_user"),
        (
            lambda d, s: d.put(Subscriber(s.username, s.password, AuthType.PAP)),
            "method_not_allowed",
        ),
    ],
)
def test_auth_failures_are_counted_by_reason(edit, reason: str) -> None:  # type: ignore[no-untyped-def]
    h = InProcessLab(subscribers=2)  # subscriber 1 uses CHAP, 2 PAP
    victim = h.lab_subscribers[0]
    assert victim.auth == "chap"
    edit(h.directory, victim)
    h.dial()
    assert h.fleet.subscribers[0].state is SubscriberState.FAILED
    assert h.fleet.subscribers[1].state is SubscriberState.UP
    assert h.count("auth_fail", reason) == 1
    assert all(s.username != victim.username for s in h.cp.sessions.by_key.values())


def _one_group(pool: str, max_sessions: int = 65534):  # type: ignore[no-untyped-def]
    def edit(config: CpConfig) -> CpConfig:
        group = dataclasses.replace(config.groups[0], pool=pool)
        return dataclasses.replace(config, groups=(group,), max_sessions_per_group=max_sessions)

    return edit


def test_pool_exhausted_is_a_clean_refusal() -> None:
    h = InProcessLab(subscribers=8, config_edit=_one_group("100.64.0.0/29"))  # 5 usable
    h.dial(seconds=10)
    assert h.up() == 5
    assert h.fleet.counts[SubscriberState.FAILED] == 3
    assert h.count("drops", "pool_exhausted") + h.count("drops", "no_capacity") >= 3
    assert h.cp.placement.by_id[1].pool.free == 0
    addresses = {s.ipv4 for s in h.cp.sessions.by_key.values()}
    assert len(addresses) == 5


def test_session_id_space_exhausted() -> None:
    h = InProcessLab(subscribers=4, config_edit=_one_group("100.64.0.0/24", max_sessions=2))
    h.dial(seconds=10)
    assert h.up() == 2
    refused = h.count("drops", "session_ids_exhausted") + h.count("drops", "no_capacity")
    assert refused >= 2
    pads_errors = [
        f
        for f in h.sent_to_clients
        if f[12:14] == b"\x88\x63"
        and f[15] == PppoeCode.PADS
        and decode_discovery_frame(f).packet.tag(TagType.AC_SYSTEM_ERROR) is not None
    ]
    assert len(pads_errors) == h.count("discovery_tx", "pads_error")


def _padr(h: InProcessLab, cookie: bytes | None, mac: bytes = b"\x02\x00\x00\x00\x00\x99") -> bytes:
    group = h.cp.placement.by_id[1]
    tags = [Tag(TagType.SERVICE_NAME, b"")]
    if cookie is not None:
        tags.append(Tag(TagType.AC_COOKIE, cookie))
    return encode_discovery_frame(group.mac, mac, DiscoveryPacket(PppoeCode.PADR, 0, tuple(tags)))


def test_padr_without_a_valid_cookie_allocates_nothing() -> None:
    h = InProcessLab(subscribers=1)
    before = h.cp.placement.by_id[1].session_ids.free
    for cookie in (None, os.urandom(24), b""):
        h.punt(_padr(h, cookie))
    h.deliver()
    assert h.count("drops", "missing_cookie") >= 1
    assert h.count("drops", "forged_cookie") >= 1
    assert not h.cp.sessions.by_key
    assert h.cp.placement.by_id[1].session_ids.free == before
    assert not h.sent_to_clients


def test_expired_cookie_and_cookie_of_another_mac() -> None:
    h = InProcessLab(subscribers=1)
    client_mac = b"\x02\x00\x00\x00\x00\x42"
    padi = encode_discovery_frame(
        b"\xff" * 6,
        client_mac,
        DiscoveryPacket(PppoeCode.PADI, 0, (Tag(TagType.SERVICE_NAME, b""),)),
    )
    h.punt(padi)
    h.deliver()
    (pado,) = [f for f in h.sent_to_clients if f[:6] == client_mac]
    cookie = decode_discovery_frame(pado).packet.tag(TagType.AC_COOKIE)
    assert cookie
    h.punt(_padr(h, cookie, mac=b"\x02\x00\x00\x00\x00\x43"))  # stolen by another MAC
    h.advance(h.config.cookie_ttl_s + 1)
    h.punt(_padr(h, cookie, mac=client_mac))
    h.deliver()
    assert h.count("drops", "forged_cookie") + h.count("drops", "wrong_mac") == 1
    assert h.count("drops", "expired_cookie") == 1
    assert not h.cp.sessions.by_key


def test_a_retransmitted_padr_gets_the_same_session() -> None:
    h = InProcessLab(subscribers=1)
    client_mac = b"\x02\x00\x00\x00\x00\x42"
    tags = (Tag(TagType.SERVICE_NAME, b""), Tag(TagType.HOST_UNIQ, b"\x00\x01"))
    h.punt(
        encode_discovery_frame(b"\xff" * 6, client_mac, DiscoveryPacket(PppoeCode.PADI, 0, tags))
    )
    h.deliver()
    (pado,) = [f for f in h.sent_to_clients if f[:6] == client_mac]
    offer = decode_discovery_frame(pado)
    cookie = offer.packet.tag(TagType.AC_COOKIE)
    assert cookie is not None
    padr = DiscoveryPacket(PppoeCode.PADR, 0, (*tags, Tag(TagType.AC_COOKIE, cookie)))
    for _ in range(2):  # the client did not get our PADS and asks again
        h.punt(encode_discovery_frame(offer.src, client_mac, padr))
        h.deliver()
    pads = [
        decode_discovery_frame(f).packet
        for f in h.sent_to_clients
        if f[:6] == client_mac and f[12:14] == b"\x88\x63" and f[15] == PppoeCode.PADS
    ]
    assert len(pads) == 2 and pads[0].session_id == pads[1].session_id != 0
    assert len(h.cp.sessions) == 1
    assert h.count("padr_retransmits") == 1


def test_padt_for_unknown_session_or_from_the_wrong_mac_is_dropped() -> None:
    h = InProcessLab(subscribers=1)
    h.dial()
    (s,) = h.cp.sessions.by_key.values()
    group = h.cp.placement.by_id[s.group]
    unknown = DiscoveryPacket(PppoeCode.PADT, s.sid + 100, ())
    h.punt(encode_discovery_frame(group.mac, s.client_mac, unknown))
    wrong = DiscoveryPacket(PppoeCode.PADT, s.sid, ())
    h.punt(encode_discovery_frame(group.mac, b"\x02\x00\x00\x00\x00\x77", wrong))
    h.deliver()
    assert h.count("drops", "padt_unknown_session") == 1
    assert h.count("drops", "padt_wrong_mac") == 1
    assert s.state is SessionState.ACTIVE


def test_session_frames_for_unknown_ids_or_wrong_mac() -> None:
    h = InProcessLab(subscribers=1)
    h.dial()
    (s,) = h.cp.sessions.by_key.values()
    group = h.cp.placement.by_id[s.group]
    lcp_echo = bytes([9, 1, 0, 8, 0, 0, 0, 0])
    h.punt(encode_session_frame(group.mac, s.client_mac, s.sid + 7, PppProtocol.LCP, lcp_echo))
    h.punt(
        encode_session_frame(
            group.mac, b"\x02\x00\x00\x00\x00\x77", s.sid, PppProtocol.LCP, lcp_echo
        )
    )
    h.deliver()
    assert h.count("drops", "unknown_session") == 1
    assert h.count("drops", "wrong_mac") == 1


def test_unknown_ppp_protocol_gets_an_lcp_protocol_reject() -> None:
    h = InProcessLab(subscribers=1)
    h.dial()
    (s,) = h.cp.sessions.by_key.values()
    group = h.cp.placement.by_id[s.group]
    h.sent_to_clients.clear()
    ipv6cp = bytes([1, 1, 0, 4])
    h.punt(encode_session_frame(group.mac, s.client_mac, s.sid, PppProtocol.IPV6CP, ipv6cp))
    h.deliver()
    rejects = []
    for frame in h.sent_to_clients:
        f = decode_session_frame(frame)
        if f.protocol == PppProtocol.LCP:
            pkt = decode_control(f.payload)
            if pkt.code == ControlCode.PROTOCOL_REJECT:
                rejects.append(pkt)
    (reject,) = rejects
    assert reject.data[:2] == bytes.fromhex("8057")
    assert s.state is SessionState.ACTIVE


def test_malformed_pppoe_is_counted_by_reason_and_never_raises() -> None:
    h = InProcessLab(subscribers=1)
    good = encode_discovery_frame(
        b"\xff" * 6,
        b"\x02\x00\x00\x00\x00\x01",
        DiscoveryPacket(PppoeCode.PADI, 0, (Tag(TagType.SERVICE_NAME, b""),)),
    )
    bad_version = good[:14] + b"\x21" + good[15:]
    length_past = good[:18] + b"\x05\xdc" + good[20:]
    tag_overrun = good[:18] + (8).to_bytes(2, "big") + good[20:24] + b"\x00\x40" + b"x" * 4
    for frame in (bad_version, length_past, tag_overrun, b"\x00" * 10):
        h.cp.punt("dp-site1-1", frame, 0.0, h.clock())
    drops = {label for (name, label), n in h.cp.counters.items() if name == "drops" and n}
    assert {"pppoe_bad_version", "pppoe_length_overrun", "pppoe_tag_overrun", "truncated"} <= drops


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120), st.sampled_from([b"\x88\x63", b"\x88\x64", b"\x08\x00"]))
def test_arbitrary_punts_never_raise(tail: bytes, ethertype: bytes) -> None:
    h = _SHARED
    frame = h.cp.placement.by_id[1].mac + b"\x02\x00\x00\x00\x00\x05" + ethertype + tail
    h.cp.punt("dp-site1-1", frame, 0.0, h.clock())
    h.cp.punt("dp-site1-1", b"\xff" * 6 + frame[6:], 0.0, h.clock())


_SHARED = InProcessLab(subscribers=1)


def test_terminate_sends_lcp_terminate_then_padt_and_writes_one_stop() -> None:
    h = InProcessLab(subscribers=3)
    h.dial()
    _records(h)
    target = h.lab_subscribers[0]
    sessions = [s for s in h.cp.sessions.by_key.values() if s.username == target.username]
    from vnf.model.session import TerminateCause

    assert h.cp.terminate(sessions, TerminateCause.ADMIN_RESET, h.clock()) == 1
    h.deliver()
    h.run(1.0)
    sub = h.fleet.subscribers[0]
    assert sub.state is SubscriberState.DOWN
    assert h.fleet.terminated_by_peer == 1
    stops = [r for r in _records(h) if r.record_type is RecordType.STOP]
    (stop,) = stops
    assert stop.username == target.username
    assert stop.terminate_cause == "admin-reset"
    assert (stop.up_bytes, stop.down_bytes) == (1000, 2000)  # the DP's final counters
    to_victim = [f for f in h.sent_to_clients if f[:6] == target.mac]
    kinds = []
    for frame in to_victim:
        if frame[12:14] == b"\x88\x64":
            f = decode_session_frame(frame)
            if f.protocol == PppProtocol.LCP and f.payload[0] == ControlCode.TERMINATE_REQUEST:
                kinds.append("term-req")
        elif frame[15] == PppoeCode.PADT:
            kinds.append("padt")
    assert "term-req" in kinds and "padt" in kinds
    assert kinds.index("term-req") < kinds.index("padt")
    assert len(h.cp.sessions) == 2


def test_client_hangup_is_a_user_request_and_frees_everything() -> None:
    h = InProcessLab(subscribers=2)
    h.dial()
    _records(h)
    free_before = sum(g.pool.free for g in h.cp.placement.by_id.values())
    h.fleet.hangup(0, "", h.clock())
    h.run(2.0)
    stops = [r for r in _records(h) if r.record_type is RecordType.STOP]
    assert len(stops) == 2
    assert {r.terminate_cause for r in stops} == {"user-request"}
    assert not h.cp.sessions.by_key
    assert sum(g.pool.free for g in h.cp.placement.by_id.values()) == free_before + 2


def test_echo_timeout_ends_a_silent_session_as_lost_carrier() -> None:
    h = InProcessLab(subscribers=1)
    h.dial()
    _records(h)
    h.fleet.outbox.clear()

    def silent_step() -> None:  # the client is gone: nothing it would send reaches the CP
        h.fleet.outbox.clear()
        h.deliver()

    for _ in range(int((h.config.echo_interval_s * (h.config.echo_failures + 2)) / 0.5)):
        silent_step()
        h.advance(0.5)
    stops = [r for r in _records(h) if r.record_type is RecordType.STOP]
    (stop,) = stops
    assert stop.terminate_cause == "lost-carrier"
    assert h.count("link_down", "echo_timeout") == 1


def test_interim_records_follow_the_interval() -> None:
    h = InProcessLab(
        subscribers=2, config_edit=lambda c: dataclasses.replace(c, interim_interval_s=10.0)
    )
    h.dial(seconds=1.0)
    _records(h)
    h.run(25.0, tick=0.5)
    interims = [r for r in _records(h) if r.record_type is RecordType.INTERIM]
    assert len(interims) == 4  # 2 sessions x 2 intervals
    assert len({r.acct_session_id for r in interims}) == 2


def test_dp_reconnect_gets_a_full_sync_of_its_sessions() -> None:
    # No standby DP in the site: the groups wait for their DP to come back.
    h = InProcessLab(
        topology={"sites": [{"subscribers": {"pppoe": 6}, "data_plane": {"standby": 0}}]}
    )
    h.dial()
    keys = set(h.installed["dp-site1-1"])
    assert keys
    h.disconnect("dp-site1-1")
    h.installed["dp-site1-1"] = {}
    h.connect("dp-site1-1")
    h.deliver()
    assert set(h.installed["dp-site1-1"]) == keys
    assert all(s.state is SessionState.ACTIVE for s in h.cp.sessions.by_key.values())
    assert h.up() == 6  # nobody redialed


def test_shutdown_stops_every_session_once() -> None:
    h = InProcessLab(subscribers=4)
    h.dial()
    _records(h)
    assert h.cp.shutdown(h.clock()) == 4
    h.deliver()
    stops = [r for r in _records(h) if r.record_type is RecordType.STOP]
    assert len(stops) == 4
    assert {r.terminate_cause for r in stops} == {"nas-reboot"}
    assert not h.cp.sessions.by_key
    h.run(1.0)
    assert h.fleet.counts[SubscriberState.DOWN] == 4


def test_unused_groups_config_is_accepted() -> None:
    g = GroupConfig(9, "site1", "16:00:01:00:00:09", "100.64.0.0/24", "dp-site1-1")
    assert g.group_id == 9
