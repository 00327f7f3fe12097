"""PPPoE Discovery (RFC 2516 §5): the stateless AC side and the client engine.

Theory of operation
-------------------
Discovery is four packets (§5.1-§5.4): the client broadcasts PADI, every AC that can serve the
requested Service-Name unicasts a PADO, the client picks one and sends it PADR, the AC answers
PADS with a session id. PADT (§5.5) ends a session from either side.

AC side - :class:`AcDiscovery` keeps no per-client state before PADR. The PADO carries an
AC-Cookie (Appendix A: "used by the AC to aid in protecting against denial of service
attacks") that :class:`CookieJar` makes self-verifying: HMAC-SHA256 over the client MAC, the
subscriber group chosen for the client and an expiry time. A PADR is accepted only with a
cookie we issued to that MAC that has not expired; the group is read back from it, so the AC
never stores anything for a PADI (a PADI flood costs CPU, not memory). The service decides the
group (DP selection) and the session id; this class only checks, builds and echoes tags
(Host-Uniq and Relay-Session-Id "MUST" be echoed unmodified, §5.2 and Appendix A).

Client side - :class:`PppoeClient` is a sans-IO engine for one subscriber: PADI, wait for a
PADO whose Host-Uniq matches (the first one wins), PADR echoing the AC-Cookie and
Relay-Session-Id, wait for PADS. Both waits retransmit with the timeout doubled each time
(§5.1: "it SHOULD resend its PADI packet and double the waiting period"); after the configured
attempts discovery fails (the emulator decides when to dial again, rather than falling back
from PADR to PADI as §5.3 suggests). A PADS with session id 0 or an error tag is a failure;
a PADT from our AC for our session ends it.

Cookie times use the injected monotonic ``now``: a cookie is only valid on the host (and
process clock) that issued it, which is fine for a 30 s PADO->PADR exchange.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import struct
from dataclasses import dataclass

from vnf.codec.pppoe import (
    ERROR_TAGS,
    DiscoveryFrame,
    DiscoveryPacket,
    PppoeCode,
    Tag,
    TagType,
    decode_discovery_frame,
    encode_discovery_frame,
)
from vnf.engines.ppp_fsm import Dropped
from vnf.errors import DecodeError, LocalProtocolError
from vnf.model.addresses import BROADCAST_MAC, is_unicast_mac

__all__ = [
    "AcDiscovery",
    "CookieJar",
    "CookieVerdict",
    "DiscoveryFailed",
    "Dropped",
    "PadrVerdict",
    "PppoeClient",
    "SessionEstablished",
    "SessionTerminated",
]

_COOKIE_BODY = struct.Struct("!BIQ")  # version, group, expiry (ms of the issuer's clock)
_COOKIE_VERSION = 1
_COOKIE_MAC_LEN = 16
COOKIE_LEN = _COOKIE_BODY.size + _COOKIE_MAC_LEN

_ERROR_REASONS = {
    TagType.SERVICE_NAME_ERROR: "service_name_error",
    TagType.AC_SYSTEM_ERROR: "ac_system_error",
    TagType.GENERIC_ERROR: "generic_error",
}


@dataclass(frozen=True, slots=True)
class CookieVerdict:
    ok: bool
    group: int
    reason: str  # "" when ok; missing_cookie, forged_cookie, expired_cookie


@dataclass(frozen=True, slots=True)
class PadrVerdict:
    ok: bool
    group: int
    reason: str
    service_name: bytes


class CookieJar:
    """Stateless AC-Cookies: HMAC-SHA256(secret, client MAC || version || group || expiry).

    A cookie issued to another MAC fails the HMAC, so it is reported as ``forged_cookie``.
    """

    __slots__ = ("_secret", "_ttl_ms")

    def __init__(self, secret: bytes, ttl_s: float = 30.0) -> None:
        if not secret:
            raise LocalProtocolError("a cookie secret must not be empty")
        self._secret = secret
        self._ttl_ms = int(ttl_s * 1000)

    def issue(self, client_mac: bytes, group: int, now: float) -> bytes:
        expiry = max(0, int(now * 1000) + self._ttl_ms)
        body = _COOKIE_BODY.pack(_COOKIE_VERSION, group & 0xFFFFFFFF, expiry)
        return body + self._sign(client_mac, body)

    def verify(self, cookie: bytes | None, client_mac: bytes, now: float) -> CookieVerdict:
        if cookie is None:
            return CookieVerdict(False, 0, "missing_cookie")
        if len(cookie) != COOKIE_LEN or cookie[0] != _COOKIE_VERSION:
            return CookieVerdict(False, 0, "forged_cookie")
        body = cookie[: _COOKIE_BODY.size]
        if not hmac.compare_digest(self._sign(client_mac, body), cookie[_COOKIE_BODY.size :]):
            return CookieVerdict(False, 0, "forged_cookie")
        _, group, expiry = _COOKIE_BODY.unpack(body)
        if now * 1000 > expiry:
            return CookieVerdict(False, group, "expired_cookie")
        return CookieVerdict(True, group, "")

    def _sign(self, client_mac: bytes, body: bytes) -> bytes:
        digest = hmac.new(self._secret, client_mac + body, hashlib.sha256).digest()
        return digest[:_COOKIE_MAC_LEN]


def _echoed(pkt: DiscoveryPacket) -> list[Tag]:
    """Host-Uniq and Relay-Session-Id, copied unmodified (RFC 2516 Appendix A)."""
    return [t for t in pkt.tags if t.type in (TagType.HOST_UNIQ, TagType.RELAY_SESSION_ID)]


class AcDiscovery:
    """The AC's discovery logic, without per-client state (see the module docstring)."""

    __slots__ = ("_ac_name", "_any_service", "_cookies", "_offered", "_services")

    def __init__(self, ac_name: str, service_names: tuple[str, ...], cookies: CookieJar) -> None:
        names = tuple(name.encode() for name in service_names)
        self._ac_name = ac_name.encode()
        self._any_service = not names or b"" in names
        self._services = frozenset(names)
        self._offered = tuple(name for name in names if name)
        self._cookies = cookies

    def _check(self, frame: DiscoveryFrame, code: PppoeCode) -> str | None:
        pkt = frame.packet
        if pkt.code != code:
            return "bad_code"
        if pkt.session_id != 0:
            return "bad_session_id"  # §5.1/§5.3: "SESSION_ID MUST be set to 0x0000"
        if not is_unicast_mac(frame.src):
            return "bad_source_mac"
        names = pkt.tag_values(TagType.SERVICE_NAME)
        if not names:
            return "missing_service_name"  # §5.1: "MUST contain exactly one ... Service-Name"
        if names[0] and not self._any_service and names[0] not in self._services:
            return "service_name_unsupported"
        return None

    def classify_padi(self, frame: DiscoveryFrame) -> str | None:
        """None if we can serve this PADI; else why not. §5.2: no PADO if we cannot serve."""
        return self._check(frame, PppoeCode.PADI)

    def make_pado(self, frame: DiscoveryFrame, ac_mac: bytes, group: int, now: float) -> bytes:
        pkt = frame.packet
        requested = pkt.tag(TagType.SERVICE_NAME) or b""
        tags = [Tag(TagType.AC_NAME, self._ac_name), Tag(TagType.SERVICE_NAME, requested)]
        tags.extend(Tag(TagType.SERVICE_NAME, n) for n in self._offered if n != requested)
        tags.append(Tag(TagType.AC_COOKIE, self._cookies.issue(frame.src, group, now)))
        tags.extend(_echoed(pkt))
        return encode_discovery_frame(
            frame.src, ac_mac, DiscoveryPacket(PppoeCode.PADO, 0, tuple(tags))
        )

    def check_padr(self, frame: DiscoveryFrame, now: float) -> PadrVerdict:
        pkt = frame.packet
        service_name = pkt.tag(TagType.SERVICE_NAME) or b""
        reason = self._check(frame, PppoeCode.PADR)
        if reason is not None:
            return PadrVerdict(False, 0, reason, service_name)
        verdict = self._cookies.verify(pkt.tag(TagType.AC_COOKIE), frame.src, now)
        return PadrVerdict(verdict.ok, verdict.group, verdict.reason, service_name)

    def make_pads(self, frame: DiscoveryFrame, ac_mac: bytes, session_id: int) -> bytes:
        pkt = frame.packet
        tags = [Tag(TagType.SERVICE_NAME, pkt.tag(TagType.SERVICE_NAME) or b"")]
        tags.extend(_echoed(pkt))
        return encode_discovery_frame(
            frame.src, ac_mac, DiscoveryPacket(PppoeCode.PADS, session_id, tuple(tags))
        )

    def make_pads_error(
        self, frame: DiscoveryFrame, ac_mac: bytes, tag_type: TagType, message: str
    ) -> bytes:
        """A PADS with session id 0 and an error tag (§5.4), e.g. AC-System-Error."""
        pkt = frame.packet
        tags = [
            Tag(TagType.SERVICE_NAME, pkt.tag(TagType.SERVICE_NAME) or b""),
            Tag(tag_type, message.encode()),
        ]
        tags.extend(_echoed(pkt))
        return encode_discovery_frame(
            frame.src, ac_mac, DiscoveryPacket(PppoeCode.PADS, 0, tuple(tags))
        )

    def make_padt(
        self, client_mac: bytes, ac_mac: bytes, session_id: int, message: str = ""
    ) -> bytes:
        return make_padt(client_mac, ac_mac, session_id, message)


def make_padt(dst: bytes, src: bytes, session_id: int, message: str = "") -> bytes:
    """§5.5 PADT, with a Generic-Error tag carrying ``message`` when given."""
    tags = (Tag(TagType.GENERIC_ERROR, message.encode()),) if message else ()
    return encode_discovery_frame(dst, src, DiscoveryPacket(PppoeCode.PADT, session_id, tags))


# --- client side -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionEstablished:
    ac_mac: bytes
    session_id: int
    ac_name: str


@dataclass(frozen=True, slots=True)
class DiscoveryFailed:
    """reason: padi_timeout, padr_timeout, service_name_error, ac_system_error,
    generic_error, no_session_id."""

    reason: str
    message: str = ""


@dataclass(frozen=True, slots=True)
class SessionTerminated:
    """The AC sent PADT for our session; ``message`` is its Generic-Error text, if any."""

    reason: str
    message: str = ""


ClientEvent = SessionEstablished | DiscoveryFailed | SessionTerminated | Dropped


class ClientState(enum.Enum):
    IDLE = "idle"
    PADI_SENT = "padi_sent"
    PADR_SENT = "padr_sent"
    SESSION = "session"
    CLOSED = "closed"


class PppoeClient:
    """Discovery for one subscriber (see the module docstring)."""

    __slots__ = (
        "_attempt",
        "_events",
        "_frames",
        "_host_uniq",
        "_last",
        "_padi_attempts",
        "_padi_timeout",
        "_padr_attempts",
        "_padr_timeout",
        "_service",
        "_wait",
        "ac_mac",
        "ac_name",
        "deadline",
        "mac",
        "session_id",
        "state",
    )

    def __init__(
        self,
        mac: bytes,
        *,
        service_name: str = "",
        host_uniq: bytes | None = None,
        padi_timeout_s: float = 1.0,
        padi_attempts: int = 5,
        padr_timeout_s: float = 1.0,
        padr_attempts: int = 5,
    ) -> None:
        if not is_unicast_mac(mac):
            raise LocalProtocolError("a PPPoE client needs a unicast MAC")
        self.mac = mac
        self._service = service_name.encode()
        self._host_uniq = host_uniq
        self._padi_timeout = padi_timeout_s
        self._padi_attempts = max(1, padi_attempts)
        self._padr_timeout = padr_timeout_s
        self._padr_attempts = max(1, padr_attempts)
        self.state = ClientState.IDLE
        self.deadline: float | None = None
        self.ac_mac = b""
        self.ac_name = ""
        self.session_id = 0
        self._attempt = 0
        self._wait = 0.0
        self._last = b""
        self._frames: list[bytes] = []
        self._events: list[ClientEvent] = []

    # --- sans-IO interface --------------------------------------------------------------

    def frames_to_send(self) -> list[bytes]:
        frames = self._frames
        if not frames:
            return []
        self._frames = []
        return frames

    def next_event(self) -> ClientEvent | None:
        events = self._events
        return events.pop(0) if events else None

    def get_timer(self) -> float | None:
        return self.deadline

    def start(self, now: float) -> None:
        if self.state is not ClientState.IDLE:
            raise LocalProtocolError("PppoeClient.start() called twice")
        tags = [Tag(TagType.SERVICE_NAME, self._service)]
        if self._host_uniq is not None:
            tags.append(Tag(TagType.HOST_UNIQ, self._host_uniq))
        packet = DiscoveryPacket(PppoeCode.PADI, 0, tuple(tags))
        self._transmit(encode_discovery_frame(BROADCAST_MAC, self.mac, packet), now)
        self.state = ClientState.PADI_SENT
        self._wait = self._padi_timeout
        self.deadline = now + self._wait

    def handle_timer(self, now: float) -> None:
        if self.deadline is None or now < self.deadline:
            return
        state = self.state
        if state is ClientState.PADI_SENT:
            limit, reason = self._padi_attempts, "padi_timeout"
        elif state is ClientState.PADR_SENT:
            limit, reason = self._padr_attempts, "padr_timeout"
        else:
            self.deadline = None
            return
        if self._attempt >= limit:
            self._fail(reason)
            return
        self._wait *= 2  # §5.1/§5.3: "double the waiting period"
        self._transmit(self._last, now)
        self.deadline = now + self._wait

    def receive(self, frame: bytes, now: float) -> None:
        """A discovery frame for us. Garbage becomes a :class:`Dropped` event."""
        try:
            df = decode_discovery_frame(frame)
        except DecodeError as exc:
            self._events.append(Dropped(exc.layer, exc.reason))
            return
        if df.dst != self.mac:
            self._drop("not_for_us")
            return
        code = df.packet.code
        if code == PppoeCode.PADO:
            self._receive_pado(df, now)
        elif code == PppoeCode.PADS:
            self._receive_pads(df)
        elif code == PppoeCode.PADT:
            self._receive_padt(df)
        else:
            self._drop("unexpected_code")

    def close(self, now: float, message: str = "") -> None:
        """Hang up: PADT if a session exists, else just stop discovering."""
        if self.state is ClientState.SESSION:
            self._frames.append(make_padt(self.ac_mac, self.mac, self.session_id, message))
        self.state = ClientState.CLOSED
        self.deadline = None

    # --- internals ----------------------------------------------------------------------

    def _receive_pado(self, df: DiscoveryFrame, now: float) -> None:
        pkt = df.packet
        if self.state is not ClientState.PADI_SENT:
            self._drop("unexpected_pado")
            return
        reason = self._check_offer(df)
        if reason:
            self._drop(reason)
            return
        self.ac_mac = df.src
        self.ac_name = (pkt.tag(TagType.AC_NAME) or b"").decode("utf-8", "replace")
        tags = [Tag(TagType.SERVICE_NAME, self._service)]
        if self._host_uniq is not None:
            tags.append(Tag(TagType.HOST_UNIQ, self._host_uniq))
        for tag_type in (TagType.AC_COOKIE, TagType.RELAY_SESSION_ID):
            value = pkt.tag(tag_type)
            if value is not None:
                tags.append(Tag(tag_type, value))  # §5.3: echo them back unmodified
        padr = DiscoveryPacket(PppoeCode.PADR, 0, tuple(tags))
        self._attempt = 0
        self._transmit(encode_discovery_frame(df.src, self.mac, padr), now)
        self.state = ClientState.PADR_SENT
        self._wait = self._padr_timeout
        self.deadline = now + self._wait

    def _check_offer(self, df: DiscoveryFrame) -> str:
        pkt = df.packet
        if pkt.tag(TagType.HOST_UNIQ) != self._host_uniq:
            return "host_uniq_mismatch"
        if pkt.session_id != 0:
            return "bad_session_id"
        if not is_unicast_mac(df.src):
            return "bad_source_mac"
        if any(t.type in ERROR_TAGS for t in pkt.tags):
            return "pado_error"
        if self._service and self._service not in pkt.tag_values(TagType.SERVICE_NAME):
            return "service_name_mismatch"
        return ""

    def _receive_pads(self, df: DiscoveryFrame) -> None:
        pkt = df.packet
        if self.state is not ClientState.PADR_SENT:
            self._drop("unexpected_pads")
            return
        if df.src != self.ac_mac:
            self._drop("wrong_ac")
            return
        if pkt.tag(TagType.HOST_UNIQ) != self._host_uniq:
            self._drop("host_uniq_mismatch")
            return
        for tag in pkt.tags:
            if tag.type in ERROR_TAGS:
                self._fail(_ERROR_REASONS[TagType(tag.type)], tag.value)
                return
        if pkt.session_id == 0:
            self._fail("no_session_id")
            return
        self.session_id = pkt.session_id
        self.state = ClientState.SESSION
        self.deadline = None
        self._events.append(SessionEstablished(self.ac_mac, self.session_id, self.ac_name))

    def _receive_padt(self, df: DiscoveryFrame) -> None:
        if (
            self.state is not ClientState.SESSION
            or df.src != self.ac_mac
            or df.packet.session_id != self.session_id
        ):
            self._drop("unexpected_padt")
            return
        self.state = ClientState.CLOSED
        self.deadline = None
        message = df.packet.tag(TagType.GENERIC_ERROR) or b""
        self._events.append(SessionTerminated("padt", message.decode("utf-8", "replace")))

    def _transmit(self, frame: bytes, now: float) -> None:
        self._last = frame
        self._attempt += 1
        self._frames.append(frame)

    def _fail(self, reason: str, message: bytes = b"") -> None:
        self.state = ClientState.CLOSED
        self.deadline = None
        self._events.append(DiscoveryFailed(reason, message.decode("utf-8", "replace")))

    def _drop(self, reason: str) -> None:
        self._events.append(Dropped("pppoe", reason))
