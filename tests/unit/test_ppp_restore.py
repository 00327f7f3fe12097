"""PppSession.snapshot()/restore(): a standby takes over an opened link, the peer notices nothing.

A pair is dialled through the normal path; the authenticator (or the peer) is snapshotted,
restored into a fresh engine and swapped into the pair, and the SAME other engine carries on.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.helpers_ppp import ADDRESSING, PppPair, Rng
from vnf.clock import FakeClock
from vnf.codec.ppp import (
    ChapCode,
    ChapValue,
    ControlCode,
    IpcpOption,
    Option,
    PppProtocol,
    chap_md5,
    control_bytes,
    decode_chap,
    decode_control,
    encode_chap,
    encode_options,
)
from vnf.engines.ppp_fsm import State
from vnf.engines.ppp_session import (
    Addressing,
    AuthMethod,
    Dropped,
    Event,
    LinkDown,
    NetworkUp,
    Phase,
    PppConfig,
    PppSession,
    PppSnapshot,
    Role,
)

AC_MAGIC = 0x11111111
PEER_MAGIC = 0x22222222
PEER_VIEW = Addressing(ADDRESSING.peer_ip, ADDRESSING.local_ip, ADDRESSING.dns1, ADDRESSING.dns2)


def link_down(events: list[Event]) -> list[str]:
    return [e.reason for e in events if isinstance(e, LinkDown)]


def lcp_sent(pair: PppPair, direction: str, code: int, since: int = 0) -> list[bytes]:
    return [
        payload
        for d, p, payload in pair.wire[since:]
        if d == direction and p == PppProtocol.LCP and payload[0] == code
    ]


def take_over_ac(pair: PppPair) -> PppSession:
    """The active CP dies now: its AC engine is replaced by one restored from a snapshot."""
    snap = pair.ac.snapshot()
    pair.ac = PppSession.restore(
        Role.AUTHENTICATOR, pair.ac_config, snap, pair.now, random_bytes=Rng(41)
    )
    pair.ac_events.clear()
    return pair.ac


def dialled(**kwargs: object) -> PppPair:
    """A pair dialled at t=0 (LCP and IPCP open at once), now at t=5."""
    pair = PppPair(clock=FakeClock(0.0), **kwargs)  # type: ignore[arg-type]
    pair.dial(5)
    assert pair.ac.phase is Phase.NETWORK and pair.peer.phase is Phase.NETWORK
    return pair


# --- what a snapshot carries -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pair_args", "expected"),
    [
        ({}, PppSnapshot(AC_MAGIC, PEER_MAGIC, 1492, AuthMethod.CHAP_MD5, "alice", ADDRESSING)),
        (
            {
                "ac_config": PppConfig(auth_methods=(AuthMethod.PAP,)),
                "peer_config": PppConfig(
                    username="bob", password="builder", auth_methods=(AuthMethod.PAP,), mru=1400
                ),
            },
            PppSnapshot(AC_MAGIC, PEER_MAGIC, 1400, AuthMethod.PAP, "bob", ADDRESSING),
        ),
    ],
)
def test_restored_authenticator_is_opened_and_quiet(
    pair_args: dict[str, object], expected: PppSnapshot
) -> None:
    pair = dialled(**pair_args)
    snap = pair.ac.snapshot()
    assert snap == expected
    restored = PppSession.restore(
        Role.AUTHENTICATOR, pair.ac_config, snap, 100.0, random_bytes=Rng(41)
    )
    assert restored.phase is Phase.NETWORK
    assert restored.lcp_state is State.OPENED and restored.ipcp_state is State.OPENED
    assert (restored.magic, restored.peer_magic, restored.mru) == (
        AC_MAGIC,
        PEER_MAGIC,
        snap.peer_mru,
    )
    assert restored.auth_method is expected.auth_method
    assert restored.username == expected.username
    assert restored.addressing == ADDRESSING
    assert not restored.finished
    assert restored.packets_to_send() == []
    assert restored.next_event() is None  # no LinkUp/NetworkUp: the link was already up
    assert restored.get_timer() == 100.0 + pair.ac_config.echo_interval_s
    assert restored.snapshot() == snap


def test_restored_sessions_stay_small() -> None:
    import gc
    import tracemalloc

    pair = dialled()
    snap, config, random_bytes = pair.ac.snapshot(), pair.ac_config, Rng(3)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    sessions = [
        PppSession.restore(Role.AUTHENTICATOR, config, snap, 1.0, random_bytes=random_bytes)
        for _ in range(300)
    ]
    gc.collect()
    per_session = (tracemalloc.get_traced_memory()[0] - before) / len(sessions)
    tracemalloc.stop()
    assert per_session < 3000, per_session  # the bound an originally dialled session meets


# --- the same peer carries on --------------------------------------------------------------


def test_echo_both_ways_with_the_restored_authenticator() -> None:
    pair = dialled(ac_config=PppConfig(echo_interval_s=10.0))
    restored = take_over_ac(pair)  # at t=5
    mark = len(pair.wire)

    # the peer's Echo-Request is answered with our magic
    request = control_bytes(ControlCode.ECHO_REQUEST, 0x5A, PEER_MAGIC.to_bytes(4, "big") + b"hi")
    restored.receive(PppProtocol.LCP, request, pair.now)
    ((protocol, reply),) = restored.packets_to_send()
    assert protocol == PppProtocol.LCP
    assert reply == control_bytes(ControlCode.ECHO_REPLY, 0x5A, AC_MAGIC.to_bytes(4, "big") + b"hi")

    # our keepalive restarts at the takeover: first Echo-Request at 5 + 10
    pair.run(9.9)
    assert not lcp_sent(pair, "ac>peer", ControlCode.ECHO_REQUEST, mark)
    pair.run(0.2)
    (echo,) = lcp_sent(pair, "ac>peer", ControlCode.ECHO_REQUEST, mark)
    assert decode_control(echo).data == AC_MAGIC.to_bytes(4, "big")
    (answer,) = lcp_sent(pair, "peer>ac", ControlCode.ECHO_REPLY, mark)
    assert decode_control(answer).data == PEER_MAGIC.to_bytes(4, "big")

    # ten minutes on, both keepalives are happy and nothing was dropped
    pair.run(600)
    assert not link_down(pair.ac_events) and not link_down(pair.peer_events)
    assert not [e for e in pair.ac_events + pair.peer_events if isinstance(e, Dropped)]
    assert len(lcp_sent(pair, "ac>peer", ControlCode.ECHO_REQUEST, mark)) >= 60
    peer_echoes = lcp_sent(pair, "peer>ac", ControlCode.ECHO_REQUEST, mark)
    replies = lcp_sent(pair, "ac>peer", ControlCode.ECHO_REPLY, mark)
    assert len(peer_echoes) >= 19 and len(replies) == len(peer_echoes)
    assert {decode_control(r).data[:4] for r in replies} == {AC_MAGIC.to_bytes(4, "big")}


def test_restored_authenticator_detects_echo_timeout() -> None:
    silent: list[bool] = []
    pair = dialled(
        ac_config=PppConfig(echo_interval_s=10.0, echo_failures=3),
        loss=lambda direction, protocol, payload: bool(silent) and direction == "peer>ac",
    )
    take_over_ac(pair)  # at t=5: requests at 15, 25, 35 go unanswered, 45 gives up
    mark = len(pair.wire)
    silent.append(True)
    pair.run(39.9)
    assert not link_down(pair.ac_events)
    assert len(lcp_sent(pair, "ac>peer", ControlCode.ECHO_REQUEST, mark)) == 3
    assert not lcp_sent(pair, "ac>peer", ControlCode.TERMINATE_REQUEST, mark)
    pair.run(0.2)
    assert lcp_sent(pair, "ac>peer", ControlCode.TERMINATE_REQUEST, mark)
    pair.run(6)  # Max-Terminate (2) unanswered Terminate-Requests, 3 s apart
    assert link_down(pair.ac_events) == ["echo_timeout"]


def test_peer_terminate_reaches_the_restored_authenticator() -> None:
    pair = dialled()
    take_over_ac(pair)
    mark = len(pair.wire)
    pair.peer.close(pair.now, "user request")
    pair.transfer()
    assert link_down(pair.peer_events) == ["terminated"]  # acked at once
    assert lcp_sent(pair, "ac>peer", ControlCode.TERMINATE_ACK, mark)
    pair.run(3.0)  # the AC waits one restart interval (zrc), as the original does
    assert link_down(pair.ac_events) == ["terminated_by_peer"]
    assert pair.ac.phase is Phase.DEAD and pair.ac.get_timer() is None


def test_restored_close_reaches_the_peer() -> None:
    pair = dialled()
    restored = take_over_ac(pair)
    mark = len(pair.wire)
    restored.close(pair.now, "admin reset")
    pair.transfer()
    (term,) = lcp_sent(pair, "ac>peer", ControlCode.TERMINATE_REQUEST, mark)
    assert decode_control(term).data == b"admin reset"
    assert link_down(pair.ac_events) == ["terminated"]
    pair.run(3.0)
    assert link_down(pair.peer_events) == ["terminated_by_peer"]


def test_ipcp_renegotiation_with_the_restored_authenticator() -> None:
    pair = dialled()
    take_over_ac(pair)
    # The peer restarts IPCP (as after a lost Configure-Ack): both sides agree again.
    request = encode_options(
        [
            Option(IpcpOption.IP_ADDRESS, PEER_VIEW.local_ip.to_bytes(4, "big")),
            Option(IpcpOption.PRIMARY_DNS, PEER_VIEW.dns1.to_bytes(4, "big")),
            Option(IpcpOption.SECONDARY_DNS, PEER_VIEW.dns2.to_bytes(4, "big")),
        ]
    )
    pair.ac.receive(
        PppProtocol.IPCP, control_bytes(ControlCode.CONFIGURE_REQUEST, 9, request), pair.now
    )
    assert pair.ac.ipcp_state is State.ACK_SENT
    pair.run(5)
    assert pair.events_of("ac", NetworkUp) == [NetworkUp(ADDRESSING)]
    assert (pair.ac.ipcp_state, pair.peer.ipcp_state) == (State.OPENED, State.OPENED)
    assert not link_down(pair.ac_events + pair.peer_events)


# --- snapshot() preconditions -------------------------------------------------------------------


def _not_opened() -> PppSession:
    return PppPair().ac


def _negotiating_lcp() -> PppSession:
    pair = PppPair()
    pair.ac.open(0.0)
    return pair.ac


def _authenticating() -> PppSession:
    pair = PppPair(auto_auth=False)
    pair.dial(5)
    assert pair.ac.phase is Phase.AUTHENTICATE
    return pair.ac


def _ipcp_renegotiating() -> PppSession:
    pair = dialled()
    request = control_bytes(ControlCode.CONFIGURE_REQUEST, 9, b"\x03\x06" + bytes(4))
    pair.ac.receive(PppProtocol.IPCP, request, pair.now)
    assert pair.ac.phase is Phase.NETWORK and pair.ac.ipcp_state is not State.OPENED
    return pair.ac


def _closed() -> PppSession:
    pair = dialled()
    pair.ac.lower_down(pair.now)
    return pair.ac


@pytest.mark.parametrize(
    "make", [_not_opened, _negotiating_lcp, _authenticating, _ipcp_renegotiating, _closed]
)
def test_snapshot_needs_an_opened_link(make: Callable[[], PppSession]) -> None:
    with pytest.raises(ValueError):
        make().snapshot()


def test_restore_rejects_an_authenticator_snapshot_without_auth_method() -> None:
    snap = PppSnapshot(AC_MAGIC, PEER_MAGIC, 1492, None, "", ADDRESSING)
    with pytest.raises(ValueError):
        PppSession.restore(Role.AUTHENTICATOR, PppConfig(), snap, 0.0, random_bytes=Rng(1))


# --- the emulator side: a restored PEER ----------------------------------------------------------


def test_restored_peer_carries_on() -> None:
    pair = dialled()
    snap = pair.peer.snapshot()
    assert snap == PppSnapshot(PEER_MAGIC, AC_MAGIC, 1492, AuthMethod.CHAP_MD5, "alice", PEER_VIEW)
    pair.peer = PppSession.restore(Role.PEER, pair.peer_config, snap, pair.now, random_bytes=Rng(7))
    peer = pair.peer
    assert (peer.phase, peer.lcp_state, peer.ipcp_state) == (
        Phase.NETWORK,
        State.OPENED,
        State.OPENED,
    )
    assert (peer.magic, peer.peer_magic, peer.addressing) == (PEER_MAGIC, AC_MAGIC, PEER_VIEW)
    assert peer.packets_to_send() == [] and peer.next_event() is None
    assert peer.get_timer() == pair.now + pair.peer_config.echo_interval_s
    pair.peer_events.clear()
    mark = len(pair.wire)

    # RFC 1994 §2.1: the authenticator may challenge again; the restored peer answers
    challenge = encode_chap(ChapValue(ChapCode.CHALLENGE, 0x44, b"\x07" * 16, b"vnf"))
    peer.receive(PppProtocol.CHAP, challenge, pair.now)
    ((protocol, payload),) = peer.packets_to_send()
    response = decode_chap(payload)
    assert protocol == PppProtocol.CHAP and isinstance(response, ChapValue)
    assert response.value == chap_md5(0x44, b"wonderland", b"\x07" * 16)
    assert response.name == b"alice"

    pair.run(300)  # echoes both ways keep the link up
    assert not link_down(pair.ac_events) and not link_down(pair.peer_events)
    assert not [e for e in pair.ac_events + pair.peer_events if isinstance(e, Dropped)]
    assert len(lcp_sent(pair, "peer>ac", ControlCode.ECHO_REQUEST, mark)) >= 9
    replies = lcp_sent(pair, "peer>ac", ControlCode.ECHO_REPLY, mark)
    assert len(replies) >= 9
    assert {decode_control(r).data[:4] for r in replies} == {PEER_MAGIC.to_bytes(4, "big")}

    peer.close(pair.now, "bye")
    pair.run(5)
    assert link_down(pair.peer_events) == ["terminated"]
    assert link_down(pair.ac_events) == ["terminated_by_peer"]


# --- original and restored side by side ---------------------------------------------------------

# Codes whose Identifier is ours to choose (the restored engine's counters start afresh);
# replies copy the Identifier of what they answer and are compared whole.
_OUR_IDENTIFIER = {
    ControlCode.CONFIGURE_REQUEST,
    ControlCode.TERMINATE_REQUEST,
    ControlCode.CODE_REJECT,
    ControlCode.PROTOCOL_REJECT,
    ControlCode.ECHO_REQUEST,
}


def _wire_view(protocol: int, payload: bytes) -> tuple[int, bytes]:
    if protocol in (PppProtocol.LCP, PppProtocol.IPCP) and payload[0] in _OUR_IDENTIFIER:
        return protocol, payload[:1] + b"\x00" + payload[2:]
    return protocol, payload


Packets = list[tuple[int, bytes]]
Stimulus = Callable[[PppSession, float], Packets]
"""Does something to a session; returns the packets it had to drain on the way."""


def _receive(protocol: int, payload: bytes) -> Stimulus:
    def stimulus(session: PppSession, now: float) -> Packets:
        session.receive(protocol, payload, now)
        return []

    return stimulus


def _restart_ipcp(session: PppSession, now: float) -> Packets:
    """The other side restarts IPCP with a request we accept (and then goes quiet)."""
    theirs = PEER_VIEW if session.role is Role.AUTHENTICATOR else ADDRESSING
    options = encode_options([Option(IpcpOption.IP_ADDRESS, theirs.local_ip.to_bytes(4, "big"))])
    session.receive(PppProtocol.IPCP, control_bytes(ControlCode.CONFIGURE_REQUEST, 7, options), now)
    return []


def _renegotiate_ipcp(session: PppSession, now: float) -> Packets:
    """The other side restarts IPCP with a request we accept, then acks ours."""
    _restart_ipcp(session, now)
    out = session.packets_to_send()
    ours = next(p for proto, p in out if proto == PppProtocol.IPCP and p[0] == 1)
    ack = bytes((ControlCode.CONFIGURE_ACK,)) + ours[1:]  # same Identifier and options
    session.receive(PppProtocol.IPCP, ack, now)
    return out


def _close(session: PppSession, now: float) -> Packets:
    session.close(now, "admin")
    return []


def _lower_down(session: PppSession, now: float) -> Packets:
    session.lower_down(now)
    return []


STIMULI: dict[str, Stimulus] = {
    "nothing": lambda session, now: [],
    "echo_request": _receive(PppProtocol.LCP, control_bytes(9, 3, b"\x00\x00\x00\x00abc")),
    "discard_request": _receive(PppProtocol.LCP, control_bytes(11, 4, b"\x00\x00\x00\x00")),
    "terminate_request": _receive(PppProtocol.LCP, control_bytes(5, 5, b"bye")),
    "lcp_configure_request": _receive(
        PppProtocol.LCP, control_bytes(1, 6, b"\x01\x04\x05\xd4\x05\x06\x0a\x0b\x0c\x0d")
    ),
    "ipcp_renegotiation": _renegotiate_ipcp,
    "ipcp_restart_unanswered": _restart_ipcp,
    "chap_challenge": _receive(
        PppProtocol.CHAP, encode_chap(ChapValue(ChapCode.CHALLENGE, 0x44, b"\x07" * 16, b"ac"))
    ),
    "ipv6cp": _receive(PppProtocol.IPV6CP, b"\x01\x01\x00\x04"),
    "unknown_lcp_code": _receive(PppProtocol.LCP, control_bytes(42, 8, b"??")),
    "protocol_reject_of_ipcp": _receive(PppProtocol.LCP, control_bytes(8, 9, b"\x80\x21")),
    "close": _close,
    "lower_down": _lower_down,
}


def _trace(session: PppSession, stimulus: Stimulus, now: float) -> list[object]:
    """Everything the peer (and the service) can observe: packets, events, timer, states.

    Dropped events are left out: they are local counters the peer never sees.
    """
    trace: list[object] = []

    def observe(at: float, drained: Packets) -> None:
        packets = [_wire_view(p, payload) for p, payload in drained + session.packets_to_send()]
        events = [e for e in iter(session.next_event, None) if not isinstance(e, Dropped)]
        states = (session.phase, session.lcp_state, session.ipcp_state, session.get_timer())
        trace.append((at, packets, events, states))

    observe(now, stimulus(session, now))
    while (deadline := session.get_timer()) is not None and deadline < 400:
        session.handle_timer(deadline)  # the other side has gone quiet
        observe(deadline, [])
    return trace


SETUPS: dict[str, dict[str, object]] = {
    "chap": {"ac_config": PppConfig(echo_interval_s=20.0)},
    # the peer Nak'ed CHAP: a renegotiation must offer PAP again, as the original would
    "pap_after_nak": {
        "ac_config": PppConfig(echo_interval_s=20.0),
        "peer_config": PppConfig(
            username="bob", password="builder", auth_methods=(AuthMethod.PAP,), mru=1400
        ),
    },
    # the AC rejected the DNS options: a renegotiating peer must not ask for them again
    "no_dns": {"addressing": Addressing(ADDRESSING.local_ip, ADDRESSING.peer_ip)},
}


@pytest.mark.parametrize("role", [Role.AUTHENTICATOR, Role.PEER])
@pytest.mark.parametrize("stimulus", list(STIMULI))
@pytest.mark.parametrize("setup", list(SETUPS))
def test_restored_engine_behaves_as_the_original(role: Role, stimulus: str, setup: str) -> None:
    pair = dialled(**SETUPS[setup])
    original = pair.ac if role is Role.AUTHENTICATOR else pair.peer
    config = pair.ac_config if role is Role.AUTHENTICATOR else pair.peer_config
    # Both sides opened LCP at t=0, so a takeover "at 0" gives the same keepalive schedule.
    restored = PppSession.restore(role, config, original.snapshot(), 0.0, random_bytes=Rng(41))
    expected = _trace(original, STIMULI[stimulus], pair.now)
    assert len(expected) > 1 or original.finished  # the comparison covers the timers too
    assert _trace(restored, STIMULI[stimulus], pair.now) == expected
