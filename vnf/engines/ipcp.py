"""IPCP option policy (RFC 1332 §3, RFC 1877) on top of the shared RFC 1661 automaton.

Theory of operation
-------------------
:class:`IpcpEngine` is a :class:`~vnf.engines.ppp_fsm.ControlProtocol` that differs from LCP
only in its option policy. It is opened by the session once authentication succeeded (RFC 1661
§3.5: NCPs start in the Network-Layer Protocol phase).

Authenticator (the AC): :meth:`IpcpEngine.configure` gives it the :class:`Addressing` the
service allocated. It requests its own IP-Address (``local_ip``) and judges the peer's request:
IP-Address 0.0.0.0 - or any value other than ``peer_ip`` - is Nak'ed with ``peer_ip``; a request
without IP-Address gets one appended to a Nak (RFC 1332 §3.3: "the option SHOULD be appended
to a Configure-Nak"); Primary/Secondary-DNS (RFC 1877 §1.1, §1.3) are Nak'ed with ``dns1`` /
``dns2``, or rejected when we have none; IP-Compression-Protocol, the deprecated IP-Addresses
and NBNS are rejected.

Peer (the client): requests IP-Address, Primary-DNS and Secondary-DNS all 0.0.0.0, adopts the
values a Configure-Nak suggests and requests them again until they are acknowledged; it accepts
the AC's non-zero IP-Address and rejects anything else. A Reject of IP-Address leaves the peer
without an address, so IPCP gives up (the session closes with ``"negotiation_failed"``).

The network is up (this-layer-up) when both directions are acknowledged;
:meth:`IpcpEngine.addressing` then reports the agreed values, ``local_ip`` always being this
side's own address.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from vnf.codec.ppp import IpcpOption, Option, PppProtocol, decode_options, encode_options
from vnf.engines.ppp_fsm import (
    NAK_APPLIED,
    NAK_GIVE_UP,
    NAK_INVALID,
    ControlProtocol,
    Dropped,
    Limits,
)
from vnf.errors import DecodeError

_U32 = struct.Struct("!I")

_WANT_IP = 1
_WANT_DNS1 = 2
_WANT_DNS2 = 4


@dataclass(frozen=True, slots=True)
class Addressing:
    """IPv4 values of one PPP link, host-order ints; ``local_ip`` is this side's address."""

    local_ip: int
    peer_ip: int
    dns1: int = 0
    dns2: int = 0


def _address_option(kind: int, address: int) -> bytes:
    return bytes((kind, 6)) + _U32.pack(address)


class IpcpEngine(ControlProtocol):
    """IPCP for one PPP link; ``authenticator`` selects the AC's policy."""

    protocol: ClassVar[int] = PppProtocol.IPCP
    layer: ClassVar[str] = "ipcp"

    __slots__ = ("_dns1", "_dns2", "_local_ip", "_peer_ip", "_want", "authenticator")

    def __init__(
        self,
        limits: Limits,
        out: list[tuple[int, bytes]],
        emit: Callable[[Dropped], None],
        *,
        authenticator: bool,
    ) -> None:
        super().__init__(limits, out, emit)
        self.authenticator = authenticator
        self._local_ip = 0
        self._peer_ip = 0
        self._dns1 = 0
        self._dns2 = 0
        self._want = _WANT_IP if authenticator else _WANT_IP | _WANT_DNS1 | _WANT_DNS2

    def configure(self, addressing: Addressing) -> None:
        """Authenticator: the values to hand out, before :meth:`open`."""
        self._local_ip = addressing.local_ip
        self._peer_ip = addressing.peer_ip
        self._dns1 = addressing.dns1
        self._dns2 = addressing.dns2

    def resume_opened(self, now: float, addressing: Addressing) -> None:
        """Be Opened with the values another process agreed (``addressing()`` as it reported
        them there): no packet, no flag."""
        self.configure(addressing)
        if not self.authenticator:
            # addressing() reports a DNS server as 0 when the AC rejected the option, and the
            # original stopped asking for it (RFC 1661 §5.4: the next request "does not
            # include any of the Configuration Options received in the Configure-Reject").
            self._want = (
                _WANT_IP
                | (_WANT_DNS1 if addressing.dns1 else 0)
                | (_WANT_DNS2 if addressing.dns2 else 0)
            )
        self._resume_opened(now)

    def addressing(self) -> Addressing:
        want = self._want
        if self.authenticator:
            return Addressing(self._local_ip, self._peer_ip, self._dns1, self._dns2)
        return Addressing(
            self._local_ip,
            self._peer_ip,
            self._dns1 if want & _WANT_DNS1 else 0,
            self._dns2 if want & _WANT_DNS2 else 0,
        )

    # --- option policy ------------------------------------------------------------------

    def _build_request(self) -> bytes:
        want = self._want
        parts: list[bytes] = []
        if want & _WANT_IP:
            parts.append(_address_option(IpcpOption.IP_ADDRESS, self._local_ip))
        if want & _WANT_DNS1:
            parts.append(_address_option(IpcpOption.PRIMARY_DNS, self._dns1))
        if want & _WANT_DNS2:
            parts.append(_address_option(IpcpOption.SECONDARY_DNS, self._dns2))
        return b"".join(parts)

    def _judge_request(self, data: bytes) -> tuple[bytes, bytes, bytes] | None:
        try:
            options = decode_options(data, "ipcp")
        except DecodeError:
            return None
        if self.authenticator:
            return self._judge_as_authenticator(options)
        return self._judge_as_peer(options)

    def _judge_as_authenticator(self, options: tuple[Option, ...]) -> tuple[bytes, bytes, bytes]:
        rejected: list[Option] = []
        nak: list[Option] = []
        nak_original: list[Option] = []
        has_address = False
        for opt in options:
            kind, value = opt.type, opt.value
            if len(value) != 4 or kind not in (
                IpcpOption.IP_ADDRESS,
                IpcpOption.PRIMARY_DNS,
                IpcpOption.SECONDARY_DNS,
            ):
                rejected.append(opt)  # compression, IP-Addresses, NBNS, unknown, malformed
                continue
            if kind == IpcpOption.IP_ADDRESS:
                has_address = True
                expected = self._peer_ip
            elif kind == IpcpOption.PRIMARY_DNS:
                expected = self._dns1
            else:
                expected = self._dns2
            if expected == 0:
                rejected.append(opt)
            elif _U32.unpack(value)[0] != expected:
                nak.append(Option(kind, _U32.pack(expected)))
                nak_original.append(opt)
        if rejected:
            return encode_options(rejected), b"", b""
        if not has_address and self._peer_ip:
            nak.append(Option(IpcpOption.IP_ADDRESS, _U32.pack(self._peer_ip)))
        if nak:
            return b"", encode_options(nak), encode_options(nak_original)
        return b"", b"", b""

    def _judge_as_peer(self, options: tuple[Option, ...]) -> tuple[bytes, bytes, bytes]:
        rejected: list[Option] = []
        remote = 0
        for opt in options:
            if opt.type == IpcpOption.IP_ADDRESS and len(opt.value) == 4:
                remote = _U32.unpack(opt.value)[0]
                if remote == 0:
                    rejected.append(opt)  # we have no address to give the AC
            else:
                rejected.append(opt)
        if rejected:
            return encode_options(rejected), b"", b""
        self._peer_ip = remote
        return b"", b"", b""

    def _on_nak(self, data: bytes, reject: bool) -> int:
        try:
            options = decode_options(data, "ipcp")
        except DecodeError:
            return NAK_INVALID
        if reject:
            try:
                sent = decode_options(self._req_data, "ipcp")
            except DecodeError:  # pragma: no cover - we built it
                return NAK_INVALID
            if any(opt not in sent for opt in options):
                return NAK_INVALID
            for opt in options:
                if opt.type == IpcpOption.IP_ADDRESS:
                    if not self.authenticator:
                        return NAK_GIVE_UP  # no address, no service
                    self._want &= ~_WANT_IP
                elif opt.type == IpcpOption.PRIMARY_DNS:
                    self._want &= ~_WANT_DNS1
                elif opt.type == IpcpOption.SECONDARY_DNS:
                    self._want &= ~_WANT_DNS2
            return NAK_APPLIED
        if self.authenticator:
            return NAK_APPLIED  # our address is not negotiable; Max-Configure ends a dispute
        for opt in options:
            if len(opt.value) != 4:
                continue
            value = _U32.unpack(opt.value)[0]
            if opt.type == IpcpOption.IP_ADDRESS:
                self._local_ip = value
            elif opt.type == IpcpOption.PRIMARY_DNS:
                self._dns1 = value
            elif opt.type == IpcpOption.SECONDARY_DNS:
                self._dns2 = value
        return NAK_APPLIED
