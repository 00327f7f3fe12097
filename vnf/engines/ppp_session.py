"""One PPP link, both ends: LCP, then PAP or CHAP, then IPCP (RFC 1661 §3.2 phases).

Theory of operation
-------------------
:class:`PppSession` layers the engines the way RFC 1661 §3.2 lays out the phases::

    Dead --open()--> Establish --LCP opened--> Authenticate --auth ok--> Network
      ^                  |                          |                       |
      +---- LinkDown <-- Terminate <----------------+-----------------------+

- *Establish*: :class:`~vnf.engines.lcp.LcpEngine` negotiates MRU, Magic-Number and (the
  authenticator requires it) the authentication protocol.
- *Authenticate*: on the AUTHENTICATOR (the AC) a PAP request or CHAP response becomes an
  :class:`AuthRequested` event; the service checks the credentials and allocates the address,
  then calls :meth:`PppSession.auth_result`. The PEER (the client) answers PAP/CHAP itself
  with ``config.username``/``password``. ``auth_timeout_s`` bounds the whole phase.
- *Network*: :class:`~vnf.engines.ipcp.IpcpEngine` agrees on addresses and DNS servers;
  :class:`NetworkUp` carries them. IPv4 packets are the data plane's business: any reaching
  this engine are dropped. Other protocols (IPv6, IPV6CP ...) get an LCP Protocol-Reject.
- *Terminate*: an administrative :meth:`close`, a failure (authentication, echo keepalive,
  negotiation) or the peer's Terminate-Request closes LCP; :class:`LinkDown` is reported once,
  when LCP has finished (RFC 1661 this-layer-finished) or at once on :meth:`lower_down`.
  After it the session is over: a new PPPoE session gets a new ``PppSession``.

If the peer restarts LCP negotiation while authentication has not started, we renegotiate as
RFC 1661 §4.1 says (this happens when a Configure-Ack is lost); once the service has been
involved (credentials requested, network up) a renegotiation ends the session with
``"terminated_by_peer"`` instead - the service would otherwise see a second login on one
session.

*Takeover* (hot standby): :meth:`PppSession.snapshot` captures what an opened link agreed on
(:class:`PppSnapshot`: the magic numbers, the peer's MRU, the authentication method and user,
the IPCP addressing) and :meth:`PppSession.restore` builds, in another process, an engine
already in the Network phase with LCP and IPCP Opened. The automaton states and options are
set directly, nothing is replayed: the peer sees no packet and the service no event. From then
on the engine behaves as the original would - keepalive (its schedule restarts at the
takeover), Terminate, renegotiation, Protocol-Reject. A restored PEER answers a CHAP
re-challenge as the original does (RFC 1994 §2.1: the authenticator may challenge "at random
intervals"). Not carried over, because the peer cannot tell: the authenticator's PAP/CHAP
state (a late duplicate request or response is dropped instead of getting the verdict again -
the peer had the verdict, or it could not have opened IPCP), the Identifier counters, and our
own MRU as last negotiated (only a renegotiation's Configure-Request, followed at once by our
Terminate-Request, would show it; it is ``config.mru`` again).

The session is sans-IO: packets go in through :meth:`receive` as (PPP protocol, payload),
and out through :meth:`packets_to_send`; :meth:`next_event` drains events; time enters only as
``now``; :meth:`get_timer`/:meth:`handle_timer` drive retransmissions and keepalives.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from vnf.codec.ppp import PppProtocol
from vnf.engines.chap import ChapAuthenticator, ChapCredentials, ChapPeer
from vnf.engines.ipcp import Addressing, IpcpEngine
from vnf.engines.lcp import AuthMethod, LcpEngine
from vnf.engines.pap import (
    AUTH_FAILED,
    AUTH_SUCCEEDED,
    PapAuthenticator,
    PapCredentials,
    PapPeer,
)
from vnf.engines.ppp_fsm import Dropped, LayerFlag, State
from vnf.errors import LocalProtocolError

__all__ = [
    "Addressing",
    "AuthFailed",
    "AuthMethod",
    "AuthRequested",
    "AuthSucceeded",
    "ChapCredentials",
    "Dropped",
    "Event",
    "LinkDown",
    "LinkUp",
    "NetworkUp",
    "PapCredentials",
    "Phase",
    "PppConfig",
    "PppSession",
    "PppSnapshot",
    "Role",
]


class Role(enum.Enum):
    AUTHENTICATOR = "authenticator"  # the AC
    PEER = "peer"  # the client


class Phase(enum.Enum):
    """RFC 1661 §3.2 link phases."""

    DEAD = "dead"
    ESTABLISH = "establish"
    AUTHENTICATE = "authenticate"
    NETWORK = "network"
    TERMINATE = "terminate"


@dataclass(frozen=True, slots=True)
class PppConfig:
    """Settings of one side of a PPP link; one instance is shared by many sessions.

    ``auth_methods``: the authenticator offers them in this order; the peer accepts these.
    ``username``/``password``: the peer's credentials. ``hostname``: the Name field of our
    CHAP challenges. Timers and counters are RFC 1661 §4.6's.
    """

    mru: int = 1492
    auth_methods: tuple[AuthMethod, ...] = (AuthMethod.CHAP_MD5, AuthMethod.PAP)
    echo_interval_s: float = 30.0
    echo_failures: int = 3
    restart_timer_s: float = 3.0
    max_configure: int = 10
    max_terminate: int = 2
    max_failure: int = 5
    auth_timeout_s: float = 30.0
    chap_challenge_len: int = 16
    username: str = ""
    password: str = ""
    hostname: str = "vnf"


@dataclass(frozen=True, slots=True)
class PppSnapshot:
    """What another process needs to carry on an Opened PPP link (LCP and IPCP Opened)."""

    magic: int  # our LCP magic number
    peer_magic: int  # the peer's LCP magic number (0 if it negotiated none)
    peer_mru: int  # the peer's MRU (largest info field we may send it)
    auth_method: AuthMethod | None
    username: str
    addressing: Addressing  # as agreed in IPCP (local_ip, peer_ip, dns1, dns2)


# --- events (past tense) -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LinkUp:
    """LCP reached Opened."""


@dataclass(frozen=True, slots=True)
class AuthRequested:
    """AUTHENTICATOR: check these credentials, then call ``auth_result``."""

    credentials: PapCredentials | ChapCredentials


@dataclass(frozen=True, slots=True)
class AuthSucceeded:
    pass


@dataclass(frozen=True, slots=True)
class AuthFailed:
    message: str


@dataclass(frozen=True, slots=True)
class NetworkUp:
    addressing: Addressing


@dataclass(frozen=True, slots=True)
class LinkDown:
    """The session is over. ``reason``: terminated_by_peer, terminated, echo_timeout,
    auth_failed, auth_timeout, negotiation_failed, lower_down."""

    reason: str


Event = LinkUp | AuthRequested | AuthSucceeded | AuthFailed | NetworkUp | LinkDown | Dropped

_LINK_UP = LinkUp()
_AUTH_SUCCEEDED = AuthSucceeded()

# progress bits
_SEEN_LINK_UP = 1
_AUTH_REQUESTED = 2  # authenticator: credentials handed to the service, answer pending
_AUTH_ANSWERED = 4  # authenticator answered / peer got its verdict
_FINISHED = 8


class PppSession:
    """The layered PPP engine of one link (see the module docstring)."""

    __slots__ = (
        "_auth_deadline",
        "_authenticator",
        "_emit",
        "_events",
        "_ipcp",
        "_lcp",
        "_out",
        "_peer_auth",
        "_phase",
        "_progress",
        "_random",
        "addressing",
        "config",
        "role",
        "username",
    )

    def __init__(
        self,
        role: Role,
        config: PppConfig,
        *,
        magic: int,
        random_bytes: Callable[[int], bytes],
    ) -> None:
        self.role = role
        self.config = config
        self._random = random_bytes
        self._out: list[tuple[int, bytes]] = []
        self._events: list[Event] = []
        self._emit = self._events.append
        authenticator = role is Role.AUTHENTICATOR
        self._lcp = LcpEngine(
            config,
            self._out,
            self._emit,
            authenticator=authenticator,
            magic=magic,
            random_bytes=random_bytes,
        )
        self._ipcp = IpcpEngine(config, self._out, self._emit, authenticator=authenticator)
        self._authenticator: PapAuthenticator | ChapAuthenticator | None = None
        self._peer_auth: PapPeer | ChapPeer | None = None
        self._phase = Phase.DEAD
        self._progress = 0
        self._auth_deadline: float | None = None
        self.username = ""
        self.addressing: Addressing | None = None

    @classmethod
    def restore(
        cls,
        role: Role,
        config: PppConfig,
        snap: PppSnapshot,
        now: float,
        *,
        random_bytes: Callable[[int], bytes],
    ) -> PppSession:
        """An engine carrying on the opened link ``snap`` was taken from (see "Takeover").

        It is in the Network phase with LCP and IPCP Opened, has nothing to send and no
        event queued, and sends its first Echo-Request ``config.echo_interval_s`` after
        ``now``. Raises ValueError for an authenticator's snapshot without an auth method.
        """
        if role is Role.AUTHENTICATOR and snap.auth_method is None:
            raise ValueError("an authenticator's snapshot names its auth method")
        session = cls(role, config, magic=snap.magic, random_bytes=random_bytes)
        session._lcp.resume_opened(
            now, peer_magic=snap.peer_magic, peer_mru=snap.peer_mru, auth_method=snap.auth_method
        )
        session._ipcp.resume_opened(now, snap.addressing)
        if role is Role.PEER and snap.auth_method is AuthMethod.CHAP_MD5:
            peer = ChapPeer(
                session._out, session._emit, username=config.username, password=config.password
            )
            peer.settle()  # a Success or Failure now is a duplicate, as for the original
            session._peer_auth = peer
        session._phase = Phase.NETWORK
        session._progress = _SEEN_LINK_UP | (_AUTH_ANSWERED if snap.auth_method else 0)
        session.username = snap.username
        session.addressing = snap.addressing
        return session

    # --- read-only views ----------------------------------------------------------------

    @property
    def phase(self) -> Phase:
        return self._phase

    @property
    def auth_method(self) -> AuthMethod | None:
        return self._lcp.auth_method

    @property
    def peer_magic(self) -> int:
        return self._lcp.peer_magic

    @property
    def magic(self) -> int:
        return self._lcp.magic

    @property
    def mru(self) -> int:
        """The peer's MRU: the largest PPP information field we may send it."""
        return self._lcp.peer_mru

    @property
    def lcp_state(self) -> State:
        return self._lcp.state

    @property
    def ipcp_state(self) -> State:
        return self._ipcp.state

    @property
    def finished(self) -> bool:
        return bool(self._progress & _FINISHED)

    def snapshot(self) -> PppSnapshot:
        """What :meth:`restore` needs to carry on this link elsewhere.

        Only an opened link can be taken over: raises ValueError unless the session is in the
        Network phase with IPCP Opened (not while IPCP renegotiates).
        """
        addressing = self.addressing
        if (
            self._phase is not Phase.NETWORK
            or self._ipcp.state is not State.OPENED
            or addressing is None
        ):
            raise ValueError(
                f"snapshot() needs an opened link (phase {self._phase.value}, "
                f"IPCP {self._ipcp.state.name})"
            )
        lcp = self._lcp
        return PppSnapshot(
            magic=lcp.magic,
            peer_magic=lcp.peer_magic,
            peer_mru=lcp.peer_mru,
            auth_method=lcp.auth_method,
            username=self.username,
            addressing=addressing,
        )

    # --- sans-IO interface --------------------------------------------------------------

    def packets_to_send(self) -> list[tuple[int, bytes]]:
        """Drain the (PPP protocol, payload) pairs to transmit, in order."""
        out = self._out
        if not out:
            return []
        packets = out.copy()
        out.clear()
        return packets

    def next_event(self) -> Event | None:
        events = self._events
        return events.pop(0) if events else None

    def get_timer(self) -> float | None:
        """The earliest time :meth:`handle_timer` has something to do, or None."""
        lcp = self._lcp
        best = lcp.deadline
        for deadline in (lcp.echo_deadline, self._ipcp.deadline, self._auth_deadline):
            if deadline is not None and (best is None or deadline < best):
                best = deadline
        auth = self._authenticator or self._peer_auth
        if auth is not None:
            deadline = auth.deadline
            if deadline is not None and (best is None or deadline < best):
                best = deadline
        return best

    def handle_timer(self, now: float) -> None:
        if self._progress & _FINISHED:
            return
        lcp = self._lcp
        if lcp.deadline is not None and lcp.deadline <= now:
            self._on_lcp(lcp.timeout(now), now)
        if lcp.echo_deadline is not None and lcp.echo_deadline <= now and lcp.echo_tick(now):
            self._fail("echo_timeout", now)
        ipcp = self._ipcp
        if ipcp.deadline is not None and ipcp.deadline <= now:
            self._on_ipcp(ipcp.timeout(now), now)
        auth = self._authenticator or self._peer_auth
        deadline = auth.deadline if auth is not None else None
        if auth is not None and deadline is not None and deadline <= now and auth.timeout(now):
            self._fail("auth_timeout", now)
        if self._auth_deadline is not None and self._auth_deadline <= now:
            self._auth_deadline = None
            self._fail("auth_timeout", now)

    def open(self, now: float) -> None:
        """The PPPoE session is up and the link administratively open: start LCP."""
        if self._phase is not Phase.DEAD or self._progress & _FINISHED:
            raise LocalProtocolError("PppSession.open() called twice")
        self._phase = Phase.ESTABLISH
        flags = self._lcp.open(now)
        flags |= self._lcp.up(now)
        self._on_lcp(flags, now)

    def close(self, now: float, reason: str = "") -> None:
        """Administrative close: LCP Terminate-Request (``reason`` goes in its data)."""
        if self._progress & _FINISHED:
            return
        if self._phase is Phase.DEAD:
            self._finish("terminated")
            return
        self._fail("terminated", now, reason.encode()[:64])

    def lower_down(self, now: float) -> None:
        """The PPPoE session is gone (PADT): everything stops now."""
        if self._progress & _FINISHED:
            return
        self._ipcp.down(now)
        self._lcp.down(now)
        self._finish(self._lcp.reason or "lower_down")

    def receive(self, protocol: int, payload: bytes, now: float) -> None:
        """One PPP packet (protocol field split off). Never raises on its content."""
        if self._progress & _FINISHED:
            self._emit(Dropped("ppp", "link_closed"))
            return
        if protocol == PppProtocol.LCP:
            self._on_lcp(self._lcp.receive(payload, now), now)
        elif protocol == PppProtocol.IPV4:
            self._emit(Dropped("ppp", "network_data"))
        elif protocol == PppProtocol.IPCP:
            self._receive_ipcp(payload, now)
        elif protocol == PppProtocol.PAP or protocol == PppProtocol.CHAP:
            self._receive_auth(protocol, payload, now)
        else:
            # RFC 1661 §5.7: a packet of an unsupported protocol gets a Protocol-Reject.
            self._lcp.protocol_reject(protocol, payload)

    def auth_result(
        self, ok: bool, now: float, message: str = "", addressing: Addressing | None = None
    ) -> None:
        """AUTHENTICATOR: the service's answer to :class:`AuthRequested`.

        ``ok=True`` must carry the ``addressing`` IPCP will hand out. An answer for a session
        that has gone down meanwhile is ignored.
        """
        if self.role is not Role.AUTHENTICATOR:
            raise LocalProtocolError("auth_result() is for the authenticator")
        if ok and addressing is None:
            raise LocalProtocolError("a successful auth_result() needs the addressing")
        if self._progress & _FINISHED or self._phase is Phase.TERMINATE:
            return
        authenticator = self._authenticator
        if authenticator is None or not self._progress & _AUTH_REQUESTED:
            raise LocalProtocolError("auth_result() without a pending AuthRequested")
        self._progress = (self._progress & ~_AUTH_REQUESTED) | _AUTH_ANSWERED
        authenticator.answer(ok, message.encode()[:255])
        self._auth_deadline = None
        if not ok:
            self._emit(AuthFailed(message))
            self._fail("auth_failed", now)
            return
        assert addressing is not None
        self._emit(_AUTH_SUCCEEDED)
        self._phase = Phase.NETWORK
        self._ipcp.configure(addressing)
        self._start_ipcp(now)

    # --- layer plumbing -----------------------------------------------------------------

    def _on_lcp(self, flags: LayerFlag, now: float) -> None:
        if flags & LayerFlag.UP:
            self._link_up(now)
        if flags & LayerFlag.DOWN:
            self._link_down(now)
        if flags & LayerFlag.FINISHED:
            self._finish(self._lcp.reason or "terminated")
        rejected = self._lcp.rejected_protocol
        if rejected:
            self._lcp.rejected_protocol = 0
            if rejected in (PppProtocol.IPCP, PppProtocol.PAP, PppProtocol.CHAP):
                self._fail("negotiation_failed", now)  # the peer refuses what we need

    def _link_up(self, now: float) -> None:
        if not self._progress & _SEEN_LINK_UP:
            self._progress |= _SEEN_LINK_UP
            self._emit(_LINK_UP)
        method = self._lcp.auth_method
        cfg = self.config
        if self.role is Role.AUTHENTICATOR:
            if method is AuthMethod.PAP:
                self._authenticator = PapAuthenticator(self._out, self._emit)
            else:
                self._authenticator = ChapAuthenticator(
                    cfg,
                    self._out,
                    self._emit,
                    random_bytes=self._random,
                    name=cfg.hostname.encode(),
                    challenge_len=cfg.chap_challenge_len,
                )
            self._phase = Phase.AUTHENTICATE
            self._auth_deadline = now + cfg.auth_timeout_s
            self._authenticator.start(now)
            return
        if method is None:
            self._phase = Phase.NETWORK
            self._start_ipcp(now)
            return
        if method is AuthMethod.PAP:
            self._peer_auth = PapPeer(
                cfg,
                self._out,
                self._emit,
                username=cfg.username,
                password=cfg.password,
                first_identifier=self._random(1)[0],
            )
        else:
            self._peer_auth = ChapPeer(
                self._out, self._emit, username=cfg.username, password=cfg.password
            )
        self._phase = Phase.AUTHENTICATE
        self._auth_deadline = now + cfg.auth_timeout_s
        self._peer_auth.start(now)

    def _link_down(self, now: float) -> None:
        """LCP left Opened (this-layer-down)."""
        self._ipcp.down(now)
        self._auth_deadline = None
        self._authenticator = None
        self._peer_auth = None
        if self._lcp.state in (State.CLOSING, State.STOPPING, State.STARTING):
            self._phase = Phase.TERMINATE
            return
        # The peer restarted negotiation (a Configure-Request or a stray reply in Opened).
        if self._progress & (_AUTH_REQUESTED | _AUTH_ANSWERED) or self._phase is Phase.NETWORK:
            self._fail("terminated_by_peer", now)
        else:
            self._phase = Phase.ESTABLISH

    def _finish(self, reason: str) -> None:
        if self._progress & _FINISHED:
            return
        self._progress |= _FINISHED
        self._phase = Phase.DEAD
        self._auth_deadline = None
        self._authenticator = None
        self._peer_auth = None
        self._lcp.echo_deadline = None
        self._lcp.deadline = None
        self._ipcp.deadline = None
        self._emit(LinkDown(reason))

    def _fail(self, reason: str, now: float, message: bytes = b"") -> None:
        if self._progress & _FINISHED:
            return
        if self._phase is not Phase.DEAD:
            self._phase = Phase.TERMINATE
        self._auth_deadline = None
        self._on_lcp(self._lcp.close(now, reason, message), now)

    def _receive_auth(self, protocol: int, payload: bytes, now: float) -> None:
        layer = "pap" if protocol == PppProtocol.PAP else "chap"
        if self.role is Role.AUTHENTICATOR:
            authenticator = self._authenticator
            if authenticator is None or authenticator.protocol != protocol:
                self._emit(Dropped(layer, "not_negotiated"))
                return
            credentials = authenticator.receive(payload, now)
            if credentials is not None:
                self.username = credentials.username
                self._progress |= _AUTH_REQUESTED
                self._emit(AuthRequested(credentials))
            return
        peer = self._peer_auth
        if peer is None or peer.protocol != protocol:
            self._emit(Dropped(layer, "not_negotiated"))
            return
        outcome = peer.receive(payload, now)
        if outcome == AUTH_SUCCEEDED:
            self._peer_authenticated(now)
        elif outcome == AUTH_FAILED:
            self._progress |= _AUTH_ANSWERED
            self._auth_deadline = None
            self._emit(AuthFailed(peer.message))
            # The authenticator will terminate the link; we do too, so both sides agree on
            # the reason even if its Terminate-Request is lost.
            self._fail("auth_failed", now)

    def _peer_authenticated(self, now: float) -> None:
        self._progress |= _AUTH_ANSWERED
        self._auth_deadline = None
        self.username = self.config.username
        self._emit(_AUTH_SUCCEEDED)
        self._phase = Phase.NETWORK
        self._start_ipcp(now)

    def _receive_ipcp(self, payload: bytes, now: float) -> None:
        phase = self._phase
        if phase is not Phase.NETWORK:
            peer = self._peer_auth
            if (
                phase is Phase.AUTHENTICATE
                and peer is not None
                and peer.responded
                and not peer.done
            ):
                # RFC 1994 gives the peer no timer to recover a lost Success; the
                # authenticator only starts IPCP after it sent one, so its IPCP packet is
                # taken as the Success (the same holds for PAP's Ack).
                peer.settle()
                self._peer_authenticated(now)
            else:
                self._emit(Dropped("ipcp", "not_network_phase"))
                return
        self._on_ipcp(self._ipcp.receive(payload, now), now)

    def _start_ipcp(self, now: float) -> None:
        ipcp = self._ipcp
        self._on_ipcp(ipcp.open(now) | ipcp.up(now), now)

    def _on_ipcp(self, flags: LayerFlag, now: float) -> None:
        if flags & LayerFlag.UP:
            addressing = self._ipcp.addressing()
            self.addressing = addressing
            self._emit(NetworkUp(addressing))
        if flags & LayerFlag.FINISHED and not self._progress & _FINISHED:
            self._fail(self._ipcp.reason or "negotiation_failed", now)
