"""Micro-benchmarks of the codecs and of one full engine-pair dial (pytest-benchmark).

Inputs are built outside the timed region.
Run: ``.venv/bin/python -m pytest bench/test_bench_codecs.py``.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers_ppp import (
    AC_MAC,
    ADDRESSING,
    CLIENT_MAC,
    MiniAc,
    PppPair,
    fixture,
    make_client,
    run_client_and_ac,
)
from vnf.clock import FakeClock
from vnf.codec.ipv4 import UdpFlow, build_udp_packet, decode_ipv4, internet_checksum
from vnf.codec.ppp import decode_control, decode_options
from vnf.codec.pppoe import (
    decode_discovery_frame,
    decode_session_frame,
    encode_session_frame,
)
from vnf.engines.ppp_session import AuthRequested, PppConfig, PppSession, Role
from vnf.engines.pppoe_discovery import AcDiscovery, CookieJar

SUB = ADDRESSING.peer_ip
SERVER = 0xC612000A
PAYLOAD = bytes(18)


def test_decode_session_frame(benchmark: Any) -> None:
    frame = fixture("lcp_conf_req")
    assert benchmark(decode_session_frame, frame).session_id == 0x10


def test_encode_session_frame(benchmark: Any) -> None:
    payload = decode_session_frame(fixture("lcp_conf_req")).payload
    assert len(benchmark(encode_session_frame, CLIENT_MAC, AC_MAC, 0x10, 0xC021, payload)) == 41


def test_decode_lcp_options(benchmark: Any) -> None:
    payload = decode_session_frame(fixture("lcp_conf_req")).payload
    assert len(benchmark(lambda: decode_options(decode_control(payload).data))) == 3


def test_decode_discovery_frame(benchmark: Any) -> None:
    frame = fixture("pado")
    assert len(benchmark(decode_discovery_frame, frame).packet.tags) == 5


def test_make_pado_with_cookie(benchmark: Any) -> None:
    ac = AcDiscovery("vnf-ac", ("",), CookieJar(b"k" * 32))
    padi = decode_discovery_frame(fixture("padi"))
    assert benchmark(ac.make_pado, padi, AC_MAC, 1, 1000.0)


def test_check_padr_cookie(benchmark: Any) -> None:
    ac = AcDiscovery("vnf-ac", ("",), CookieJar(b"k" * 32))
    pado = decode_discovery_frame(
        ac.make_pado(decode_discovery_frame(fixture("padi")), AC_MAC, 1, 0)
    )
    from vnf.codec.pppoe import DiscoveryFrame, DiscoveryPacket, PppoeCode

    padr = DiscoveryFrame(AC_MAC, CLIENT_MAC, DiscoveryPacket(PppoeCode.PADR, 0, pado.packet.tags))
    assert benchmark(ac.check_padr, padr, 1.0).ok


def test_build_udp_packet(benchmark: Any) -> None:
    assert len(benchmark(build_udp_packet, SUB, SERVER, 40000, 9, PAYLOAD, 64, 7)) == 46


def test_udp_flow_build(benchmark: Any) -> None:
    flow = UdpFlow(SUB, SERVER, 40000, 9)
    assert len(benchmark(flow.build, PAYLOAD, 7)) == 46


def test_decode_ipv4(benchmark: Any) -> None:
    packet = build_udp_packet(SUB, SERVER, 40000, 9, PAYLOAD)
    assert benchmark(decode_ipv4, packet).src == SUB


def test_internet_checksum_1500(benchmark: Any) -> None:
    data = bytes(range(256)) * 5 + bytes(220)
    assert benchmark(internet_checksum, data) >= 0


def _dial_once() -> PppSession:
    ac_config = PppConfig()
    peer_config = PppConfig(username="alice", password="wonderland")
    ac = PppSession(
        Role.AUTHENTICATOR, ac_config, magic=0x11111111, random_bytes=lambda n: b"\x5a" * n
    )
    peer = PppSession(Role.PEER, peer_config, magic=0x22222222, random_bytes=lambda n: b"\xa5" * n)
    ac.open(0.0)
    peer.open(0.0)
    while True:
        while (event := ac.next_event()) is not None:
            if isinstance(event, AuthRequested):
                ok = event.credentials.verify(b"wonderland")  # type: ignore[union-attr]
                ac.auth_result(ok, 0.0, "", ADDRESSING)
        while peer.next_event() is not None:
            pass
        to_peer = ac.packets_to_send()
        to_ac = peer.packets_to_send()
        if not to_peer and not to_ac:
            return ac
        for protocol, payload in to_peer:
            peer.receive(protocol, payload, 0.0)
        for protocol, payload in to_ac:
            ac.receive(protocol, payload, 0.0)


def test_engine_pair_dial(benchmark: Any) -> None:
    """LCP + CHAP + IPCP, both ends, no I/O: the per-session CPU cost of setting up."""
    ac = benchmark(_dial_once)
    assert ac.addressing == ADDRESSING


def test_subscriber_client_full_dial(benchmark: Any) -> None:
    """PADI..PADS + PPP as whole Ethernet frames, client and a minimal AC."""

    def dial() -> list[object]:
        clock = FakeClock()
        client = make_client()
        client.start(clock())
        return run_client_and_ac(client, MiniAc(clock), clock, 1.0)

    assert len(benchmark(dial)) == 1


@pytest.mark.parametrize("n", [1])
def test_pair_helper_dial(benchmark: Any, n: int) -> None:
    def dial() -> PppPair:
        pair = PppPair()
        pair.dial(1)
        return pair

    assert benchmark(dial).ac.addressing == ADDRESSING
