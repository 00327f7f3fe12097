"""PppSession pairs: AUTHENTICATOR ⇄ PEER through transfer() with a FakeClock."""

from __future__ import annotations

import pytest

from tests.helpers_ppp import ADDRESSING, PppPair, Rng
from vnf.codec.ppp import (
    ChapCode,
    ControlCode,
    IpcpOption,
    LcpOption,
    Option,
    PapCode,
    PppProtocol,
    control_bytes,
    decode_control,
    decode_options,
    encode_options,
)
from vnf.engines.ppp_fsm import State
from vnf.engines.ppp_session import (
    Addressing,
    AuthFailed,
    AuthMethod,
    AuthRequested,
    AuthSucceeded,
    ChapCredentials,
    Dropped,
    LinkDown,
    LinkUp,
    NetworkUp,
    PapCredentials,
    Phase,
    PppConfig,
    PppSession,
    Role,
)
from vnf.errors import LocalProtocolError

PAP_ONLY = (AuthMethod.PAP,)
CHAP_ONLY = (AuthMethod.CHAP_MD5,)


def kinds(events: list[object]) -> list[str]:
    return [type(e).__name__ for e in events if not isinstance(e, Dropped)]


def sent(pair: PppPair, direction: str, protocol: int, code: int | None = None) -> list[bytes]:
    return [
        payload
        for d, p, payload in pair.wire
        if d == direction and p == protocol and (code is None or payload[0] == code)
    ]


def link_down(events: list[object]) -> list[str]:
    return [e.reason for e in events if isinstance(e, LinkDown)]


def opened_session(role: Role = Role.AUTHENTICATOR, **config: object) -> PppSession:
    session = PppSession(role, PppConfig(**config), magic=0x01020304, random_bytes=Rng(5))  # type: ignore[arg-type]
    session.open(0.0)
    return session


def replies(session: PppSession) -> list[tuple[int, bytes]]:
    return session.packets_to_send()


# --- full dials ----------------------------------------------------------------------------


def test_full_dial_chap() -> None:
    pair = PppPair()
    pair.dial(10)
    assert kinds(pair.ac_events) == ["LinkUp", "AuthRequested", "AuthSucceeded", "NetworkUp"]
    assert kinds(pair.peer_events) == ["LinkUp", "AuthSucceeded", "NetworkUp"]
    request = pair.events_of("ac", AuthRequested)[0]
    assert isinstance(request, AuthRequested)
    assert isinstance(request.credentials, ChapCredentials)
    assert request.credentials.username == "alice"
    assert request.credentials.verify(b"wonderland")
    assert not request.credentials.verify(b"wonderland!")
    assert pair.ac.phase is Phase.NETWORK and pair.peer.phase is Phase.NETWORK
    assert pair.ac.auth_method is AuthMethod.CHAP_MD5
    assert pair.peer.auth_method is AuthMethod.CHAP_MD5
    assert pair.ac.username == "alice"
    assert pair.ac.peer_magic == 0x22222222 and pair.peer.peer_magic == 0x11111111
    assert pair.ac.mru == 1492 and pair.peer.mru == 1492


def test_ipcp_values_end_up_right() -> None:
    pair = PppPair()
    pair.dial(10)
    ac_up = pair.events_of("ac", NetworkUp)[0]
    peer_up = pair.events_of("peer", NetworkUp)[0]
    assert isinstance(ac_up, NetworkUp) and isinstance(peer_up, NetworkUp)
    assert ac_up.addressing == ADDRESSING
    assert peer_up.addressing == Addressing(
        local_ip=ADDRESSING.peer_ip,
        peer_ip=ADDRESSING.local_ip,
        dns1=ADDRESSING.dns1,
        dns2=ADDRESSING.dns2,
    )
    assert pair.peer.addressing == peer_up.addressing
    # the peer asked 0.0.0.0 and learned the values from the AC's Nak
    first_request = decode_control(sent(pair, "peer>ac", PppProtocol.IPCP, 1)[0])
    assert all(o.value == bytes(4) for o in decode_options(first_request.data))
    assert len(sent(pair, "ac>peer", PppProtocol.IPCP, ControlCode.CONFIGURE_NAK)) == 1


def test_full_dial_pap() -> None:
    pair = PppPair(
        ac_config=PppConfig(auth_methods=PAP_ONLY),
        peer_config=PppConfig(username="bob", password="builder", auth_methods=PAP_ONLY),
    )
    pair.dial(10)
    request = pair.events_of("ac", AuthRequested)[0]
    assert isinstance(request, AuthRequested)
    assert request.credentials == PapCredentials("bob", b"builder")
    assert kinds(pair.peer_events) == ["LinkUp", "AuthSucceeded", "NetworkUp"]
    assert pair.ac.auth_method is AuthMethod.PAP and pair.ac.username == "bob"


def test_pap_only_peer_naks_chap_with_pap() -> None:
    pair = PppPair(
        peer_config=PppConfig(username="bob", password="builder", auth_methods=PAP_ONLY),
    )
    pair.dial(10)
    naks = sent(pair, "peer>ac", PppProtocol.LCP, ControlCode.CONFIGURE_NAK)
    assert decode_options(decode_control(naks[0]).data) == (
        Option(LcpOption.AUTH_PROTOCOL, b"\xc0\x23"),
    )
    assert pair.ac.auth_method is AuthMethod.PAP
    assert kinds(pair.peer_events)[-1] == "NetworkUp"


def test_authenticator_offers_its_first_method() -> None:
    pair = PppPair(ac_config=PppConfig(auth_methods=(AuthMethod.PAP, AuthMethod.CHAP_MD5)))
    pair.dial(10)
    assert pair.ac.auth_method is AuthMethod.PAP
    assert not sent(pair, "peer>ac", PppProtocol.LCP, ControlCode.CONFIGURE_NAK)


def test_peer_rejecting_auth_fails_negotiation() -> None:
    pair = PppPair(peer_config=PppConfig(auth_methods=()))
    pair.dial(5)
    assert link_down(pair.ac_events) == ["negotiation_failed"]
    # RFC 1661: Terminate-Request in Req-Sent is only acknowledged; the peer gives up after
    # Max-Configure (in real life the AC's PADT ends it first).
    pair.run(60)
    rejects = sent(pair, "peer>ac", PppProtocol.LCP, ControlCode.CONFIGURE_REJECT)
    assert decode_options(decode_control(rejects[0]).data)[0].type == LcpOption.AUTH_PROTOCOL
    assert link_down(pair.ac_events) == ["negotiation_failed"]
    assert link_down(pair.peer_events) == ["terminated_by_peer"]
    assert not pair.events_of("ac", AuthRequested)


def test_no_common_auth_method_fails_negotiation() -> None:
    pair = PppPair(
        ac_config=PppConfig(auth_methods=PAP_ONLY),
        peer_config=PppConfig(username="alice", password="wonderland", auth_methods=CHAP_ONLY),
    )
    pair.dial(60)
    assert link_down(pair.ac_events) == ["negotiation_failed"]
    assert pair.ac.finished and pair.peer.finished


# --- authentication failures -----------------------------------------------------------------


@pytest.mark.parametrize("methods", [CHAP_ONLY, PAP_ONLY])
def test_wrong_password_fails_both_sides(methods: tuple[AuthMethod, ...]) -> None:
    pair = PppPair(
        ac_config=PppConfig(auth_methods=methods),
        peer_config=PppConfig(username="alice", password="guess", auth_methods=methods),
    )
    pair.dial(30)
    assert kinds(pair.ac_events) == ["LinkUp", "AuthRequested", "AuthFailed", "LinkDown"]
    assert kinds(pair.peer_events) == ["LinkUp", "AuthFailed", "LinkDown"]
    assert link_down(pair.ac_events) == ["auth_failed"]
    assert link_down(pair.peer_events) == ["auth_failed"]
    failed = pair.events_of("peer", AuthFailed)[0]
    assert isinstance(failed, AuthFailed) and failed.message == "bad credentials"
    assert not pair.events_of("peer", NetworkUp)
    assert sent(pair, "ac>peer", PppProtocol.LCP, ControlCode.TERMINATE_REQUEST)


def test_unknown_user_fails() -> None:
    pair = PppPair(peer_config=PppConfig(username="mallory", password="x"))
    pair.dial(30)
    assert link_down(pair.ac_events) == ["auth_failed"]


def test_service_never_answering_times_out() -> None:
    pair = PppPair(auto_auth=False, ac_config=PppConfig(auth_timeout_s=20.0))
    pair.dial(19)
    assert pair.pending_auth and not link_down(pair.ac_events)
    pair.run(20)
    assert link_down(pair.ac_events) == ["auth_timeout"]
    # a late answer for a session that is gone is ignored
    pair.answer(pair.pending_auth[0])
    assert not pair.ac.packets_to_send()


def test_late_auth_answer_still_works_within_timeout() -> None:
    pair = PppPair(auto_auth=False)
    pair.dial(10)
    assert kinds(pair.ac_events) == ["LinkUp", "AuthRequested"]
    pair.answer(pair.pending_auth.pop())
    pair.run(5)
    assert kinds(pair.peer_events)[-1] == "NetworkUp"


def test_chap_challenge_retransmitted_with_new_identifier_and_value() -> None:
    pair = PppPair(
        loss=lambda d, p, payload: d == "peer>ac" and p == PppProtocol.CHAP,
        ac_config=PppConfig(max_configure=4),
    )
    pair.dial(60)
    challenges = [decode_control(c) for c in sent(pair, "ac>peer", PppProtocol.CHAP)]
    assert len(challenges) == 4
    assert len({c.identifier for c in challenges}) == 4
    assert len({c.data for c in challenges}) == 4
    assert link_down(pair.ac_events) == ["auth_timeout"]


def test_chap_stale_response_is_dropped() -> None:
    pair = PppPair(auto_auth=False)
    pair.dial(10)
    response = sent(pair, "peer>ac", PppProtocol.CHAP, ChapCode.RESPONSE)[0]
    stale = bytes((response[0], (response[1] + 1) & 0xFF)) + response[2:]
    pair.ac.receive(PppProtocol.CHAP, stale, pair.now)
    assert pair.ac.next_event() == Dropped("chap", "stale_id")


def test_lost_chap_success_is_inferred_from_ipcp() -> None:
    pair = PppPair(
        loss=lambda d, p, payload: p == PppProtocol.CHAP and payload[0] == ChapCode.SUCCESS
    )
    pair.dial(20)
    assert kinds(pair.peer_events) == ["LinkUp", "AuthSucceeded", "NetworkUp"]


def test_lost_pap_ack_recovered_by_retransmission() -> None:
    lost: list[bytes] = []

    def loss(direction: str, protocol: int, payload: bytes) -> bool:
        if protocol == PppProtocol.PAP and payload[0] == PapCode.AUTHENTICATE_ACK and not lost:
            lost.append(payload)
            return True
        return False

    pair = PppPair(
        loss=loss,
        ac_config=PppConfig(auth_methods=PAP_ONLY),
        peer_config=PppConfig(username="bob", password="builder", auth_methods=PAP_ONLY),
    )
    # Drop the IPCP too until the PAP request is retransmitted, so the Ack must be resent.
    pair.open()
    pair.transfer()
    assert lost
    assert len(pair.events_of("ac", AuthRequested)) == 1
    pair.run(20)
    assert kinds(pair.peer_events)[-1] == "NetworkUp"
    assert len(pair.events_of("ac", AuthRequested)) == 1  # the service asked once


def test_pap_peer_gives_up_after_max_configure() -> None:
    pair = PppPair(
        loss=lambda d, p, payload: d == "peer>ac" and p == PppProtocol.PAP,
        ac_config=PppConfig(auth_methods=PAP_ONLY),
        peer_config=PppConfig(
            username="bob", password="builder", auth_methods=PAP_ONLY, max_configure=3
        ),
    )
    pair.dial(60)
    requests = [decode_control(r) for r in sent(pair, "peer>ac", PppProtocol.PAP)]
    assert len(requests) == 3
    assert len({r.identifier for r in requests}) == 3  # RFC 1334: changed on each request
    assert link_down(pair.peer_events) == ["auth_timeout"]


def test_auth_result_misuse_raises() -> None:
    pair = PppPair(auto_auth=False)
    pair.dial(5)
    with pytest.raises(LocalProtocolError):
        pair.peer.auth_result(True, pair.now, "", ADDRESSING)
    with pytest.raises(LocalProtocolError):
        pair.ac.auth_result(True, pair.now, "")
    pair.answer(pair.pending_auth.pop())
    with pytest.raises(LocalProtocolError):
        pair.ac.auth_result(True, pair.now, "", ADDRESSING)
    with pytest.raises(LocalProtocolError):
        pair.ac.open(pair.now)


# --- LCP options -------------------------------------------------------------------------------


def test_mru_above_1492_is_naked_to_1492() -> None:
    pair = PppPair(peer_config=PppConfig(username="alice", password="wonderland", mru=1500))
    pair.dial(10)
    nak = decode_control(sent(pair, "ac>peer", PppProtocol.LCP, ControlCode.CONFIGURE_NAK)[0])
    assert decode_options(nak.data) == (Option(LcpOption.MRU, b"\x05\xd4"),)
    assert pair.ac.mru == 1492
    assert kinds(pair.peer_events)[-1] == "NetworkUp"


def test_smaller_mru_is_accepted() -> None:
    pair = PppPair(peer_config=PppConfig(username="alice", password="wonderland", mru=1400))
    pair.dial(10)
    assert pair.ac.mru == 1400
    assert pair.peer.mru == 1492


def test_looped_back_magic_is_naked_with_a_new_one() -> None:
    pair = PppPair(peer_magic=0x11111111)  # the peer uses the AC's magic: looks like a loop
    pair.dial(10)
    nak = decode_control(sent(pair, "ac>peer", PppProtocol.LCP, ControlCode.CONFIGURE_NAK)[0])
    (option,) = decode_options(nak.data)
    assert option.type == LcpOption.MAGIC_NUMBER and option.value != b"\x11\x11\x11\x11"
    assert pair.peer.magic not in (0, 0x11111111)
    assert pair.ac.peer_magic == pair.peer.magic
    assert kinds(pair.peer_events)[-1] == "NetworkUp"


def test_zero_magic_is_naked() -> None:
    session = opened_session()
    request = control_bytes(ControlCode.CONFIGURE_REQUEST, 9, b"\x05\x06\x00\x00\x00\x00")
    session.receive(PppProtocol.LCP, request, 0.0)
    reply = decode_control(replies(session)[-1][1])
    assert reply.code == ControlCode.CONFIGURE_NAK
    assert decode_options(reply.data)[0].value != bytes(4)


@pytest.mark.parametrize(
    "option",
    [
        Option(LcpOption.ACCM, bytes(4)),  # RFC 2516 §7: MUST NOT be negotiated
        Option(LcpOption.PFC, b""),
        Option(LcpOption.ACFC, b""),
        Option(LcpOption.QUALITY_PROTOCOL, b"\xc0\x25\x00\x00\x00\x00"),
        Option(13, b"\x06"),  # Callback: unknown to us
        Option(LcpOption.MRU, b"\x05\xd4\x00"),  # malformed length
        Option(LcpOption.AUTH_PROTOCOL, b"\xc0\x23"),  # the AC does not authenticate itself
    ],
)
def test_unsupported_or_malformed_options_are_rejected(option: Option) -> None:
    session = opened_session()
    data = encode_options([Option(LcpOption.MRU, b"\x05\xd4"), option])
    session.receive(PppProtocol.LCP, control_bytes(ControlCode.CONFIGURE_REQUEST, 7, data), 0.0)
    reply = decode_control(replies(session)[-1][1])
    assert reply.code == ControlCode.CONFIGURE_REJECT and reply.identifier == 7
    assert decode_options(reply.data) == (option,)


def test_unparsable_options_are_dropped() -> None:
    session = opened_session()
    request = control_bytes(ControlCode.CONFIGURE_REQUEST, 7, b"\x01\x04\x05")
    session.receive(PppProtocol.LCP, request, 0.0)
    assert session.next_event() == Dropped("lcp", "bad_options")
    assert len(replies(session)) == 1  # only our own Configure-Request


def test_max_failure_turns_naks_into_rejects() -> None:
    session = opened_session(max_failure=3)
    replies(session)
    request = control_bytes(ControlCode.CONFIGURE_REQUEST, 1, b"\x01\x04\x23\x28")  # MRU 9000
    answers = []
    for _ in range(5):
        session.receive(PppProtocol.LCP, request, 0.0)
        answers.append(decode_control(replies(session)[-1][1]))
    assert [a.code for a in answers] == [3, 3, 3, 4, 4]
    assert answers[0].data == b"\x01\x04\x05\xd4"  # Nak: "use 1492"
    assert answers[-1].data == b"\x01\x04\x23\x28"  # Reject: the option as received


def test_max_configure_gives_up() -> None:
    session = opened_session(max_configure=4, restart_timer_s=3.0)
    now = 0.0
    requests = len(replies(session))
    while (deadline := session.get_timer()) is not None and deadline < 100:
        now = deadline
        session.handle_timer(now)
        requests += sum(1 for p, pl in replies(session) if pl[0] == ControlCode.CONFIGURE_REQUEST)
    assert requests == 4
    assert now == pytest.approx(12.0)
    events = list(iter(session.next_event, None))
    assert link_down(events) == ["negotiation_failed"]


def test_lost_configure_ack_recovers() -> None:
    dropped: list[bytes] = []

    def loss(direction: str, protocol: int, payload: bytes) -> bool:
        if protocol == PppProtocol.LCP and payload[0] == ControlCode.CONFIGURE_ACK and not dropped:
            dropped.append(payload)
            return True
        return False

    pair = PppPair(loss=loss)
    pair.dial(30)
    assert dropped
    assert kinds(pair.peer_events)[-1] == "NetworkUp"
    assert kinds(pair.ac_events)[-1] == "NetworkUp"


@pytest.mark.parametrize("seed", range(8))
def test_dial_survives_random_loss(seed: int) -> None:
    rng = Rng(100 + seed)
    pair = PppPair(loss=lambda d, p, payload: rng(1)[0] < 51)  # ~20 % loss
    pair.dial(120)
    assert pair.events_of("peer", NetworkUp), pair.peer_events
    assert pair.events_of("ac", NetworkUp)


# --- keepalive -------------------------------------------------------------------------------


def test_echo_keeps_a_healthy_link_up() -> None:
    pair = PppPair()
    pair.dial(600)
    assert not link_down(pair.ac_events) and not link_down(pair.peer_events)
    assert len(sent(pair, "ac>peer", PppProtocol.LCP, ControlCode.ECHO_REQUEST)) >= 19
    assert len(sent(pair, "peer>ac", PppProtocol.LCP, ControlCode.ECHO_REPLY)) >= 19
    assert len(sent(pair, "peer>ac", PppProtocol.LCP, ControlCode.ECHO_REQUEST)) >= 19


@pytest.mark.parametrize("silent", ["peer>ac", "ac>peer"])
def test_echo_timeout(silent: str) -> None:
    up = []

    def loss(direction: str, protocol: int, payload: bytes) -> bool:
        return bool(up) and direction == silent

    pair = PppPair(
        loss=loss,
        ac_config=PppConfig(echo_interval_s=10.0, echo_failures=3),
        peer_config=PppConfig(username="alice", password="wonderland", echo_interval_s=10.0),
    )
    pair.dial(5)  # LCP opened at t=0: requests at 10, 20, 30 go unanswered, 40 gives up
    up.append(True)
    pair.run(34.9)
    assert not link_down(pair.ac_events + pair.peer_events)
    pair.run(12)  # + Max-Terminate unanswered Terminate-Requests (2 x 3 s)
    if silent == "peer>ac":
        assert link_down(pair.ac_events) == ["echo_timeout"]
    else:
        assert link_down(pair.peer_events) == ["echo_timeout"]


def test_echo_interval_zero_disables_keepalive() -> None:
    pair = PppPair(
        ac_config=PppConfig(echo_interval_s=0),
        peer_config=PppConfig(username="alice", password="wonderland", echo_interval_s=0),
    )
    pair.dial(300)
    assert not sent(pair, "ac>peer", PppProtocol.LCP, ControlCode.ECHO_REQUEST)
    assert pair.ac.get_timer() is None


def test_echo_request_with_our_magic_is_a_loop() -> None:
    pair = PppPair()
    pair.dial(5)
    pair.ac_events.clear()
    looped = control_bytes(ControlCode.ECHO_REQUEST, 1, (0x11111111).to_bytes(4, "big"))
    pair.ac.receive(PppProtocol.LCP, looped, pair.now)
    assert pair.ac.next_event() == Dropped("lcp", "looped_back")
    assert not pair.ac.packets_to_send()


def test_echo_request_answered_with_our_magic() -> None:
    pair = PppPair()
    pair.dial(5)
    request = control_bytes(ControlCode.ECHO_REQUEST, 0x77, b"\x22\x22\x22\x22data")
    pair.ac.receive(PppProtocol.LCP, request, pair.now)
    ((protocol, payload),) = pair.ac.packets_to_send()
    assert protocol == PppProtocol.LCP
    assert decode_control(payload) == decode_control(
        control_bytes(ControlCode.ECHO_REPLY, 0x77, b"\x11\x11\x11\x11data")
    )


# --- rejects and drops -----------------------------------------------------------------------


def test_unknown_protocol_gets_protocol_reject_when_opened() -> None:
    pair = PppPair()
    pair.dial(5)
    pair.ac.receive(PppProtocol.IPV6CP, b"\x01\x05\x00\x04", pair.now)
    pair.ac.receive(0x0057, b"\x60" + bytes(39), pair.now)
    rejects = [decode_control(p) for _, p in pair.ac.packets_to_send()]
    assert [r.code for r in rejects] == [ControlCode.PROTOCOL_REJECT] * 2
    assert rejects[0].data == b"\x80\x57\x01\x05\x00\x04"
    assert rejects[1].data[:2] == b"\x00\x57"
    assert rejects[0].identifier != rejects[1].identifier
    pair.transfer()
    assert not link_down(pair.ac_events + pair.peer_events)  # RXJ+ for the peer


def test_unknown_protocol_before_opened_is_dropped() -> None:
    session = opened_session()
    replies(session)
    session.receive(0x8057, b"\x01\x01\x00\x04", 0.0)
    assert not replies(session)
    assert session.next_event() == Dropped("lcp", "unknown_protocol")


def test_ipv4_data_is_dropped() -> None:
    pair = PppPair()
    pair.dial(5)
    pair.ac.receive(PppProtocol.IPV4, b"\x45" + bytes(19), pair.now)
    assert pair.ac.next_event() == Dropped("ppp", "network_data")
    assert not pair.ac.packets_to_send()


def test_unknown_lcp_code_gets_code_reject() -> None:
    pair = PppPair()
    pair.dial(5)
    pair.peer.receive(PppProtocol.LCP, control_bytes(42, 3, b"hello"), pair.now)
    ((_, payload),) = pair.peer.packets_to_send()
    reject = decode_control(payload)
    assert reject.code == ControlCode.CODE_REJECT
    assert reject.data == control_bytes(42, 3, b"hello")


def test_unknown_ipcp_code_gets_code_reject() -> None:
    pair = PppPair()
    pair.dial(5)
    pair.ac.receive(PppProtocol.IPCP, control_bytes(ControlCode.ECHO_REQUEST, 3, b"abcd"), 0)
    ((protocol, payload),) = pair.ac.packets_to_send()
    assert protocol == PppProtocol.IPCP
    assert decode_control(payload).code == ControlCode.CODE_REJECT


def test_catastrophic_code_reject_ends_the_link() -> None:
    pair = PppPair()
    pair.dial(5)
    bogus = control_bytes(ControlCode.CODE_REJECT, 1, control_bytes(5, 1, b""))
    pair.ac.receive(PppProtocol.LCP, bogus, pair.now)
    pair.run(30)
    assert link_down(pair.ac_events) == ["negotiation_failed"]


def test_harmless_code_reject_is_ignored() -> None:
    pair = PppPair()
    pair.dial(5)
    rejected_echo = control_bytes(ControlCode.CODE_REJECT, 1, control_bytes(9, 1, b"abcd"))
    pair.ac.receive(PppProtocol.LCP, rejected_echo, pair.now)
    pair.run(5)
    assert not link_down(pair.ac_events)
    assert pair.ac.lcp_state is State.OPENED


def test_protocol_reject_of_ipcp_ends_the_link() -> None:
    pair = PppPair()
    pair.dial(5)
    reject = control_bytes(ControlCode.PROTOCOL_REJECT, 1, b"\x80\x21\x01\x01\x00\x04")
    pair.ac.receive(PppProtocol.LCP, reject, pair.now)
    pair.run(10)
    assert link_down(pair.ac_events) == ["negotiation_failed"]


def test_ipcp_before_network_phase_is_dropped() -> None:
    session = opened_session()
    session.receive(PppProtocol.IPCP, control_bytes(1, 1, b"\x03\x06\x00\x00\x00\x00"), 0.0)
    assert session.next_event() == Dropped("ipcp", "not_network_phase")


def test_auth_of_other_method_is_dropped() -> None:
    pair = PppPair(auto_auth=False)
    pair.dial(5)
    pair.ac.receive(PppProtocol.PAP, b"\x01\x01\x00\x06\x00\x00", pair.now)
    assert pair.ac.next_event() == Dropped("pap", "not_negotiated")


def test_ipcp_options_rejected_and_dns_without_server() -> None:
    no_dns = Addressing(local_ip=ADDRESSING.local_ip, peer_ip=ADDRESSING.peer_ip)
    pair = PppPair(addressing=no_dns)
    pair.dial(10)
    peer_up = pair.events_of("peer", NetworkUp)[0]
    assert isinstance(peer_up, NetworkUp)
    assert (peer_up.addressing.dns1, peer_up.addressing.dns2) == (0, 0)
    assert peer_up.addressing.local_ip == ADDRESSING.peer_ip
    rejects = sent(pair, "ac>peer", PppProtocol.IPCP, ControlCode.CONFIGURE_REJECT)
    assert {o.type for o in decode_options(decode_control(rejects[0]).data)} == {
        IpcpOption.PRIMARY_DNS,
        IpcpOption.SECONDARY_DNS,
    }
    # IP-Compression-Protocol (VJ) from a peer is rejected
    compression = encode_options([Option(IpcpOption.IP_COMPRESSION_PROTOCOL, b"\x00\x2d\x0f\x01")])
    pair.ac.receive(PppProtocol.IPCP, control_bytes(1, 0x40, compression), pair.now)
    reply = decode_control(pair.ac.packets_to_send()[-1][1])
    assert reply.code == ControlCode.CONFIGURE_REJECT
    assert reply.data == compression


def test_ipcp_peer_without_address_gets_one_suggested() -> None:
    pair = PppPair()
    pair.dial(5)
    dns_only = encode_options([Option(IpcpOption.PRIMARY_DNS, bytes(4))])
    pair.ac.receive(PppProtocol.IPCP, control_bytes(1, 0x41, dns_only), pair.now)
    reply = decode_control(pair.ac.packets_to_send()[-1][1])
    assert reply.code == ControlCode.CONFIGURE_NAK
    assert Option(IpcpOption.IP_ADDRESS, ADDRESSING.peer_ip.to_bytes(4, "big")) in decode_options(
        reply.data
    )


# --- termination ---------------------------------------------------------------------------


def test_terminate_from_peer() -> None:
    pair = PppPair()
    pair.dial(5)
    pair.peer.close(pair.now, "user request")
    pair.run(10)
    assert link_down(pair.peer_events) == ["terminated"]
    assert link_down(pair.ac_events) == ["terminated_by_peer"]
    term = decode_control(sent(pair, "peer>ac", PppProtocol.LCP, ControlCode.TERMINATE_REQUEST)[0])
    assert term.data == b"user request"
    assert pair.ac.phase is Phase.DEAD and pair.peer.phase is Phase.DEAD


def test_terminate_from_authenticator() -> None:
    pair = PppPair()
    pair.dial(5)
    pair.ac.close(pair.now)
    pair.transfer()
    assert link_down(pair.ac_events) == ["terminated"]  # Terminate-Ack came back at once
    assert not link_down(pair.peer_events)  # the peer waits one restart interval (zrc)
    pair.run(3.0)
    assert link_down(pair.peer_events) == ["terminated_by_peer"]


def test_terminate_without_answer_times_out_after_max_terminate() -> None:
    pair = PppPair(loss=lambda d, p, payload: d == "peer>ac" and payload[0] == 6)
    pair.dial(5)
    pair.ac.close(pair.now)
    pair.run(5.9)
    assert not link_down(pair.ac_events)
    pair.run(0.2)
    assert link_down(pair.ac_events) == ["terminated"]
    assert len(sent(pair, "ac>peer", PppProtocol.LCP, ControlCode.TERMINATE_REQUEST)) == 2


def test_lower_down_finishes_immediately() -> None:
    pair = PppPair()
    pair.dial(5)
    pair.ac.lower_down(pair.now)
    assert pair.ac.next_event() == LinkDown("lower_down")
    assert pair.ac.get_timer() is None
    pair.ac.receive(PppProtocol.LCP, control_bytes(9, 1, b"\x22\x22\x22\x22"), pair.now)
    assert pair.ac.next_event() == Dropped("ppp", "link_closed")
    pair.ac.close(pair.now)
    assert pair.ac.next_event() is None


def test_peer_renegotiation_after_network_up_ends_session() -> None:
    pair = PppPair()
    pair.dial(5)
    request = control_bytes(ControlCode.CONFIGURE_REQUEST, 0x99, b"\x05\x06\x22\x22\x22\x23")
    pair.ac.receive(PppProtocol.LCP, request, pair.now)
    pair.ac.packets_to_send()
    pair.run(10)
    assert link_down(pair.ac_events) == ["terminated_by_peer"]


def test_events_are_past_tense_and_linkup_is_reported_once() -> None:
    pair = PppPair()
    pair.dial(5)
    assert sum(isinstance(e, LinkUp) for e in pair.ac_events) == 1
    assert pair.events_of("ac", AuthSucceeded)


# --- footprint ---------------------------------------------------------------------------------


def test_per_session_objects_have_no_instance_dict() -> None:
    pair = PppPair(
        ac_config=PppConfig(auth_methods=PAP_ONLY),
        peer_config=PppConfig(username="bob", password="builder", auth_methods=PAP_ONLY),
    )
    pair.dial(5)
    chap = PppPair()
    chap.dial(5)
    objects = [pair.ac, pair.peer, pair.ac._lcp, pair.ac._ipcp]
    objects += [pair.ac._authenticator, pair.peer._peer_auth]
    objects += [chap.ac._authenticator, chap.peer._peer_auth]
    for obj in objects:
        assert obj is not None
        assert not hasattr(obj, "__dict__"), type(obj).__name__


def test_an_established_session_costs_a_few_kilobytes() -> None:
    import gc
    import tracemalloc

    config = PppConfig()
    random_bytes = Rng(11)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    sessions = []
    for i in range(300):
        pair = PppPair(ac_config=config, ac_magic=0x100 + i)
        pair.ac = PppSession(Role.AUTHENTICATOR, config, magic=0x100 + i, random_bytes=random_bytes)
        pair.dial(1)
        pair.wire.clear()
        sessions.append(pair.ac)
        del pair
    gc.collect()
    per_session = (tracemalloc.get_traced_memory()[0] - before) / len(sessions)
    tracemalloc.stop()
    assert all(s.phase is Phase.NETWORK for s in sessions)
    assert per_session < 3000, per_session
