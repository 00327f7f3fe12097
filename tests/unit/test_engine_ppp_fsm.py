"""The RFC 1661 §4.1 table, and the engine executing it cell by cell."""

from __future__ import annotations

import pytest

from tests.helpers_ppp import make_lcp_engine, stimulate
from vnf.codec.ppp import ControlCode
from vnf.engines.ppp_fsm import (
    ILLEGAL,
    TIMER_STATES,
    TRANSITIONS,
    Action,
    Dropped,
    Event,
    LayerFlag,
    State,
)
from vnf.errors import LocalProtocolError

A = Action
S = State


def test_table_is_total() -> None:
    assert set(TRANSITIONS) == {(s, e) for s in State for e in Event}
    assert len(TRANSITIONS) == 160
    for actions, next_state in TRANSITIONS.values():
        assert isinstance(next_state, State)
        assert all(isinstance(a, Action) for a in actions)


@pytest.mark.parametrize(
    ("state", "event", "actions", "next_state"),
    [
        # a sample of cells, copied from the RFC 1661 §4.1 table
        (S.STARTING, Event.UP, (A.IRC, A.SCR), S.REQ_SENT),
        (S.OPENED, Event.DOWN, (A.TLD,), S.STARTING),
        (S.CLOSED, Event.OPEN, (A.IRC, A.SCR), S.REQ_SENT),
        (S.OPENED, Event.CLOSE, (A.TLD, A.IRC, A.STR), S.CLOSING),
        (S.ACK_SENT, Event.TO_PLUS, (A.SCR,), S.ACK_SENT),
        (S.REQ_SENT, Event.TO_MINUS, (A.TLF,), S.STOPPED),
        (S.STOPPED, Event.RCR_PLUS, (A.IRC, A.SCR, A.SCA), S.ACK_SENT),
        (S.ACK_RCVD, Event.RCR_PLUS, (A.SCA, A.TLU), S.OPENED),
        (S.ACK_RCVD, Event.RCR_MINUS, (A.SCN,), S.ACK_RCVD),
        (S.ACK_SENT, Event.RCA, (A.IRC, A.TLU), S.OPENED),
        (S.ACK_RCVD, Event.RCN, (A.SCR,), S.REQ_SENT),
        (S.OPENED, Event.RTR, (A.TLD, A.ZRC, A.STA), S.STOPPING),
        (S.CLOSING, Event.RTA, (A.TLF,), S.CLOSED),
        (S.OPENED, Event.RTA, (A.TLD, A.SCR), S.REQ_SENT),
        (S.OPENED, Event.RUC, (A.SCJ,), S.OPENED),
        (S.ACK_RCVD, Event.RXJ_PLUS, (), S.REQ_SENT),
        (S.OPENED, Event.RXJ_MINUS, (A.TLD, A.IRC, A.STR), S.STOPPING),
        (S.OPENED, Event.RXR, (A.SER,), S.OPENED),
    ],
)
def test_cells_match_rfc(state: State, event: Event, actions: tuple, next_state: State) -> None:
    assert TRANSITIONS[(state, event)] == (actions, next_state)


def test_illegal_cells_are_the_rfcs_dashes() -> None:
    assert (S.CLOSED, Event.UP) in ILLEGAL
    assert (S.INITIAL, Event.DOWN) in ILLEGAL
    assert (S.OPENED, Event.TO_PLUS) in ILLEGAL
    assert all((S.INITIAL, e) in ILLEGAL for e in Event if e >= Event.RCR_PLUS)
    # Up: 8, Down: 2, TO+: 5, TO-: 5, and the two "closed-link" states for 10 receive events
    assert len(ILLEGAL) == 8 + 2 + 5 + 5 + 10 * 2
    for state, event in ILLEGAL:
        assert TRANSITIONS[(state, event)] == ((), state)


def test_layer_actions_mark_entering_and_leaving_opened() -> None:
    for (state, _event), (actions, next_state) in TRANSITIONS.items():
        entering = state is not S.OPENED and next_state is S.OPENED
        leaving = state is S.OPENED and next_state is not S.OPENED
        assert (A.TLU in actions) == entering
        assert (A.TLD in actions) == leaving
        if A.SCR in actions or A.STR in actions or A.ZRC in actions:
            assert next_state in TIMER_STATES
        if A.TLF in actions:
            assert next_state in (S.INITIAL, S.CLOSED, S.STOPPED)


_SENT_CODE = {
    A.SCR: ControlCode.CONFIGURE_REQUEST,
    A.STR: ControlCode.TERMINATE_REQUEST,
    A.STA: ControlCode.TERMINATE_ACK,
    A.SCJ: ControlCode.CODE_REJECT,
    A.SER: ControlCode.ECHO_REPLY,
    A.SCA: ControlCode.CONFIGURE_ACK,
}
_FLAG = {
    A.TLU: LayerFlag.UP,
    A.TLD: LayerFlag.DOWN,
    A.TLS: LayerFlag.STARTED,
    A.TLF: LayerFlag.FINISHED,
}


@pytest.mark.parametrize("state", list(State))
@pytest.mark.parametrize("event", list(Event))
def test_engine_executes_each_cell(state: State, event: Event) -> None:
    engine, out, events = make_lcp_engine()
    engine.state = state  # type: ignore[attr-defined]
    engine.peer_magic = 0x12345678  # type: ignore[attr-defined]
    actions, next_state = TRANSITIONS[(state, event)]
    if (state, event) in ILLEGAL:
        if event is Event.UP:
            with pytest.raises(LocalProtocolError):
                stimulate(engine, event, 10.0)
        else:
            assert stimulate(engine, event, 10.0) == LayerFlag.NONE
            assert not out
            if event >= Event.RCR_PLUS:
                assert events == [Dropped("lcp", "not_open")]
        assert engine.state is state  # type: ignore[attr-defined]
        return
    flags = stimulate(engine, event, 10.0)
    assert engine.state is next_state  # type: ignore[attr-defined]
    expected_flags = LayerFlag.NONE
    for action in actions:
        expected_flags |= _FLAG.get(action, LayerFlag.NONE)
    assert flags == expected_flags
    sent_codes = [payload[0] for _, payload in out]
    expected_codes = [_SENT_CODE[a] for a in actions if a in _SENT_CODE]
    if A.SCN in actions:
        expected_codes.append(ControlCode.CONFIGURE_REJECT)
    assert sorted(sent_codes) == sorted(expected_codes)
    if next_state in TIMER_STATES and (A.SCR in actions or A.STR in actions or A.ZRC in actions):
        assert engine.deadline == pytest.approx(13.0)  # type: ignore[attr-defined]
    if next_state not in TIMER_STATES:
        assert engine.deadline is None  # type: ignore[attr-defined]
