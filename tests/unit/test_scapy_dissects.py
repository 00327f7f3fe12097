"""scapy (tests only) must dissect every frame our engines emit, with the right fields."""

from __future__ import annotations

import pytest
from scapy.layers.l2 import Ether
from scapy.layers.ppp import (
    PPP,
    PPP_CHAP,
    PPP_IPCP,
    PPP_CHAP_ChallengeResponse,
    PPP_LCP_Code_Reject,
    PPP_LCP_Configure,
    PPP_LCP_Echo,
    PPP_LCP_Protocol_Reject,
    PPP_LCP_Terminate,
    PPP_PAP_Request,
    PPP_PAP_Response,
    PPPoE,
    PPPoED,
)

from tests.helpers_ppp import AC_MAC, CLIENT_MAC, PppPair, Rng
from vnf.clock import FakeClock
from vnf.codec.ppp import ControlCode, PppProtocol, control_bytes
from vnf.codec.pppoe import TagType, decode_discovery_frame, encode_session_frame
from vnf.engines.ppp_session import AuthMethod, PppConfig
from vnf.engines.pppoe_discovery import AcDiscovery, CookieJar, PppoeClient

SID = 0x0010


def dissect(direction: str, protocol: int, payload: bytes) -> Ether:
    dst, src = (CLIENT_MAC, AC_MAC) if direction == "ac>peer" else (AC_MAC, CLIENT_MAC)
    pkt = Ether(encode_session_frame(dst, src, SID, protocol, payload))
    assert pkt[PPPoE].sessionid == SID
    assert pkt[PPPoE].len == len(payload) + 2
    assert pkt[PPP].proto == protocol
    return pkt


def first(pair: PppPair, direction: str, protocol: int, code: int) -> Ether:
    for d, p, payload in pair.wire:
        if d == direction and p == protocol and payload[0] == code:
            return dissect(d, p, payload)
    raise AssertionError(f"no {direction} {protocol:#x} code {code}")


def tags(pkt: Ether) -> dict[int, bytes]:
    return {t.tag_type: t.tag_value for t in pkt[PPPoED].payload.tag_list}


def test_discovery_frames() -> None:
    clock = FakeClock()
    client = PppoeClient(CLIENT_MAC, service_name="internet", host_uniq=b"\xaa\xbb")
    ac = AcDiscovery("vnf-ac", ("internet",), CookieJar(b"s" * 32))
    client.start(clock())
    (padi,) = client.frames_to_send()
    p = Ether(padi)
    assert p.dst == "ff:ff:ff:ff:ff:ff" and p[PPPoED].code == 0x09 and p[PPPoED].sessionid == 0
    assert tags(p) == {0x0101: b"internet", 0x0103: b"\xaa\xbb"}

    pado = ac.make_pado(decode_discovery_frame(padi), AC_MAC, 3, clock())
    p = Ether(pado)
    assert p[PPPoED].code == 0x07 and p.dst == "02:00:00:00:00:02"
    assert tags(p)[0x0102] == b"vnf-ac" and tags(p)[0x0103] == b"\xaa\xbb"
    assert len(tags(p)[0x0104]) == 29

    client.receive(pado, clock())
    (padr,) = client.frames_to_send()
    p = Ether(padr)
    assert p[PPPoED].code == 0x19 and p.dst == "02:00:00:00:00:01"
    assert tags(p)[0x0104] == tags(Ether(pado))[0x0104]

    pads = ac.make_pads(decode_discovery_frame(padr), AC_MAC, SID)
    p = Ether(pads)
    assert p[PPPoED].code == 0x65 and p[PPPoED].sessionid == SID
    assert tags(p) == {0x0101: b"internet", 0x0103: b"\xaa\xbb"}

    error = ac.make_pads_error(
        decode_discovery_frame(padr), AC_MAC, TagType.AC_SYSTEM_ERROR, "no resources"
    )
    assert tags(Ether(error))[0x0202] == b"no resources"
    assert Ether(error)[PPPoED].sessionid == 0

    client.receive(pads, clock())
    client.close(clock(), "bye")
    (padt,) = client.frames_to_send()
    p = Ether(padt)
    assert p[PPPoED].code == 0xA7 and p[PPPoED].sessionid == SID
    assert tags(p) == {0x0203: b"bye"}
    p = Ether(ac.make_padt(CLIENT_MAC, AC_MAC, SID, "admin"))
    assert p[PPPoED].code == 0xA7 and tags(p) == {0x0203: b"admin"}


@pytest.fixture
def chap_pair() -> PppPair:
    pair = PppPair(peer_config=PppConfig(username="alice", password="wonderland", mru=1500))
    pair.dial(10)
    return pair


def test_lcp_configure_request_ack_nak(chap_pair: PppPair) -> None:
    req = first(chap_pair, "ac>peer", PppProtocol.LCP, 1)[PPP_LCP_Configure]
    assert req.code == 1
    opts = {o.type: o for o in req.options}
    assert opts[1].max_recv_unit == 1492
    assert opts[3].auth_protocol == 0xC223 and opts[3].algorithm == 5
    assert opts[5].magic_number == 0x11111111

    # the peer asked MRU 1500, the AC Nak'ed it down to 1492 (RFC 2516 §7)
    nak = first(chap_pair, "ac>peer", PppProtocol.LCP, 3)[PPP_LCP_Configure]
    assert [(o.type, o.max_recv_unit) for o in nak.options] == [(1, 1492)]

    ack = first(chap_pair, "peer>ac", PppProtocol.LCP, 2)[PPP_LCP_Configure]
    assert ack.id == req.id and bytes(ack.options[0]) == bytes(req.options[0])


def test_lcp_configure_reject() -> None:
    pair = PppPair()
    pair.open()
    accm = control_bytes(ControlCode.CONFIGURE_REQUEST, 0x33, b"\x02\x06\x00\x00\x00\x00")
    pair.ac.receive(PppProtocol.LCP, accm, pair.now)
    (_, (protocol, payload)) = pair.ac.packets_to_send()
    rej = dissect("ac>peer", protocol, payload)[PPP_LCP_Configure]
    assert rej.code == 4 and rej.id == 0x33
    assert rej.options[0].type == 2 and rej.options[0].accm == 0


def test_lcp_terminate_echo_code_and_protocol_reject(chap_pair: PppPair) -> None:
    pair = chap_pair
    pair.peer.receive(PppProtocol.LCP, control_bytes(12, 0x44, b"zz"), pair.now)
    pair.peer.receive(PppProtocol.IPV6CP, b"\x01\x01\x00\x04", pair.now)
    pair.run(31)
    pair.ac.close(pair.now, "admin")
    pair.run(10)

    code_reject = first(pair, "peer>ac", PppProtocol.LCP, 7)[PPP_LCP_Code_Reject]
    assert code_reject.rejected_packet.code == 12 and code_reject.rejected_packet.id == 0x44

    protocol_reject = first(pair, "peer>ac", PppProtocol.LCP, 8)[PPP_LCP_Protocol_Reject]
    assert protocol_reject.rejected_protocol == 0x8057
    assert bytes(protocol_reject.rejected_information) == b"\x01\x01\x00\x04"

    echo = first(pair, "ac>peer", PppProtocol.LCP, 9)[PPP_LCP_Echo]
    assert echo.magic_number == 0x11111111
    reply = first(pair, "peer>ac", PppProtocol.LCP, 10)[PPP_LCP_Echo]
    assert reply.magic_number == 0x22222222 and reply.id == echo.id

    term_req = first(pair, "ac>peer", PppProtocol.LCP, 5)[PPP_LCP_Terminate]
    assert term_req.data == b"admin"
    term_ack = first(pair, "peer>ac", PppProtocol.LCP, 6)[PPP_LCP_Terminate]
    assert term_ack.id == term_req.id


def test_chap_frames(chap_pair: PppPair) -> None:
    challenge = first(chap_pair, "ac>peer", PppProtocol.CHAP, 1)[PPP_CHAP_ChallengeResponse]
    assert challenge.value_size == 16 and challenge.optional_name == b"vnf"
    response = first(chap_pair, "peer>ac", PppProtocol.CHAP, 2)[PPP_CHAP_ChallengeResponse]
    assert response.id == challenge.id and response.optional_name == b"alice"
    assert response.value_size == 16
    success = first(chap_pair, "ac>peer", PppProtocol.CHAP, 3)[PPP_CHAP]
    assert success.id == challenge.id and success.data == b"welcome"

    bad = PppPair(peer_config=PppConfig(username="alice", password="nope"))
    bad.dial(10)
    failure = first(bad, "ac>peer", PppProtocol.CHAP, 4)[PPP_CHAP]
    assert failure.code == 4 and failure.data == b"bad credentials"


def test_pap_frames() -> None:
    only_pap = (AuthMethod.PAP,)
    pair = PppPair(
        ac_config=PppConfig(auth_methods=only_pap),
        peer_config=PppConfig(username="bob", password="builder", auth_methods=only_pap),
    )
    pair.dial(10)
    request = first(pair, "peer>ac", PppProtocol.PAP, 1)[PPP_PAP_Request]
    assert request.username == b"bob" and request.password == b"builder"
    ack = first(pair, "ac>peer", PppProtocol.PAP, 2)[PPP_PAP_Response]
    assert ack.id == request.id and ack.message == b"welcome"

    bad = PppPair(
        ac_config=PppConfig(auth_methods=only_pap),
        peer_config=PppConfig(username="bob", password="x", auth_methods=only_pap),
    )
    bad.dial(10)
    nak = first(bad, "ac>peer", PppProtocol.PAP, 3)[PPP_PAP_Response]
    assert nak.code == 3 and nak.message == b"bad credentials"


def test_ipcp_frames(chap_pair: PppPair) -> None:
    req = first(chap_pair, "peer>ac", PppProtocol.IPCP, 1)[PPP_IPCP]
    assert [(o.type, o.data) for o in req.options] == [
        (3, "0.0.0.0"),
        (129, "0.0.0.0"),
        (131, "0.0.0.0"),
    ]
    nak = first(chap_pair, "ac>peer", PppProtocol.IPCP, 3)[PPP_IPCP]
    assert [(o.type, o.data) for o in nak.options] == [
        (3, "100.64.0.23"),
        (129, "198.18.0.53"),
        (131, "198.18.0.54"),
    ]
    ac_req = first(chap_pair, "ac>peer", PppProtocol.IPCP, 1)[PPP_IPCP]
    assert [(o.type, o.data) for o in ac_req.options] == [(3, "100.64.0.1")]
    acks = [
        dissect(d, p, pl)[PPP_IPCP]
        for d, p, pl in chap_pair.wire
        if p == PppProtocol.IPCP and pl[0] == 2
    ]
    assert {tuple(o.data for o in a.options) for a in acks} == {
        ("100.64.0.1",),
        ("100.64.0.23", "198.18.0.53", "198.18.0.54"),
    }


def test_random_is_deterministic_helper() -> None:
    assert Rng(1)(8) == Rng(1)(8) != Rng(2)(8)
