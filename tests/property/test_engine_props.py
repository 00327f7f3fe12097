"""Arbitrary bytes into the engines' receive() never raise."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers_ppp import AC_MAC, CLIENT_MAC, PppPair, make_client
from vnf.clock import FakeClock
from vnf.codec.ppp import PppProtocol
from vnf.codec.pppoe import decode_discovery_frame, encode_session_frame
from vnf.engines.ppp_session import PppConfig, PppSession, Role
from vnf.engines.pppoe_discovery import AcDiscovery, CookieJar, PppoeClient
from vnf.errors import DecodeError

pytestmark = pytest.mark.property

protocols = st.one_of(
    st.sampled_from(
        [
            PppProtocol.LCP,
            PppProtocol.IPCP,
            PppProtocol.PAP,
            PppProtocol.CHAP,
            PppProtocol.IPV4,
            PppProtocol.IPV6CP,
        ]
    ),
    st.integers(0, 0xFFFF),
)
control_like = st.builds(
    lambda code, ident, body, fix: (
        bytes((code, ident)) + (len(body) + 4).to_bytes(2, "big") + body if fix else body
    ),
    st.integers(0, 16),
    st.integers(0, 255),
    st.binary(max_size=40),
    st.booleans(),
)
packets = st.lists(st.tuples(protocols, control_like), max_size=25)


def _exercise(session: PppSession, stream: list[tuple[int, bytes]], now: float) -> None:
    for protocol, payload in stream:
        session.receive(protocol, payload, now)
        session.packets_to_send()
        now += 0.5
        deadline = session.get_timer()
        if deadline is not None and deadline <= now:
            session.handle_timer(now)
    while session.next_event() is not None:
        pass


@settings(deadline=None, max_examples=200)
@given(role=st.sampled_from(list(Role)), stream=packets)
def test_fresh_session_receive_never_raises(role: Role, stream: list[tuple[int, bytes]]) -> None:
    session = PppSession(
        role,
        PppConfig(username="alice", password="wonderland"),
        magic=0x01020304,
        random_bytes=lambda n: b"\x07" * n,
    )
    session.open(0.0)
    _exercise(session, stream, 0.0)


@settings(deadline=None, max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(side=st.sampled_from(["ac", "peer"]), stream=packets)
def test_established_session_receive_never_raises(
    side: str, stream: list[tuple[int, bytes]]
) -> None:
    pair = PppPair()
    pair.dial(5)
    session = pair.ac if side == "ac" else pair.peer
    _exercise(session, stream, pair.now)


@settings(deadline=None, max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(
    flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=6),
    cut=st.integers(0, 40),
)
def test_mutated_dial_never_raises(flips: list[tuple[int, int]], cut: int) -> None:
    """Replay a real dial's packets with some bytes changed or the tail cut off."""
    reference = PppPair()
    reference.dial(5)
    ac = PppSession(
        Role.AUTHENTICATOR, PppConfig(), magic=0x11111111, random_bytes=lambda n: b"\x01" * n
    )
    peer = PppSession(
        Role.PEER,
        PppConfig(username="alice", password="wonderland"),
        magic=0x22222222,
        random_bytes=lambda n: b"\x02" * n,
    )
    ac.open(0.0)
    peer.open(0.0)
    for index, (direction, protocol, payload) in enumerate(reference.wire):
        data = bytearray(payload)
        for position, value in flips:
            if data and position % len(reference.wire) == index:
                data[position % len(data)] = value
        if index == cut % max(len(reference.wire), 1):
            data = data[: len(data) // 2]
        target = peer if direction == "ac>peer" else ac
        target.receive(protocol, bytes(data), 1.0)
    for session in (ac, peer):
        session.handle_timer(100.0)
        session.packets_to_send()
        while session.next_event() is not None:
            pass


frames = st.one_of(
    st.binary(max_size=80),
    st.builds(
        lambda body: CLIENT_MAC + AC_MAC + b"\x88\x63" + body,
        st.binary(max_size=60),
    ),
    st.builds(
        lambda code, sid, body: (
            CLIENT_MAC
            + AC_MAC
            + b"\x88\x63\x11"
            + bytes((code,))
            + sid.to_bytes(2, "big")
            + len(body).to_bytes(2, "big")
            + body
        ),
        st.sampled_from([0x07, 0x65, 0xA7, 0x09, 0x19]),
        st.integers(0, 3),
        st.binary(max_size=50),
    ),
)


@settings(deadline=None, max_examples=300)
@given(st.lists(frames, max_size=10))
def test_pppoe_client_receive_never_raises(stream: list[bytes]) -> None:
    client = PppoeClient(CLIENT_MAC, host_uniq=None)
    client.start(0.0)
    for frame in stream:
        client.receive(frame, 0.5)
        client.frames_to_send()
    client.handle_timer(10.0)
    while client.next_event() is not None:
        pass


@settings(deadline=None, max_examples=300)
@given(st.lists(frames, max_size=10))
def test_ac_discovery_never_raises_on_decodable_frames(stream: list[bytes]) -> None:
    ac = AcDiscovery("ac", ("internet",), CookieJar(b"k" * 32))
    for frame in stream:
        try:
            df = decode_discovery_frame(frame)
        except DecodeError:
            continue
        ac.classify_padi(df)
        ac.check_padr(df, 1.0)
        ac.make_pado(df, AC_MAC, 1, 1.0)
        ac.make_pads(df, AC_MAC, 7)


@settings(deadline=None, max_examples=200)
@given(stream=st.lists(st.one_of(frames, st.tuples(protocols, control_like)), max_size=12))
def test_subscriber_client_receive_never_raises(stream: list[object]) -> None:
    clock = FakeClock()
    client = make_client()
    client.start(clock())
    for item in stream:
        if isinstance(item, tuple):
            protocol, payload = item
            frame = encode_session_frame(CLIENT_MAC, AC_MAC, 0x10, protocol, payload)
        else:
            frame = item  # type: ignore[assignment]
        client.receive(frame, clock.advance(0.1))
        client.frames_to_send()
    client.handle_timer(clock.advance(100))
    while client.next_event() is not None:
        pass
