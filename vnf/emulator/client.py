"""One emulated PPPoE subscriber: discovery, then PPP as the peer (RFC 2516 + RFC 1661).

Theory of operation
-------------------
:class:`SubscriberClient` composes :class:`~vnf.engines.pppoe_discovery.PppoeClient` and a
:class:`~vnf.engines.ppp_session.PppSession` in the PEER role, and speaks whole Ethernet
frames: discovery frames go to the discovery engine, session frames of our session (from our AC,
with our session id) are unwrapped to the PPP engine, and PPP packets to send are wrapped into
session frames to the AC.

Lifecycle (``state``): ``idle`` -> ``discovery`` (PADI...PADS) -> ``ppp`` (LCP, auth, IPCP)
-> ``up`` (:class:`Connected`) -> ``down`` (:class:`Disconnected`). When PPP ends for any
reason other than a PADT the client sends PADT itself (RFC 2516 §5.5), so the AC frees the
session at once. :meth:`hangup` is a polite LCP Terminate first.

Once connected, :meth:`SubscriberClient.session_header` and
:meth:`SubscriberClient.data_frame` build IPv4 data frames without re-encoding the 22 header
bytes each time, for traffic generators.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, replace

from vnf.codec.ethernet import EtherType, peek_ethertype
from vnf.codec.ppp import PppProtocol
from vnf.codec.pppoe import (
    PPPOE_SESSION_HLEN,
    PPPOE_VER_TYPE,
    PppoeCode,
    decode_session_frame,
    encode_session_frame,
)
from vnf.engines.ppp_fsm import Dropped
from vnf.engines.ppp_session import (
    Addressing,
    AuthFailed,
    AuthMethod,
    LinkDown,
    NetworkUp,
    PppConfig,
    PppSession,
    Role,
)
from vnf.engines.pppoe_discovery import (
    DiscoveryFailed,
    PppoeClient,
    SessionEstablished,
    SessionTerminated,
)
from vnf.errors import DecodeError, LocalProtocolError

_LENGTH_AND_IPV4 = struct.Struct("!HH")
_SESSION_PREFIX = struct.Struct("!6s6sHBBH")  # Ethernet + PPPoE up to the session id


@dataclass(frozen=True, slots=True)
class Connected:
    addressing: Addressing
    session_id: int
    ac_mac: bytes


@dataclass(frozen=True, slots=True)
class Disconnected:
    """``reason``: a PPP LinkDown reason, a DiscoveryFailed reason, "padt" or "hangup".
    ``by_peer``: the AC ended it (PADT, Terminate-Request, authentication refused)."""

    reason: str
    by_peer: bool


SubscriberEvent = Connected | Disconnected | Dropped

_BY_PEER = frozenset(("terminated_by_peer", "padt", "auth_failed"))


class SubscriberClient:
    """One subscriber (see the module docstring)."""

    __slots__ = (
        "_auth_failed",
        "_events",
        "_frames",
        "_magic",
        "_ppp",
        "_ppp_config",
        "_pppoe",
        "_prefix",
        "_random",
        "_state",
        "mac",
    )

    def __init__(
        self,
        mac: bytes,
        username: str,
        password: str,
        auth_methods: tuple[AuthMethod, ...],
        *,
        magic: int,
        random_bytes: Callable[[int], bytes],
        ppp_config: PppConfig | None = None,
        service_name: str = "",
        padi_timeout_s: float = 1.0,
        padi_attempts: int = 5,
    ) -> None:
        base = ppp_config if ppp_config is not None else PppConfig()
        self._ppp_config = replace(
            base, username=username, password=password, auth_methods=auth_methods
        )
        self.mac = mac
        self._magic = magic
        self._random = random_bytes
        self._pppoe = PppoeClient(
            mac,
            service_name=service_name,
            host_uniq=random_bytes(4),
            padi_timeout_s=padi_timeout_s,
            padi_attempts=padi_attempts,
        )
        self._ppp: PppSession | None = None
        self._state = "idle"
        self._prefix = b""
        self._auth_failed = False
        self._frames: list[bytes] = []
        self._events: list[SubscriberEvent] = []

    # --- views --------------------------------------------------------------------------

    @property
    def state(self) -> str:
        """``idle``, ``discovery``, ``ppp``, ``up`` or ``down``."""
        return self._state

    @property
    def session_id(self) -> int:
        return self._pppoe.session_id

    @property
    def ac_mac(self) -> bytes:
        return self._pppoe.ac_mac

    @property
    def ppp(self) -> PppSession | None:
        return self._ppp

    # --- sans-IO interface --------------------------------------------------------------

    def start(self, now: float) -> None:
        if self._state != "idle":
            raise LocalProtocolError("SubscriberClient.start() called twice")
        self._state = "discovery"
        self._pppoe.start(now)
        self._collect()

    def receive(self, frame: bytes, now: float) -> None:
        """Any frame addressed to this subscriber's MAC. Never raises on its content."""
        ethertype = peek_ethertype(frame)
        if ethertype == EtherType.PPPOE_DISCOVERY:
            self._pppoe.receive(frame, now)
            self._pump(now)
        elif ethertype == EtherType.PPPOE_SESSION:
            self._receive_session(frame, now)
        else:
            self._events.append(Dropped("ethernet", "bad_ethertype"))

    def hangup(self, now: float) -> None:
        """LCP Terminate-Request, then PADT once PPP has finished; or stop discovering."""
        if self._state in ("ppp", "up") and self._ppp is not None:
            self._ppp.close(now, "hangup")
            self._pump(now)
        elif self._state == "discovery":
            self._pppoe.close(now)
            self._down("hangup", by_peer=False)
            self._collect()

    def frames_to_send(self) -> list[bytes]:
        frames = self._frames
        if not frames:
            return []
        self._frames = []
        return frames

    def next_event(self) -> SubscriberEvent | None:
        events = self._events
        return events.pop(0) if events else None

    def get_timer(self) -> float | None:
        best = self._pppoe.deadline
        if self._ppp is not None:
            deadline = self._ppp.get_timer()
            if deadline is not None and (best is None or deadline < best):
                best = deadline
        return best

    def handle_timer(self, now: float) -> None:
        self._pppoe.handle_timer(now)
        if self._ppp is not None:
            self._ppp.handle_timer(now)
        self._pump(now)

    # --- fast data frames ---------------------------------------------------------------

    def session_header(self) -> bytes:
        """The 22 bytes in front of an IPv4 packet in our session; the PPPoE length (bytes
        18-19) is 0 and must be set to ``len(ip_packet) + 2`` (see :meth:`data_frame`)."""
        if self._state != "up":
            raise LocalProtocolError("no session header before Connected")
        return self._prefix + _LENGTH_AND_IPV4.pack(0, PppProtocol.IPV4)

    def data_frame(self, ip_packet: bytes) -> bytes:
        """A session frame carrying ``ip_packet`` (PPP protocol 0x0021)."""
        if not self._prefix:
            raise LocalProtocolError("no data frames before Connected")
        return (
            self._prefix + _LENGTH_AND_IPV4.pack(len(ip_packet) + 2, PppProtocol.IPV4) + ip_packet
        )

    # --- internals ----------------------------------------------------------------------

    def _receive_session(self, frame: bytes, now: float) -> None:
        ppp = self._ppp
        if ppp is None:
            self._events.append(Dropped("pppoe", "no_session"))
            return
        try:
            pf = decode_session_frame(frame)
        except DecodeError as exc:
            self._events.append(Dropped(exc.layer, exc.reason))
            return
        if pf.session_id != self._pppoe.session_id or pf.src != self._pppoe.ac_mac:
            self._events.append(Dropped("pppoe", "wrong_session"))
            return
        if pf.protocol == PppProtocol.IPV4:
            self._events.append(Dropped("ppp", "network_data"))
            return
        ppp.receive(pf.protocol, pf.payload, now)
        self._pump(now)

    def _pump(self, now: float) -> None:
        """Move events between the layers and collect frames to send."""
        pppoe = self._pppoe
        while (event := pppoe.next_event()) is not None:
            if isinstance(event, SessionEstablished):
                self._start_ppp(now)
            elif isinstance(event, DiscoveryFailed):
                # The AC refused (PADS error, session id 0) or nobody answered (timeouts).
                self._down(event.reason, by_peer=not event.reason.endswith("_timeout"))
            elif isinstance(event, SessionTerminated):
                if self._ppp is not None:
                    self._ppp.lower_down(now)
                    self._drain_ppp_events(now, padt_received=True)
                else:
                    self._down("padt", by_peer=True)
            else:
                self._events.append(event)
        if self._ppp is not None:
            self._drain_ppp_events(now, padt_received=False)
        self._collect()

    def _start_ppp(self, now: float) -> None:
        self._ppp = PppSession(
            Role.PEER, self._ppp_config, magic=self._magic, random_bytes=self._random
        )
        self._state = "ppp"
        self._prefix = b""
        self._ppp.open(now)

    def _drain_ppp_events(self, now: float, *, padt_received: bool) -> None:
        ppp = self._ppp
        assert ppp is not None
        while (event := ppp.next_event()) is not None:
            if isinstance(event, NetworkUp):
                self._connected(event.addressing)
            elif isinstance(event, LinkDown):
                reason = "auth_failed" if self._auth_failed else event.reason
                if padt_received:
                    # The PADT may overtake a Terminate-Request's zrc wait: keep PPP's reason.
                    self._down("padt" if reason == "lower_down" else reason, by_peer=True)
                else:
                    # RFC 2516 §5.5: tear down the PPPoE session too.
                    self._collect_ppp()
                    self._pppoe.close(now)
                    self._down(reason, by_peer=reason in _BY_PEER)
            elif isinstance(event, AuthFailed):
                self._auth_failed = True
            elif isinstance(event, Dropped):
                self._events.append(event)

    def _connected(self, addressing: Addressing) -> None:
        pppoe = self._pppoe
        self._prefix = _SESSION_PREFIX.pack(
            pppoe.ac_mac,
            self.mac,
            EtherType.PPPOE_SESSION,
            PPPOE_VER_TYPE,
            PppoeCode.SESSION,
            pppoe.session_id,
        )
        assert len(self._prefix) + 4 == PPPOE_SESSION_HLEN
        self._state = "up"
        self._events.append(Connected(addressing, pppoe.session_id, pppoe.ac_mac))

    def _down(self, reason: str, *, by_peer: bool) -> None:
        if self._state == "down":
            return
        self._state = "down"
        self._prefix = b""
        self._events.append(Disconnected(reason, by_peer))

    def _collect_ppp(self) -> None:
        ppp = self._ppp
        if ppp is None:
            return
        pppoe = self._pppoe
        if not pppoe.session_id:
            ppp.packets_to_send()
            return
        for protocol, payload in ppp.packets_to_send():
            self._frames.append(
                encode_session_frame(pppoe.ac_mac, self.mac, pppoe.session_id, protocol, payload)
            )

    def _collect(self) -> None:
        self._collect_ppp()
        self._frames.extend(self._pppoe.frames_to_send())
