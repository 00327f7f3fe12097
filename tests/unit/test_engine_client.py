"""SubscriberClient against a minimal AC (AcDiscovery + PppSession per session)."""

from __future__ import annotations

import pytest

from tests.helpers_ppp import (
    AC_MAC,
    ADDRESSING,
    CLIENT_MAC,
    MiniAc,
    make_client,
    run_client_and_ac,
)
from vnf.clock import FakeClock
from vnf.codec.ethernet import EtherType, encode_ethernet
from vnf.codec.ipv4 import build_udp_packet, decode_ipv4
from vnf.codec.ppp import PppProtocol
from vnf.codec.pppoe import decode_discovery_frame, decode_session_frame, encode_session_frame
from vnf.emulator.client import Connected, Disconnected
from vnf.engines.ppp_session import Addressing, AuthMethod, Dropped, LinkDown, PppConfig
from vnf.errors import LocalProtocolError


def connected_client() -> tuple[object, MiniAc, FakeClock, list[object]]:
    clock = FakeClock()
    ac = MiniAc(clock)
    client = make_client()
    client.start(clock())
    events = run_client_and_ac(client, ac, clock, 5)
    return client, ac, clock, events


def test_dial_connects() -> None:
    clock = FakeClock()
    ac = MiniAc(clock)
    client = make_client()
    assert client.state == "idle"
    client.start(clock())
    assert client.state == "discovery"
    events = run_client_and_ac(client, ac, clock, 5)
    peer_view = Addressing(
        ADDRESSING.peer_ip, ADDRESSING.local_ip, ADDRESSING.dns1, ADDRESSING.dns2
    )
    assert events == [Connected(peer_view, 0x10, AC_MAC)]
    assert client.state == "up"
    assert client.ppp is not None and client.ppp.auth_method is AuthMethod.CHAP_MD5
    assert client.session_id == 0x10 and client.ac_mac == AC_MAC


def test_pap_only_client_connects() -> None:
    clock = FakeClock()
    ac = MiniAc(clock)
    client = make_client(methods=(AuthMethod.PAP,))
    client.start(clock())
    events = run_client_and_ac(client, ac, clock, 5)
    assert isinstance(events[0], Connected)
    assert client.ppp is not None and client.ppp.auth_method is AuthMethod.PAP


def test_session_header_and_data_frame() -> None:
    client, _, _, _ = connected_client()
    header = client.session_header()  # type: ignore[attr-defined]
    assert len(header) == 22
    assert header[:6] == AC_MAC and header[6:12] == CLIENT_MAC
    assert header[12:14] == b"\x88\x64" and header[14:16] == b"\x11\x00"
    assert header[16:18] == b"\x00\x10" and header[20:22] == b"\x00\x21"
    packet = build_udp_packet(ADDRESSING.peer_ip, 0xC612000A, 40000, 9, b"x" * 33)
    frame = client.data_frame(packet)  # type: ignore[attr-defined]
    assert frame == encode_session_frame(AC_MAC, CLIENT_MAC, 0x10, PppProtocol.IPV4, packet)
    decoded = decode_session_frame(frame)
    assert decoded.protocol == PppProtocol.IPV4 and decoded.payload == packet
    assert decode_ipv4(decoded.payload).src == ADDRESSING.peer_ip


def test_no_session_header_before_connected() -> None:
    client = make_client()
    with pytest.raises(LocalProtocolError):
        client.session_header()
    with pytest.raises(LocalProtocolError):
        client.data_frame(b"")


def test_hangup_terminates_lcp_then_sends_padt() -> None:
    client, ac, clock, _ = connected_client()
    client.hangup(clock())  # type: ignore[attr-defined]
    frames = client.frames_to_send()  # type: ignore[attr-defined]
    assert len(frames) == 1 and decode_session_frame(frames[0]).payload[0] == 5  # Term-Req
    for frame in frames:
        ac.receive(frame)
    for frame in ac.out:
        client.receive(frame, clock())  # type: ignore[attr-defined]
    ac.out = []
    events = list(iter(client.next_event, None))  # type: ignore[attr-defined]
    assert events == [Disconnected("terminated", by_peer=False)]
    (padt,) = client.frames_to_send()  # type: ignore[attr-defined]
    assert decode_discovery_frame(padt).packet.code == 0xA7
    ac.receive(padt)
    assert not ac.sessions
    assert LinkDown("terminated_by_peer") in ac.events
    assert client.state == "down"  # type: ignore[attr-defined]
    assert client.get_timer() is None  # type: ignore[attr-defined]


def test_padt_from_ac_disconnects() -> None:
    client, ac, clock, _ = connected_client()
    padt = ac.discovery.make_padt(CLIENT_MAC, AC_MAC, 0x10, "admin reset")
    client.receive(padt, clock())  # type: ignore[attr-defined]
    assert list(iter(client.next_event, None)) == [Disconnected("padt", by_peer=True)]  # type: ignore[attr-defined]
    assert client.frames_to_send() == []  # type: ignore[attr-defined]


def test_ac_terminate_disconnects_by_peer() -> None:
    client, ac, clock, _ = connected_client()
    _, session = ac.sessions[0x10]
    session.close(clock())
    ac._pump(0x10)
    events = run_client_and_ac(client, ac, clock, 10)  # type: ignore[arg-type]
    assert events == [Disconnected("terminated_by_peer", by_peer=True)]


def test_wrong_password_disconnects() -> None:
    clock = FakeClock()
    ac = MiniAc(clock)
    client = make_client(password="guess")
    client.start(clock())
    events = run_client_and_ac(client, ac, clock, 30)
    assert Disconnected("auth_failed", by_peer=True) in events
    assert not any(isinstance(e, Connected) for e in events)
    assert not ac.sessions


def test_discovery_failure_disconnects() -> None:
    clock = FakeClock()
    client = make_client(padi_attempts=2)
    client.start(clock())
    client.frames_to_send()
    for _ in range(3):
        clock.advance(10)
        client.handle_timer(clock())
    assert list(iter(client.next_event, None)) == [Disconnected("padi_timeout", by_peer=False)]
    assert client.state == "down"


def test_hangup_during_discovery() -> None:
    client = make_client()
    client.start(0.0)
    client.frames_to_send()
    client.hangup(1.0)
    assert client.next_event() == Disconnected("hangup", by_peer=False)
    assert client.get_timer() is None


def test_dial_survives_frame_loss() -> None:
    clock = FakeClock()
    ac = MiniAc(clock)
    client = make_client()
    client.start(clock())
    counter = iter(range(10**6))
    events = run_client_and_ac(client, ac, clock, 120, loss=lambda d, f: next(counter) % 4 == 1)
    assert any(isinstance(e, Connected) for e in events), events


def test_foreign_frames_are_dropped() -> None:
    client, _, clock, _ = connected_client()
    receive = client.receive  # type: ignore[attr-defined]
    receive(encode_ethernet(CLIENT_MAC, AC_MAC, EtherType.IPV4) + b"\x45", clock())
    receive(
        encode_session_frame(CLIENT_MAC, AC_MAC, 0x11, PppProtocol.LCP, b"\x09\x01\x00\x08abcd"),
        clock(),
    )
    receive(encode_session_frame(CLIENT_MAC, AC_MAC, 0x10, PppProtocol.IPV4, b"\x45"), clock())
    receive(b"\x00" * 12 + b"\x88\x64" + b"\x11\x00", clock())
    assert list(iter(client.next_event, None)) == [  # type: ignore[attr-defined]
        Dropped("ethernet", "bad_ethertype"),
        Dropped("pppoe", "wrong_session"),
        Dropped("ppp", "network_data"),
        Dropped("pppoe", "truncated"),
    ]


def test_ppp_config_overrides_are_applied() -> None:
    clock = FakeClock()
    ac = MiniAc(clock)
    client = make_client(ppp_config=PppConfig(mru=1400, echo_interval_s=0))
    client.start(clock())
    run_client_and_ac(client, ac, clock, 5)
    _, session = ac.sessions[0x10]
    assert session.mru == 1400
    assert client.ppp is not None and client.ppp.get_timer() is None


def test_ac_refusing_the_session_is_by_peer() -> None:
    clock = FakeClock()
    client = make_client()
    client.start(clock())
    (padi,) = client.frames_to_send()
    ac = MiniAc(clock)
    ac.receive(padi)
    (pado,) = ac.out
    client.receive(pado, clock())
    (padr,) = client.frames_to_send()
    from vnf.codec.pppoe import TagType

    refusal = ac.discovery.make_pads_error(
        decode_discovery_frame(padr), AC_MAC, TagType.AC_SYSTEM_ERROR, "no resources"
    )
    client.receive(refusal, clock())
    assert client.next_event() == Disconnected("ac_system_error", by_peer=True)
