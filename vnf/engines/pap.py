"""PAP, the Password Authentication Protocol (RFC 1334 §2), both ends.

Theory of operation
-------------------
PAP is a two-way handshake driven by the peer (RFC 1334 §2.1): the peer sends
Authenticate-Request (Peer-ID, Passwd) "repeatedly ... until a valid reply packet is received,
or an optional retry counter expires", and the authenticator answers Authenticate-Ack or -Nak.

:class:`PapPeer` sends the request when LCP opens, retransmits it every restart interval with a
new Identifier (§2.2.1: "The Identifier field MUST be changed each time an Authenticate-Request
packet is issued") and gives up after ``max_configure`` requests; a reply to any of its recent
requests is accepted.

:class:`PapAuthenticator` never decides: a request becomes :class:`PapCredentials` for the
service (an ``AuthRequested`` event of the session) and :meth:`PapAuthenticator.answer` sends
the verdict. Retransmitted requests while the service is thinking are dropped (the answer goes
to the latest Identifier); one arriving after the verdict gets the same verdict again, so a
lost Ack or Nak is recovered by the peer's retransmission.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from vnf.codec.ppp import (
    PapCode,
    PapReply,
    PapRequest,
    PppProtocol,
    decode_pap,
    encode_pap_reply,
    encode_pap_request,
)
from vnf.engines.ppp_fsm import Dropped, Limits
from vnf.errors import DecodeError

AUTH_NONE = 0
AUTH_SUCCEEDED = 1
AUTH_FAILED = 2
"""Outcomes a peer-side authentication engine reports from ``receive``."""

_WAITING = 0
_PENDING = 1
_ACKED = 2
_NAKED = 3


@dataclass(frozen=True, slots=True)
class PapCredentials:
    """What a PAP peer sent, for the service to check."""

    username: str
    password: bytes


class PapAuthenticator:
    """The authenticator's side: turn requests into credentials, send the service's verdict."""

    protocol: ClassVar[int] = PppProtocol.PAP
    deadline: ClassVar[float | None] = None  # the peer retransmits, not us

    __slots__ = ("_emit", "_identifier", "_message", "_out", "_status")

    def __init__(self, out: list[tuple[int, bytes]], emit: Callable[[Dropped], None]) -> None:
        self._out = out
        self._emit = emit
        self._identifier = 0
        self._status = _WAITING
        self._message = b""

    def start(self, now: float) -> None:
        """Nothing to send: the peer speaks first."""

    def timeout(self, now: float) -> bool:
        return False

    def receive(self, payload: bytes, now: float) -> PapCredentials | None:
        try:
            pkt = decode_pap(payload)
        except DecodeError as exc:
            self._emit(Dropped("pap", exc.reason))
            return None
        if not isinstance(pkt, PapRequest):
            self._emit(Dropped("pap", "unexpected_code"))
            return None
        status = self._status
        if status == _PENDING:
            self._identifier = pkt.identifier  # answer the latest retransmission
            self._emit(Dropped("pap", "auth_pending"))
            return None
        if status in (_ACKED, _NAKED):
            code = PapCode.AUTHENTICATE_ACK if status == _ACKED else PapCode.AUTHENTICATE_NAK
            self._out.append((self.protocol, encode_pap_reply(code, pkt.identifier, self._message)))
            return None
        self._status = _PENDING
        self._identifier = pkt.identifier
        return PapCredentials(pkt.peer_id.decode("utf-8", "replace"), pkt.password)

    def answer(self, ok: bool, message: bytes) -> None:
        self._status = _ACKED if ok else _NAKED
        self._message = message[:255]
        code = PapCode.AUTHENTICATE_ACK if ok else PapCode.AUTHENTICATE_NAK
        self._out.append((self.protocol, encode_pap_reply(code, self._identifier, self._message)))


class PapPeer:
    """The peer's side: send Peer-ID/Passwd until answered."""

    protocol: ClassVar[int] = PppProtocol.PAP

    __slots__ = (
        "_emit",
        "_identifier",
        "_limits",
        "_out",
        "_password",
        "_peer_id",
        "_sent",
        "deadline",
        "done",
        "message",
    )

    def __init__(
        self,
        limits: Limits,
        out: list[tuple[int, bytes]],
        emit: Callable[[Dropped], None],
        *,
        username: str,
        password: str,
        first_identifier: int,
    ) -> None:
        self._limits = limits
        self._out = out
        self._emit = emit
        self._peer_id = username.encode()[:255]
        self._password = password.encode()[:255]
        self._identifier = first_identifier & 0xFF
        self._sent = 0
        self.deadline: float | None = None
        self.done = False
        self.message = ""

    @property
    def responded(self) -> bool:
        return self._sent > 0

    def start(self, now: float) -> None:
        self._send(now)

    def _send(self, now: float) -> None:
        if self._sent:
            self._identifier = (self._identifier + 1) & 0xFF
        self._sent += 1
        self.deadline = now + self._limits.restart_timer_s
        request = encode_pap_request(self._identifier, self._peer_id, self._password)
        self._out.append((self.protocol, request))

    def timeout(self, now: float) -> bool:
        """Retransmit if due; True once ``max_configure`` requests went unanswered."""
        if self.deadline is None or now < self.deadline:
            return False
        if self._sent >= self._limits.max_configure:
            self.deadline = None
            return True
        self._send(now)
        return False

    def settle(self) -> None:
        """Stop retransmitting: success was inferred from the authenticator's next phase."""
        self.done = True
        self.deadline = None

    def receive(self, payload: bytes, now: float) -> int:
        try:
            pkt = decode_pap(payload)
        except DecodeError as exc:
            self._emit(Dropped("pap", exc.reason))
            return AUTH_NONE
        if not isinstance(pkt, PapReply):
            self._emit(Dropped("pap", "unexpected_code"))
            return AUTH_NONE
        age = (self._identifier - pkt.identifier) & 0xFF
        if not self._sent or age >= self._sent:
            self._emit(Dropped("pap", "stale_id"))
            return AUTH_NONE
        if self.done:
            self._emit(Dropped("pap", "duplicate"))
            return AUTH_NONE
        self.done = True
        self.deadline = None
        self.message = pkt.message.decode("utf-8", "replace")
        return AUTH_SUCCEEDED if pkt.code == PapCode.AUTHENTICATE_ACK else AUTH_FAILED
