"""RFC 1661 automaton properties: every (state, event) defined and executed as the table says."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers_ppp import make_lcp_engine, stimulate
from vnf.engines.ppp_fsm import ILLEGAL, TIMER_STATES, TRANSITIONS, Event, State
from vnf.errors import LocalProtocolError

pytestmark = pytest.mark.property


@settings(deadline=None, max_examples=400)
@given(state=st.sampled_from(list(State)), event=st.sampled_from(list(Event)))
def test_every_pair_is_defined_and_executed(state: State, event: Event) -> None:
    assert (state, event) in TRANSITIONS
    _, next_state = TRANSITIONS[(state, event)]
    assert next_state in State
    engine, _, _ = make_lcp_engine()
    engine.state = state  # type: ignore[attr-defined]
    engine.peer_magic = 0x12345678  # type: ignore[attr-defined]
    try:
        stimulate(engine, event, 5.0)
    except LocalProtocolError:
        assert (state, event) in ILLEGAL and event is Event.UP
        return
    expected = state if (state, event) in ILLEGAL else next_state
    assert engine.state is expected  # type: ignore[attr-defined]


@settings(deadline=None, max_examples=300)
@given(st.lists(st.sampled_from(list(Event)), max_size=40))
def test_random_walks_stay_consistent(events: list[Event]) -> None:
    engine, out, _ = make_lcp_engine(authenticator=True)
    now = 0.0
    for event in events:
        now += 1.0
        before = engine.state  # type: ignore[attr-defined]
        try:
            stimulate(engine, event, now)
        except LocalProtocolError:
            assert (before, event) in ILLEGAL
            continue
        state = engine.state  # type: ignore[attr-defined]
        assert state in State
        # §4.6: the restart timer runs exactly in the five timer states
        assert (engine.deadline is not None) == (state in TIMER_STATES)  # type: ignore[attr-defined]
    for _, payload in out:
        assert len(payload) >= 4 and int.from_bytes(payload[2:4], "big") == len(payload)
