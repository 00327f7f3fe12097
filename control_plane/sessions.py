"""The control plane's session table: one :class:`Subscription` per PPPoE session (a
:class:`Session`) or cable modem (a :class:`control_plane.cable.Modem`) it serves.

Sessions are slot objects (the CP holds 100,000 of them) indexed by their never-reused
``key`` and by the data-plane match (group, PPPoE session id).

Life of a session::

    NEGOTIATING ──NetworkUp──▶ INSTALLING ──rule acked──▶ ACTIVE (accounting start)
         │                          │                         │
         └──────── LinkDown / PADT / admin close ─────────────┴──▶ REMOVING ──ack──▶ CLOSED
                                                                  (accounting stop)
    TERMINATING: an administrative close is in progress (LCP Terminate-Request sent).
"""

from __future__ import annotations

import enum

from vnf.engines.ppp_session import PppSession
from vnf.model.session import TerminateCause


class SessionState(enum.Enum):
    NEGOTIATING = "negotiating"
    INSTALLING = "installing"
    ACTIVE = "active"
    TERMINATING = "terminating"
    REMOVING = "removing"
    CLOSED = "closed"


class Subscription:
    """What every subscriber session has, whatever its access: the key, its group, its
    forwarding rule's state, addressing and accounting. :class:`Session` (PPPoE) and
    :class:`control_plane.cable.Modem` (a cable modem and its CPE) add their protocol
    engines; the group, rule, failover and accounting machinery sees only this."""

    __slots__ = (
        "acct_id",
        "base",
        "cause",
        "client_mac",
        "created",
        "group",
        "interim_at",
        "interim_wall",
        "ipv4",
        "key",
        "moved_from",
        "moved_usage",
        "remove_deadline",
        "replicated_at",
        "reserved",
        "rule_sent",
        "setup_mono",
        "sid",
        "started",
        "state",
        "timer_at",
        "up_mono",
        "up_wall",
        "usage",
        "username",
    )

    def __init__(
        self, key: int, group: int, sid: int, client_mac: bytes, now: float, setup_mono: float
    ) -> None:
        self.key = key
        self.group = group
        self.sid = sid  # PPPoE session id, or a modem's SID
        self.client_mac = client_mac
        self.state = SessionState.NEGOTIATING
        self.created = now
        self.setup_mono = setup_mono  # its setup began (first PADI, first RNG-REQ seen)
        self.username = ""
        self.ipv4 = 0
        self.acct_id = ""
        self.up_mono = 0.0
        self.interim_at = 0.0
        self.remove_deadline = 0.0
        self.timer_at: float | None = None
        self.usage: tuple[int, int, int, int] = (0, 0, 0, 0)  # total, base included
        self.base: tuple[int, int, int, int] = (0, 0, 0, 0)  # counted by earlier DPs
        self.moved_from = ""  # the DP a planned move took it from (its final count pending)
        self.moved_usage: tuple[int, int, int, int] = (0, 0, 0, 0)  # that DP's count then
        self.up_wall = 0.0
        self.interim_wall = 0.0
        self.replicated_at = 0  # replication seq of its first record; 0: not replicated
        self.cause: TerminateCause | None = None
        self.reserved = True  # holds one unit of its group's address capacity
        self.rule_sent = False
        self.started = False  # accounting start written


class Session(Subscription):
    """A PPPoE session: discovery identity and the PPP engine (authenticator side)."""

    __slots__ = ("auth", "host_uniq", "ppp")

    def __init__(
        self,
        key: int,
        group: int,
        sid: int,
        client_mac: bytes,
        host_uniq: bytes | None,
        ppp: PppSession,
        now: float,
        padi_mono: float,
    ) -> None:
        super().__init__(key, group, sid, client_mac, now, padi_mono)
        self.host_uniq = host_uniq
        self.ppp = ppp
        self.auth = ""


class SessionTable:
    """Every subscription by key; PPPoE sessions also by their data-plane match (group,
    PPPoE session id)."""

    def __init__(self) -> None:
        self.by_key: dict[int, Subscription] = {}
        self.by_endpoint: dict[tuple[int, int], Session] = {}
        self.counts: dict[SessionState, int] = dict.fromkeys(SessionState, 0)
        self._next_key = 1

    def __len__(self) -> int:
        return len(self.by_key)

    def next_key(self) -> int:
        key = self._next_key
        self._next_key += 1
        return key

    def keys_from(self, next_key: int) -> None:
        """Never hand out a key below ``next_key`` (keys used before a takeover)."""
        self._next_key = max(self._next_key, next_key)

    def add(self, session: Subscription) -> None:
        self.by_key[session.key] = session
        if isinstance(session, Session):
            self.by_endpoint[(session.group, session.sid)] = session
        self.counts[session.state] += 1

    def set_state(self, session: Subscription, state: SessionState) -> None:
        self.counts[session.state] -= 1
        session.state = state
        self.counts[state] += 1

    def remove(self, session: Subscription) -> None:
        self.by_key.pop(session.key, None)
        if self.by_endpoint.get((session.group, session.sid)) is session:
            del self.by_endpoint[(session.group, session.sid)]
        self.set_state(session, SessionState.CLOSED)
        self.counts[SessionState.CLOSED] = 0

    def get(self, group: int, sid: int) -> Session | None:
        return self.by_endpoint.get((group, sid))
