"""LCP option policy (RFC 1661 §5-§6) on top of the shared RFC 1661 automaton.

Theory of operation
-------------------
:class:`LcpEngine` is a :class:`~vnf.engines.ppp_fsm.ControlProtocol` with LCP's option
policy and LCP's extra codes (Protocol-Reject, Echo-Request/-Reply, Discard-Request).

What we request: Maximum-Receive-Unit (our ``mru``, at most 1492 on PPPoE, RFC 2516 §7),
Magic-Number (§6.4) and - on the authenticator only - Authentication-Protocol with the first
method of ``auth_methods`` (CHAP with MD5, RFC 1994 §3, or PAP, RFC 1334 §3). If the peer Naks
the authentication protocol we switch to the method it suggests when we offer it, else to our
next untried method; a peer that Rejects authentication, or Naks every method we offer, cannot
be served: the link is closed with reason ``"negotiation_failed"``.

How we judge the peer's request: an MRU above 1492 (PPPoE cannot carry more; a larger configured
``mru`` raises this limit) is Nak'ed down to the limit; a zero Magic-Number, or one equal to our
own (a looped-back link, §6.4), is Nak'ed with a fresh random value; the peer side accepts an
authentication protocol it supports and Naks one it does not with its own preferred method; ACCM
(RFC 2516 §7: "MUST NOT be negotiated"), Quality-Protocol, PFC, ACFC (our data plane expects the
two-byte Protocol field) and unknown options are Configure-Rejected. A malformed option (wrong
length for its type) is rejected; an Options field that cannot be parsed at all is dropped.
Max-Failure turns Naks into Rejects (handled by the automaton).

Keepalive: while Opened, an Echo-Request is sent every ``echo_interval_s``; an Echo-Reply with
the peer's magic clears the count of unanswered requests, and :meth:`LcpEngine.echo_tick`
reports a failure once ``echo_failures`` requests went unanswered. Echo-Requests from the peer
are answered with our magic (§5.8); one carrying our own magic means a loop and is dropped.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable
from typing import ClassVar, Protocol

from vnf.codec.ppp import (
    CHAP_MD5,
    ControlCode,
    ControlPacket,
    LcpOption,
    Option,
    PppProtocol,
    control_bytes,
    decode_options,
    encode_options,
)
from vnf.engines.ppp_fsm import (
    NAK_APPLIED,
    NAK_GIVE_UP,
    NAK_INVALID,
    ControlProtocol,
    Dropped,
    Event,
    Limits,
    State,
)
from vnf.errors import DecodeError, LocalProtocolError

MIN_MRU = 64
"""Smallest MRU we accept from a peer (the Nak floor); RFC 1661 §6.1 gives no minimum."""

DEFAULT_MRU = 1500
PPPOE_MAX_MRU = 1492
"""RFC 2516 §7: the largest MRU a peer may ask for (unless ``mru`` is configured larger,
RFC 4638 style). Our own ``mru`` only bounds what *we* receive."""
_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")


class AuthMethod(enum.Enum):
    """Authentication protocols we negotiate in LCP's Authentication-Protocol option."""

    PAP = "pap"
    CHAP_MD5 = "chap_md5"


AUTH_OPTION_VALUE: dict[AuthMethod, bytes] = {
    AuthMethod.PAP: _U16.pack(PppProtocol.PAP),
    AuthMethod.CHAP_MD5: _U16.pack(PppProtocol.CHAP) + bytes((CHAP_MD5,)),
}


def auth_method_of(value: bytes) -> AuthMethod | None:
    """The method an Authentication-Protocol option value names, if we implement it."""
    for method, encoded in AUTH_OPTION_VALUE.items():
        if value == encoded:
            return method
    return None


class LcpSettings(Limits, Protocol):
    """The part of ``PppConfig`` LCP reads."""

    @property
    def mru(self) -> int: ...
    @property
    def auth_methods(self) -> tuple[AuthMethod, ...]: ...
    @property
    def echo_interval_s(self) -> float: ...
    @property
    def echo_failures(self) -> int: ...


class LcpEngine(ControlProtocol):
    """LCP for one PPP link; ``authenticator`` selects the AC's policy."""

    protocol: ClassVar[int] = PppProtocol.LCP
    layer: ClassVar[str] = "lcp"
    # §5.6: Code-Reject of Configure-*, Terminate-*, Code-Reject or Protocol-Reject is fatal.
    catastrophic_codes: ClassVar[frozenset[int]] = frozenset(range(1, 9))

    __slots__ = (
        "_auth_index",
        "_auth_tried",
        "_cfg",
        "_echo_outstanding",
        "_random",
        "auth_method",
        "authenticator",
        "echo_deadline",
        "magic",
        "mru",
        "peer_magic",
        "peer_mru",
        "rejected_protocol",
    )

    def __init__(
        self,
        settings: LcpSettings,
        out: list[tuple[int, bytes]],
        emit: Callable[[Dropped], None],
        *,
        authenticator: bool,
        magic: int,
        random_bytes: Callable[[int], bytes],
    ) -> None:
        super().__init__(settings, out, emit)
        if authenticator and not settings.auth_methods:
            raise LocalProtocolError("an authenticator needs at least one auth method")
        self._cfg = settings
        self._random = random_bytes
        self.authenticator = authenticator
        self.magic = magic & 0xFFFFFFFF
        self.mru = min(settings.mru, 0xFFFF)
        self.peer_mru = min(DEFAULT_MRU, max(self.mru, PPPOE_MAX_MRU))
        self.peer_magic = 0
        self.auth_method: AuthMethod | None = None
        self._auth_index = 0
        self._auth_tried = 0
        self.echo_deadline: float | None = None
        self._echo_outstanding = 0
        self.rejected_protocol = 0

    def resume_opened(
        self, now: float, *, peer_magic: int, peer_mru: int, auth_method: AuthMethod | None
    ) -> None:
        """Be Opened with the values another process negotiated (``magic`` came with the
        constructor): no packet, no flag, and the keepalive starts at ``now``."""
        methods = self._cfg.auth_methods
        if self.authenticator and auth_method in methods:
            # A renegotiation's Configure-Request offers the method the link runs with, as
            # the original's would (a peer that Nak'ed our first choice moved the index).
            self._auth_index = methods.index(auth_method)
        self.peer_magic = peer_magic & 0xFFFFFFFF
        self.peer_mru = peer_mru
        self.auth_method = auth_method
        self._resume_opened(now)

    # --- option policy ------------------------------------------------------------------

    def _build_request(self) -> bytes:
        parts: list[bytes] = []
        if self.mru:
            parts.append(b"\x01\x04" + _U16.pack(self.mru))
        if self.authenticator:
            value = AUTH_OPTION_VALUE[self._cfg.auth_methods[self._auth_index]]
            parts.append(bytes((LcpOption.AUTH_PROTOCOL, len(value) + 2)) + value)
        if self.magic:
            parts.append(b"\x05\x06" + _U32.pack(self.magic))
        return b"".join(parts)

    def _judge_request(self, data: bytes) -> tuple[bytes, bytes, bytes] | None:
        try:
            options = decode_options(data, "lcp")
        except DecodeError:
            return None
        cfg = self._cfg
        rejected: list[Option] = []
        nak: list[Option] = []
        nak_original: list[Option] = []
        limit = max(cfg.mru, PPPOE_MAX_MRU)
        peer_mru = min(DEFAULT_MRU, limit)  # §6.1 default, capped by PPPoE
        peer_magic = 0
        method: AuthMethod | None = None
        for opt in options:
            kind, value = opt.type, opt.value
            if kind == LcpOption.MRU and len(value) == 2:
                wanted = _U16.unpack(value)[0]
                if MIN_MRU <= wanted <= limit:
                    peer_mru = wanted
                else:
                    # RFC 2516 §7: "the MRU option MUST NOT be negotiated to a larger size
                    # than 1492"; Nak with the largest value we accept.
                    nak.append(Option(LcpOption.MRU, _U16.pack(limit)))
                    nak_original.append(opt)
            elif kind == LcpOption.MAGIC_NUMBER and len(value) == 4:
                number = _U32.unpack(value)[0]
                if number == 0 or number == self.magic:
                    # §6.4: zero "MUST always be Nak'd"; our own value means a loop: Nak with
                    # a different one.
                    nak.append(Option(LcpOption.MAGIC_NUMBER, _U32.pack(self._new_magic(number))))
                    nak_original.append(opt)
                else:
                    peer_magic = number
            elif (
                kind == LcpOption.AUTH_PROTOCOL
                and not self.authenticator
                and cfg.auth_methods
                and len(value) >= 2
            ):
                method = auth_method_of(value)
                if method is None or method not in cfg.auth_methods:
                    method = None
                    nak.append(
                        Option(LcpOption.AUTH_PROTOCOL, AUTH_OPTION_VALUE[cfg.auth_methods[0]])
                    )
                    nak_original.append(opt)
            else:
                # ACCM, Quality-Protocol, PFC, ACFC, unknown types, wrong lengths, and an
                # authenticator asked to authenticate itself.
                rejected.append(opt)
        if rejected:
            return encode_options(rejected), b"", b""
        if nak:
            return b"", encode_options(nak), encode_options(nak_original)
        self.peer_mru = peer_mru
        self.peer_magic = peer_magic
        if not self.authenticator:
            self.auth_method = method
        return b"", b"", b""

    def _on_ack(self) -> None:
        if self.authenticator:
            self.auth_method = self._cfg.auth_methods[self._auth_index]

    def _on_nak(self, data: bytes, reject: bool) -> int:
        try:
            options = decode_options(data, "lcp")
        except DecodeError:
            return NAK_INVALID
        if reject:
            try:
                sent = decode_options(self._req_data, "lcp")
            except DecodeError:  # pragma: no cover - we built it
                return NAK_INVALID
            # §5.4: the rejected options "MUST NOT be reordered or modified in any way".
            if any(opt not in sent for opt in options):
                return NAK_INVALID
            for opt in options:
                if opt.type == LcpOption.MRU:
                    self.mru = 0
                elif opt.type == LcpOption.MAGIC_NUMBER:
                    self.magic = 0  # no loopback detection without it
                elif opt.type == LcpOption.AUTH_PROTOCOL:
                    return NAK_GIVE_UP  # we require authentication
            return NAK_APPLIED
        for opt in options:
            kind, value = opt.type, opt.value
            if kind == LcpOption.MRU and len(value) == 2:
                suggested = _U16.unpack(value)[0]
                if MIN_MRU <= suggested <= self._cfg.mru:
                    self.mru = suggested
            elif kind == LcpOption.MAGIC_NUMBER and len(value) == 4 and self.magic:
                self.magic = self._new_magic(_U32.unpack(value)[0])
            elif (
                kind == LcpOption.AUTH_PROTOCOL
                and self.authenticator
                and not self._next_auth_method(auth_method_of(value))
            ):
                return NAK_GIVE_UP
        return NAK_APPLIED

    def _next_auth_method(self, suggested: AuthMethod | None) -> bool:
        methods = self._cfg.auth_methods
        self._auth_tried |= 1 << self._auth_index
        if suggested in methods:
            index = methods.index(suggested)
            if not self._auth_tried & (1 << index):
                self._auth_index = index
                return True
        for index in range(len(methods)):
            if not self._auth_tried & (1 << index):
                self._auth_index = index
                return True
        return False

    def _new_magic(self, avoid: int) -> int:
        for _ in range(8):
            number = int.from_bytes(self._random(4), "big")
            if number and number != avoid and number != self.magic:
                return number
        return ((avoid ^ self.magic ^ 0x5A5A5A5A) & 0xFFFFFFFF) or 1

    # --- LCP-only codes -----------------------------------------------------------------

    def _receive_other(self, pkt: ControlPacket, now: float) -> Event | None:
        code = pkt.code
        if code == ControlCode.PROTOCOL_REJECT:
            if self.state is not State.OPENED:
                # §5.7: "received in any state other than the LCP Opened state SHOULD be
                # silently discarded".
                self._drop("not_opened")
                return None
            if len(pkt.data) < 2:
                self._drop("bad_length")
                return None
            rejected = _U16.unpack_from(pkt.data, 0)[0]
            if rejected == PppProtocol.LCP:
                if not self.reason:
                    self.reason = "negotiation_failed"
                return Event.RXJ_MINUS
            self.rejected_protocol = rejected
            return Event.RXJ_PLUS
        if code in (ControlCode.ECHO_REQUEST, ControlCode.ECHO_REPLY):
            if self.state is not State.OPENED:
                return Event.RXR  # no action outside Opened (§5.8: silently discard)
            if len(pkt.data) < 4:
                self._drop("bad_length")
                return None
            number = _U32.unpack_from(pkt.data, 0)[0]
            if self.magic and number == self.magic:
                self._drop("looped_back")
                return None
            if self.peer_magic and number != self.peer_magic:
                self._drop("bad_magic")
                return None
            if code == ControlCode.ECHO_REPLY:
                self._echo_outstanding = 0
            return Event.RXR
        if code == ControlCode.DISCARD_REQUEST:
            return Event.RXR
        return Event.RUC

    def _send_echo_reply(self, pkt: ControlPacket) -> None:
        if pkt.code != ControlCode.ECHO_REQUEST:
            return
        data = (_U32.pack(self.magic) + pkt.data[4:])[: self.peer_mru - 4]
        self._out.append(
            (self.protocol, control_bytes(ControlCode.ECHO_REPLY, pkt.identifier, data))
        )

    def _max_info(self) -> int:
        return max(self.peer_mru - 4, 4)

    def protocol_reject(self, protocol: int, payload: bytes) -> None:
        """§5.7: reject a packet of an unsupported protocol (only while Opened)."""
        if self.state is not State.OPENED:
            self._drop("unknown_protocol")
            return
        data = (_U16.pack(protocol) + payload)[: self.peer_mru - 4]
        self._out.append(
            (self.protocol, control_bytes(ControlCode.PROTOCOL_REJECT, self._take_id(), data))
        )

    # --- keepalive ----------------------------------------------------------------------

    def _layer_up(self, now: float) -> None:
        self._echo_outstanding = 0
        interval = self._cfg.echo_interval_s
        self.echo_deadline = now + interval if interval > 0 else None

    def _layer_down(self) -> None:
        self.echo_deadline = None

    def echo_tick(self, now: float) -> bool:
        """Run the keepalive timer if due; True when the peer stopped answering."""
        if self.echo_deadline is None or now < self.echo_deadline:
            return False
        if self.state is not State.OPENED:
            self.echo_deadline = None
            return False
        if self._echo_outstanding >= self._cfg.echo_failures:
            self.echo_deadline = None
            return True
        self._echo_outstanding += 1
        self.echo_deadline = now + self._cfg.echo_interval_s
        request = control_bytes(ControlCode.ECHO_REQUEST, self._take_id(), _U32.pack(self.magic))
        self._out.append((self.protocol, request))
        return False
