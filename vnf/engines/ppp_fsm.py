"""The RFC 1661 §4 option negotiation automaton, shared by LCP and IPCP.

Theory of operation
-------------------
RFC 1661 §4.1 specifies one state transition table (10 states x 16 events, each cell a list
of actions and a next state). :data:`TRANSITIONS` is that table, cell for cell; the RFC's
"-" cells (events that cannot happen in that state) are in :data:`ILLEGAL` and map to "no
action, same state" so the table is total. The options "r" (restart), "x" (crossed
connection) and "p" (passive) change nothing here: we never restart on Open, a crossed
connection is simply renegotiated, and we are never passive.

:class:`ControlProtocol` runs the table for one control protocol instance. It turns received
packets into events (§4.3: RCR+/RCR-, RCA, RCN, RTR, RTA, RUC, RXJ+/RXJ-, RXR), performs the
actions (§4.4: this-layer-up/down/started/finished, restart counter, send Configure-Request,
-Ack, -Nak/Reject, Terminate-Request/-Ack, Code-Reject, Echo-Reply) and keeps the restart
timer and counters of §4.6 (Max-Terminate, Max-Configure, Max-Failure). What differs between
LCP and IPCP - which options to request and how to judge the peer's - is the *option policy*,
the abstract methods a subclass implements.

Nothing here raises on peer data: a packet that cannot be parsed, carries a stale Identifier
or is not allowed in the current state becomes a :class:`Dropped` event. The four layer
actions are returned to the caller as :class:`LayerFlag` bits, so the enclosing
:class:`~vnf.engines.ppp_session.PppSession` decides what "this layer up" means (start
authentication, report the network up ...). Outgoing packets are appended to the list the
caller passed in as ``(protocol, payload)`` pairs; drops go to the ``emit`` callback.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum, IntFlag
from typing import ClassVar, Protocol

from vnf.codec.ppp import ControlCode, ControlPacket, control_bytes, decode_control
from vnf.errors import DecodeError, LocalProtocolError


@dataclass(frozen=True, slots=True)
class Dropped:
    """A received packet or frame was discarded; ``reason`` is a bounded snake_case label."""

    layer: str
    reason: str


class State(IntEnum):
    """RFC 1661 §4.2 states, numbered as in the table."""

    INITIAL = 0
    STARTING = 1
    CLOSED = 2
    STOPPED = 3
    CLOSING = 4
    STOPPING = 5
    REQ_SENT = 6
    ACK_RCVD = 7
    ACK_SENT = 8
    OPENED = 9


class Event(IntEnum):
    """RFC 1661 §4.3 events."""

    UP = 0
    DOWN = 1
    OPEN = 2
    CLOSE = 3
    TO_PLUS = 4
    TO_MINUS = 5
    RCR_PLUS = 6
    RCR_MINUS = 7
    RCA = 8
    RCN = 9
    RTR = 10
    RTA = 11
    RUC = 12
    RXJ_PLUS = 13
    RXJ_MINUS = 14
    RXR = 15


class Action(IntEnum):
    """RFC 1661 §4.4 actions."""

    TLU = 0  # This-Layer-Up
    TLD = 1  # This-Layer-Down
    TLS = 2  # This-Layer-Started
    TLF = 3  # This-Layer-Finished
    IRC = 4  # Initialize-Restart-Count
    ZRC = 5  # Zero-Restart-Count
    SCR = 6  # Send-Configure-Request
    SCA = 7  # Send-Configure-Ack
    SCN = 8  # Send-Configure-Nak/Rej
    STR = 9  # Send-Terminate-Request
    STA = 10  # Send-Terminate-Ack
    SCJ = 11  # Send-Code-Reject
    SER = 12  # Send-Echo-Reply


class LayerFlag(IntFlag):
    """The layer actions a call performed, for the enclosing session to act on."""

    NONE = 0
    UP = 1  # tlu
    DOWN = 2  # tld
    STARTED = 4  # tls
    FINISHED = 8  # tlf


Transition = tuple[tuple[Action, ...], State]

_S = State
_A = Action
_Cell = tuple[tuple[Action, ...], State] | None
X: None = None  # the RFC's "-"

# One row per event, one cell per state in State order (0 Initial ... 9 Opened), exactly as
# the table in RFC 1661 §4.1. X (None) is the RFC's "-".
# fmt: off
_ROWS: dict[Event, tuple[_Cell, ...]] = {
    Event.UP: (
        ((), _S.CLOSED),
        ((_A.IRC, _A.SCR), _S.REQ_SENT),
        X, X, X, X, X, X, X, X,
    ),
    Event.DOWN: (
        X,
        X,
        ((), _S.INITIAL),
        ((_A.TLS,), _S.STARTING),
        ((), _S.INITIAL),
        ((), _S.STARTING),
        ((), _S.STARTING),
        ((), _S.STARTING),
        ((), _S.STARTING),
        ((_A.TLD,), _S.STARTING),
    ),
    Event.OPEN: (
        ((_A.TLS,), _S.STARTING),
        ((), _S.STARTING),
        ((_A.IRC, _A.SCR), _S.REQ_SENT),
        ((), _S.STOPPED),
        ((), _S.STOPPING),
        ((), _S.STOPPING),
        ((), _S.REQ_SENT),
        ((), _S.ACK_RCVD),
        ((), _S.ACK_SENT),
        ((), _S.OPENED),
    ),
    Event.CLOSE: (
        ((), _S.INITIAL),
        ((_A.TLF,), _S.INITIAL),
        ((), _S.CLOSED),
        ((), _S.CLOSED),
        ((), _S.CLOSING),
        ((), _S.CLOSING),
        ((_A.IRC, _A.STR), _S.CLOSING),
        ((_A.IRC, _A.STR), _S.CLOSING),
        ((_A.IRC, _A.STR), _S.CLOSING),
        ((_A.TLD, _A.IRC, _A.STR), _S.CLOSING),
    ),
    Event.TO_PLUS: (
        X, X, X, X,
        ((_A.STR,), _S.CLOSING),
        ((_A.STR,), _S.STOPPING),
        ((_A.SCR,), _S.REQ_SENT),
        ((_A.SCR,), _S.REQ_SENT),
        ((_A.SCR,), _S.ACK_SENT),
        X,
    ),
    Event.TO_MINUS: (
        X, X, X, X,
        ((_A.TLF,), _S.CLOSED),
        ((_A.TLF,), _S.STOPPED),
        ((_A.TLF,), _S.STOPPED),
        ((_A.TLF,), _S.STOPPED),
        ((_A.TLF,), _S.STOPPED),
        X,
    ),
    Event.RCR_PLUS: (
        X, X,
        ((_A.STA,), _S.CLOSED),
        ((_A.IRC, _A.SCR, _A.SCA), _S.ACK_SENT),
        ((), _S.CLOSING),
        ((), _S.STOPPING),
        ((_A.SCA,), _S.ACK_SENT),
        ((_A.SCA, _A.TLU), _S.OPENED),
        ((_A.SCA,), _S.ACK_SENT),
        ((_A.TLD, _A.SCR, _A.SCA), _S.ACK_SENT),
    ),
    Event.RCR_MINUS: (
        X, X,
        ((_A.STA,), _S.CLOSED),
        ((_A.IRC, _A.SCR, _A.SCN), _S.REQ_SENT),
        ((), _S.CLOSING),
        ((), _S.STOPPING),
        ((_A.SCN,), _S.REQ_SENT),
        ((_A.SCN,), _S.ACK_RCVD),
        ((_A.SCN,), _S.REQ_SENT),
        ((_A.TLD, _A.SCR, _A.SCN), _S.REQ_SENT),
    ),
    Event.RCA: (
        X, X,
        ((_A.STA,), _S.CLOSED),
        ((_A.STA,), _S.STOPPED),
        ((), _S.CLOSING),
        ((), _S.STOPPING),
        ((_A.IRC,), _S.ACK_RCVD),
        ((_A.SCR,), _S.REQ_SENT),
        ((_A.IRC, _A.TLU), _S.OPENED),
        ((_A.TLD, _A.SCR), _S.REQ_SENT),
    ),
    Event.RCN: (
        X, X,
        ((_A.STA,), _S.CLOSED),
        ((_A.STA,), _S.STOPPED),
        ((), _S.CLOSING),
        ((), _S.STOPPING),
        ((_A.IRC, _A.SCR), _S.REQ_SENT),
        ((_A.SCR,), _S.REQ_SENT),
        ((_A.IRC, _A.SCR), _S.ACK_SENT),
        ((_A.TLD, _A.SCR), _S.REQ_SENT),
    ),
    Event.RTR: (
        X, X,
        ((_A.STA,), _S.CLOSED),
        ((_A.STA,), _S.STOPPED),
        ((_A.STA,), _S.CLOSING),
        ((_A.STA,), _S.STOPPING),
        ((_A.STA,), _S.REQ_SENT),
        ((_A.STA,), _S.REQ_SENT),
        ((_A.STA,), _S.REQ_SENT),
        ((_A.TLD, _A.ZRC, _A.STA), _S.STOPPING),
    ),
    Event.RTA: (
        X, X,
        ((), _S.CLOSED),
        ((), _S.STOPPED),
        ((_A.TLF,), _S.CLOSED),
        ((_A.TLF,), _S.STOPPED),
        ((), _S.REQ_SENT),
        ((), _S.REQ_SENT),
        ((), _S.ACK_SENT),
        ((_A.TLD, _A.SCR), _S.REQ_SENT),
    ),
    Event.RUC: (
        X, X,
        ((_A.SCJ,), _S.CLOSED),
        ((_A.SCJ,), _S.STOPPED),
        ((_A.SCJ,), _S.CLOSING),
        ((_A.SCJ,), _S.STOPPING),
        ((_A.SCJ,), _S.REQ_SENT),
        ((_A.SCJ,), _S.ACK_RCVD),
        ((_A.SCJ,), _S.ACK_SENT),
        ((_A.SCJ,), _S.OPENED),
    ),
    Event.RXJ_PLUS: (
        X, X,
        ((), _S.CLOSED),
        ((), _S.STOPPED),
        ((), _S.CLOSING),
        ((), _S.STOPPING),
        ((), _S.REQ_SENT),
        ((), _S.REQ_SENT),
        ((), _S.ACK_SENT),
        ((), _S.OPENED),
    ),
    Event.RXJ_MINUS: (
        X, X,
        ((_A.TLF,), _S.CLOSED),
        ((_A.TLF,), _S.STOPPED),
        ((_A.TLF,), _S.CLOSED),
        ((_A.TLF,), _S.STOPPED),
        ((_A.TLF,), _S.STOPPED),
        ((_A.TLF,), _S.STOPPED),
        ((_A.TLF,), _S.STOPPED),
        ((_A.TLD, _A.IRC, _A.STR), _S.STOPPING),
    ),
    Event.RXR: (
        X, X,
        ((), _S.CLOSED),
        ((), _S.STOPPED),
        ((), _S.CLOSING),
        ((), _S.STOPPING),
        ((), _S.REQ_SENT),
        ((), _S.ACK_RCVD),
        ((), _S.ACK_SENT),
        ((_A.SER,), _S.OPENED),
    ),
}
# fmt: on


def _build() -> tuple[dict[tuple[State, Event], Transition], frozenset[tuple[State, Event]]]:
    table: dict[tuple[State, Event], Transition] = {}
    illegal: set[tuple[State, Event]] = set()
    for event, row in _ROWS.items():
        for state, cell in zip(State, row, strict=True):
            if cell is None:
                illegal.add((state, event))
                table[(state, event)] = ((), state)
            else:
                table[(state, event)] = cell
    return table, frozenset(illegal)


TRANSITIONS, ILLEGAL = _build()
"""RFC 1661 §4.1: (state, event) -> (actions, next state), total over State x Event.
ILLEGAL holds the RFC's "-" cells (mapped to no action, same state)."""

TIMER_STATES = frozenset(
    (State.CLOSING, State.STOPPING, State.REQ_SENT, State.ACK_RCVD, State.ACK_SENT)
)
"""§4.6: "The Restart timer is used ... in the Closing, Stopping, Req-Sent, Ack-Rcvd and
Ack-Sent states"; leaving them stops it."""

RECEIVE_EVENTS = frozenset(
    (
        Event.RCR_PLUS,
        Event.RCR_MINUS,
        Event.RCA,
        Event.RCN,
        Event.RTR,
        Event.RTA,
        Event.RUC,
        Event.RXJ_PLUS,
        Event.RXJ_MINUS,
        Event.RXR,
    )
)


class Limits(Protocol):
    """The §4.6 counters and timer, as found on ``PppConfig``."""

    @property
    def restart_timer_s(self) -> float: ...
    @property
    def max_configure(self) -> int: ...
    @property
    def max_terminate(self) -> int: ...
    @property
    def max_failure(self) -> int: ...


# Verdict of a policy on a received Configure-Nak/Reject.
NAK_INVALID = 0  # not a valid reply to our request: discard
NAK_APPLIED = 1  # request updated: RCN
NAK_GIVE_UP = 2  # cannot converge (e.g. a required option rejected): close the layer

_REPLY_OVERHEAD = 4


class ControlProtocol:
    """One RFC 1661 automaton instance; subclasses supply the option policy.

    ``reason`` records why the layer is going down (first cause wins): ``"negotiation_failed"``
    (Max-Configure exhausted, catastrophic Code-Reject, an option we require refused),
    ``"terminated_by_peer"`` (Terminate-Request received) or what :meth:`close` was given.
    """

    protocol: ClassVar[int]
    layer: ClassVar[str]
    catastrophic_codes: ClassVar[frozenset[int]] = frozenset(range(1, 8))

    __slots__ = (
        "_emit",
        "_failures",
        "_limits",
        "_next_id",
        "_out",
        "_req_data",
        "_req_id",
        "_restart",
        "_term_data",
        "deadline",
        "reason",
        "state",
    )

    def __init__(
        self,
        limits: Limits,
        out: list[tuple[int, bytes]],
        emit: Callable[[Dropped], None],
    ) -> None:
        self.state = State.INITIAL
        self.deadline: float | None = None
        self.reason = ""
        self._limits = limits
        self._out = out
        self._emit = emit
        self._restart = 0
        self._failures = 0
        self._next_id = 1
        self._req_id = -1  # Identifier of the outstanding Configure-Request; -1: none
        self._req_data = b""
        self._term_data = b""

    # --- policy (subclasses) ------------------------------------------------------------

    def _build_request(self) -> bytes:
        """The Options field of our next Configure-Request."""
        raise NotImplementedError

    def _judge_request(self, data: bytes) -> tuple[bytes, bytes, bytes] | None:
        """Judge the peer's Configure-Request options.

        Returns ``(rejected, nak_suggested, nak_original)`` encoded option lists (all empty:
        acceptable, and the policy has recorded the values), or None if the options cannot
        be parsed (the packet is discarded).
        """
        raise NotImplementedError

    def _on_ack(self) -> None:
        """Our Configure-Request (``self._req_data``) was acknowledged."""

    def _on_nak(self, data: bytes, reject: bool) -> int:
        """Apply a Configure-Nak (``reject`` False) or -Reject; return a NAK_* verdict."""
        raise NotImplementedError

    def _receive_other(self, pkt: ControlPacket, now: float) -> Event | None:
        """Codes beyond the seven common ones; None when the packet was consumed."""
        return Event.RUC

    def _send_echo_reply(self, pkt: ControlPacket) -> None:
        """SER action (LCP only)."""

    def _layer_up(self, now: float) -> None:
        """Hook run on tlu before the flag is returned."""

    def _layer_down(self) -> None:
        """Hook run on tld."""

    # --- local events -------------------------------------------------------------------

    def up(self, now: float) -> LayerFlag:
        if (self.state, Event.UP) in ILLEGAL:
            raise LocalProtocolError(f"{self.layer}: lower layer Up in state {self.state.name}")
        return self._fire(Event.UP, now, None, b"")

    def down(self, now: float) -> LayerFlag:
        if (self.state, Event.DOWN) in ILLEGAL:
            return LayerFlag.NONE  # already down: nothing to undo
        return self._fire(Event.DOWN, now, None, b"")

    def open(self, now: float) -> LayerFlag:
        return self._fire(Event.OPEN, now, None, b"")

    def close(self, now: float, reason: str = "terminated", message: bytes = b"") -> LayerFlag:
        if not self.reason:
            self.reason = reason
        self._term_data = message
        return self._fire(Event.CLOSE, now, None, b"")

    def timeout(self, now: float) -> LayerFlag:
        """Run the restart timer if it is due (a stale or early call does nothing)."""
        if self.deadline is None or now < self.deadline:
            return LayerFlag.NONE
        self.deadline = None
        if self._restart > 0:
            return self._fire(Event.TO_PLUS, now, None, b"")
        if self.state in (State.REQ_SENT, State.ACK_RCVD, State.ACK_SENT) and not self.reason:
            self.reason = "negotiation_failed"  # §4.6 Max-Configure exhausted
        return self._fire(Event.TO_MINUS, now, None, b"")

    def _resume_opened(self, now: float) -> None:
        """Enter Opened directly with options another process negotiated (a restored session).

        No packet is sent and no :class:`LayerFlag` is returned - the layer was already up, and
        the peer must not notice - but the this-layer-up hook runs (LCP starts its keepalive at
        ``now``). The counters are what every path into Opened leaves: in the §4.1 table the
        last RCA before Opened does irc, the peer's last request was acknowledged (no
        Max-Failure count) and that Ack made our request Identifier stale.
        """
        if self.state is not State.INITIAL:
            raise LocalProtocolError(f"{self.layer}: cannot resume in state {self.state.name}")
        self.state = State.OPENED
        self.deadline = None
        self.reason = ""
        self._restart = self._limits.max_configure
        self._failures = 0
        self._req_id = -1
        self._layer_up(now)

    # --- received packets ---------------------------------------------------------------

    def receive(self, payload: bytes, now: float) -> LayerFlag:
        """One packet of this protocol. Never raises on its content."""
        try:
            pkt = decode_control(payload, 0, self.layer)
        except DecodeError as exc:
            return self._drop(exc.reason)
        code = pkt.code
        if code == ControlCode.CONFIGURE_REQUEST:
            return self._receive_configure_request(pkt, now)
        if code == ControlCode.CONFIGURE_ACK:
            if pkt.identifier != self._req_id:
                return self._drop("stale_id")
            if pkt.data != self._req_data:
                # §5.2: "the Configuration Options in a Configure-Ack packet MUST exactly
                # match those of the last transmitted Configure-Request. Invalid packets are
                # silently discarded."
                return self._drop("ack_mismatch")
            if self.state in (State.REQ_SENT, State.ACK_SENT, State.ACK_RCVD, State.OPENED):
                self._req_id = -1  # a duplicate of this Ack is now stale
                self._on_ack()
            return self._fire(Event.RCA, now, pkt, b"")
        if code in (ControlCode.CONFIGURE_NAK, ControlCode.CONFIGURE_REJECT):
            if pkt.identifier != self._req_id:
                return self._drop("stale_id")
            if self.state not in (State.REQ_SENT, State.ACK_SENT, State.ACK_RCVD, State.OPENED):
                return self._fire(Event.RCN, now, pkt, b"")
            verdict = self._on_nak(pkt.data, code == ControlCode.CONFIGURE_REJECT)
            if verdict == NAK_INVALID:
                return self._drop("bad_nak")
            self._req_id = -1
            if verdict == NAK_GIVE_UP:
                return self.close(now, "negotiation_failed")
            return self._fire(Event.RCN, now, pkt, b"")
        if code == ControlCode.TERMINATE_REQUEST:
            negotiating = (State.OPENED, State.REQ_SENT, State.ACK_RCVD, State.ACK_SENT)
            if self.state in negotiating and not self.reason:
                self.reason = "terminated_by_peer"
            return self._fire(Event.RTR, now, pkt, b"")
        if code == ControlCode.TERMINATE_ACK:
            return self._fire(Event.RTA, now, pkt, b"")
        if code == ControlCode.CODE_REJECT:
            if not pkt.data:
                return self._drop("bad_length")
            if pkt.data[0] in self.catastrophic_codes:
                if not self.reason:
                    self.reason = "negotiation_failed"
                return self._fire(Event.RXJ_MINUS, now, pkt, b"")
            return self._fire(Event.RXJ_PLUS, now, pkt, b"")
        event = self._receive_other(pkt, now)
        if event is None:
            return LayerFlag.NONE
        return self._fire(event, now, pkt, b"")

    def _receive_configure_request(self, pkt: ControlPacket, now: float) -> LayerFlag:
        if self.state in (State.INITIAL, State.STARTING):
            return self._drop("not_open")
        if self.state in (State.CLOSED, State.CLOSING, State.STOPPING):
            # Only sta or nothing happens here: do not judge (the policy records values).
            return self._fire(Event.RCR_PLUS, now, pkt, b"")
        judged = self._judge_request(pkt.data)
        if judged is None:
            return self._drop("bad_options")
        rejected, nak, nak_original = judged
        if not rejected and nak and self._failures >= self._limits.max_failure:
            # §4.6 Max-Failure: "Configure-Nak packets ... are converted to Configure-Reject"
            rejected = nak_original
        if rejected:
            reply = control_bytes(ControlCode.CONFIGURE_REJECT, pkt.identifier, rejected)
            return self._fire(Event.RCR_MINUS, now, pkt, reply)
        if nak:
            self._failures += 1
            reply = control_bytes(ControlCode.CONFIGURE_NAK, pkt.identifier, nak)
            return self._fire(Event.RCR_MINUS, now, pkt, reply)
        self._failures = 0
        reply = control_bytes(ControlCode.CONFIGURE_ACK, pkt.identifier, pkt.data)
        return self._fire(Event.RCR_PLUS, now, pkt, reply)

    # --- the automaton ------------------------------------------------------------------

    def _fire(self, event: Event, now: float, pkt: ControlPacket | None, reply: bytes) -> LayerFlag:
        key = (self.state, event)
        if key in ILLEGAL:
            if event in RECEIVE_EVENTS:
                return self._drop("not_open")
            return LayerFlag.NONE  # a stale timer or a repeated Down
        actions, next_state = TRANSITIONS[key]
        flags = LayerFlag.NONE
        for action in actions:
            if action is Action.TLU:
                flags |= LayerFlag.UP
                self._layer_up(now)
            elif action is Action.TLD:
                flags |= LayerFlag.DOWN
                self._layer_down()
            elif action is Action.TLS:
                flags |= LayerFlag.STARTED
            elif action is Action.TLF:
                flags |= LayerFlag.FINISHED
            elif action is Action.IRC:
                limits = self._limits
                self._restart = (
                    limits.max_terminate if Action.STR in actions else limits.max_configure
                )
            elif action is Action.ZRC:
                self._restart = 0
                self.deadline = now + self._limits.restart_timer_s
            elif action is Action.SCR:
                self._send_configure_request(now)
            elif action is Action.SCA or action is Action.SCN:
                if reply:
                    self._out.append((self.protocol, reply))
            elif action is Action.STR:
                self._restart -= 1
                self.deadline = now + self._limits.restart_timer_s
                ident = self._take_id()
                data = self._term_data
                self._out.append(
                    (self.protocol, control_bytes(ControlCode.TERMINATE_REQUEST, ident, data))
                )
            elif action is Action.STA:
                ident = pkt.identifier if pkt is not None else self._take_id()
                self._out.append(
                    (self.protocol, control_bytes(ControlCode.TERMINATE_ACK, ident, b""))
                )
            elif action is Action.SCJ and pkt is not None:
                self._send_code_reject(pkt)
            elif action is Action.SER and pkt is not None:
                self._send_echo_reply(pkt)
        self.state = next_state
        if next_state not in TIMER_STATES:
            self.deadline = None
        return flags

    def _send_configure_request(self, now: float) -> None:
        self._restart -= 1
        self.deadline = now + self._limits.restart_timer_s
        ident = self._take_id()
        data = self._build_request()
        self._req_id = ident
        self._req_data = data
        self._out.append((self.protocol, control_bytes(ControlCode.CONFIGURE_REQUEST, ident, data)))

    def _send_code_reject(self, pkt: ControlPacket) -> None:
        # §5.6: the Rejected-Packet field "SHOULD be truncated" to fit the peer's MRU.
        rejected = control_bytes(pkt.code, pkt.identifier, pkt.data)[: self._max_info()]
        self._out.append(
            (self.protocol, control_bytes(ControlCode.CODE_REJECT, self._take_id(), rejected))
        )

    def _max_info(self) -> int:
        """Room for a rejected packet inside one reply (LCP refines it with the peer's MRU)."""
        return 1492 - _REPLY_OVERHEAD

    def _take_id(self) -> int:
        ident = self._next_id
        self._next_id = (ident + 1) & 0xFF
        return ident

    def _drop(self, reason: str) -> LayerFlag:
        self._emit(Dropped(self.layer, reason))
        return LayerFlag.NONE
