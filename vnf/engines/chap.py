"""CHAP with MD5, the Challenge-Handshake Authentication Protocol (RFC 1994), both ends.

Theory of operation
-------------------
CHAP is a three-way handshake driven by the authenticator (RFC 1994 §2.1): Challenge (a
random value), Response (MD5 of Identifier, secret and challenge, §4.1), Success or Failure.

:class:`ChapAuthenticator` draws every challenge from the injected ``random_bytes`` ("Each
challenge value SHOULD be unique ... and unpredictable", §2.3) and changes the Identifier
with every Challenge (§4.1: "The Identifier field MUST be changed each time a Challenge is
sent"). With no Response within the restart interval it sends a new challenge, and gives up
after ``max_configure`` of them. A Response to the current challenge becomes
:class:`ChapCredentials` for the service (the engine never sees a secret), and
:meth:`ChapAuthenticator.answer` sends Success or Failure; a retransmitted Response after the
verdict gets the same verdict again (a lost Success is recovered).

:class:`ChapPeer` answers every Challenge with ``chap_md5(identifier, password, challenge)``
and reports Success or Failure for the identifier of its last Response. The peer has no timer
(the authenticator retransmits).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from vnf.codec.ppp import (
    ChapCode,
    ChapStatus,
    ChapValue,
    PppProtocol,
    chap_md5,
    decode_chap,
    encode_chap,
)
from vnf.engines.pap import AUTH_FAILED, AUTH_NONE, AUTH_SUCCEEDED
from vnf.engines.ppp_fsm import Dropped, Limits
from vnf.errors import DecodeError

_WAITING = 0
_PENDING = 1
_SUCCEEDED = 2
_FAILED = 3


@dataclass(frozen=True, slots=True)
class ChapCredentials:
    """What a CHAP peer answered to our challenge, for the service to check."""

    username: str
    identifier: int
    challenge: bytes
    response: bytes

    def verify(self, secret: bytes) -> bool:
        """True if ``response`` is MD5(identifier || secret || challenge), in constant time."""
        expected = chap_md5(self.identifier, secret, self.challenge)
        return hmac.compare_digest(expected, self.response)


class ChapAuthenticator:
    """The authenticator's side: challenge, collect the response, send the verdict."""

    protocol: ClassVar[int] = PppProtocol.CHAP

    __slots__ = (
        "_challenge",
        "_emit",
        "_identifier",
        "_limits",
        "_message",
        "_name",
        "_out",
        "_random",
        "_sent",
        "_size",
        "_status",
        "deadline",
    )

    def __init__(
        self,
        limits: Limits,
        out: list[tuple[int, bytes]],
        emit: Callable[[Dropped], None],
        *,
        random_bytes: Callable[[int], bytes],
        name: bytes,
        challenge_len: int,
    ) -> None:
        self._limits = limits
        self._out = out
        self._emit = emit
        self._random = random_bytes
        self._name = name
        self._size = max(1, min(challenge_len, 255))
        self._identifier = random_bytes(1)[0]
        self._challenge = b""
        self._sent = 0
        self._status = _WAITING
        self._message = b""
        self.deadline: float | None = None

    def start(self, now: float) -> None:
        self._send_challenge(now)

    def _send_challenge(self, now: float) -> None:
        self._identifier = (self._identifier + 1) & 0xFF
        self._challenge = self._random(self._size)
        self._sent += 1
        self.deadline = now + self._limits.restart_timer_s
        packet = ChapValue(ChapCode.CHALLENGE, self._identifier, self._challenge, self._name)
        self._out.append((self.protocol, encode_chap(packet)))

    def timeout(self, now: float) -> bool:
        """Re-challenge if due; True once ``max_configure`` challenges went unanswered."""
        if self.deadline is None or now < self.deadline or self._status != _WAITING:
            return False
        if self._sent >= self._limits.max_configure:
            self.deadline = None
            return True
        self._send_challenge(now)
        return False

    def receive(self, payload: bytes, now: float) -> ChapCredentials | None:
        try:
            pkt = decode_chap(payload)
        except DecodeError as exc:
            self._emit(Dropped("chap", exc.reason))
            return None
        if not isinstance(pkt, ChapValue) or pkt.code != ChapCode.RESPONSE:
            self._emit(Dropped("chap", "unexpected_code"))
            return None
        if pkt.identifier != self._identifier or not self._sent:
            self._emit(Dropped("chap", "stale_id"))
            return None
        status = self._status
        if status == _PENDING:
            self._emit(Dropped("chap", "auth_pending"))
            return None
        if status in (_SUCCEEDED, _FAILED):
            self._send_status(status == _SUCCEEDED)
            return None
        self._status = _PENDING
        self.deadline = None
        return ChapCredentials(
            pkt.name.decode("utf-8", "replace"), pkt.identifier, self._challenge, pkt.value
        )

    def answer(self, ok: bool, message: bytes) -> None:
        self._status = _SUCCEEDED if ok else _FAILED
        self._message = message
        self.deadline = None
        self._send_status(ok)

    def _send_status(self, ok: bool) -> None:
        code = ChapCode.SUCCESS if ok else ChapCode.FAILURE
        packet = ChapStatus(code, self._identifier, self._message)
        self._out.append((self.protocol, encode_chap(packet)))


class ChapPeer:
    """The peer's side: answer challenges with the shared secret."""

    protocol: ClassVar[int] = PppProtocol.CHAP
    deadline: ClassVar[float | None] = None

    __slots__ = ("_emit", "_identifier", "_name", "_out", "_secret", "done", "message", "responded")

    def __init__(
        self,
        out: list[tuple[int, bytes]],
        emit: Callable[[Dropped], None],
        *,
        username: str,
        password: str,
    ) -> None:
        self._out = out
        self._emit = emit
        self._name = username.encode()
        self._secret = password.encode()
        self._identifier = -1
        self.responded = False
        self.done = False
        self.message = ""

    def start(self, now: float) -> None:
        """Nothing to send: the authenticator speaks first."""

    def timeout(self, now: float) -> bool:
        return False

    def settle(self) -> None:
        """Success was inferred from the authenticator's next phase."""
        self.done = True

    def receive(self, payload: bytes, now: float) -> int:
        try:
            pkt = decode_chap(payload)
        except DecodeError as exc:
            self._emit(Dropped("chap", exc.reason))
            return AUTH_NONE
        if isinstance(pkt, ChapValue):
            if pkt.code != ChapCode.CHALLENGE:
                self._emit(Dropped("chap", "unexpected_code"))
                return AUTH_NONE
            self._identifier = pkt.identifier
            self.responded = True
            value = chap_md5(pkt.identifier, self._secret, pkt.value)
            response = ChapValue(ChapCode.RESPONSE, pkt.identifier, value, self._name)
            self._out.append((self.protocol, encode_chap(response)))
            return AUTH_NONE
        if pkt.identifier != self._identifier:
            self._emit(Dropped("chap", "stale_id"))
            return AUTH_NONE
        if self.done:
            self._emit(Dropped("chap", "duplicate"))
            return AUTH_NONE
        self.done = True
        self.message = pkt.message.decode("utf-8", "replace")
        return AUTH_SUCCEEDED if pkt.code == ChapCode.SUCCESS else AUTH_FAILED
