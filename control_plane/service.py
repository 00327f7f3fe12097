"""The control plane's service core: PPPoE sessions through CUPS, without any I/O.

Theory of operation
-------------------
DP workers punt control frames (CPRi); :meth:`ControlPlane.punt` runs them through PPPoE
discovery and the per-session PPP engine (:class:`vnf.engines.ppp_session.PppSession`,
authenticator side) and queues what must happen next in the *outbox*:

* ``tx[dp]`` — frames for that DP to transmit on its access port;
* ``rules[dp]`` / ``full_sync[dp]`` / ``assignments[dp]`` — SCi messages for that DP;
* ``accounting`` — records to make durable (start / interim / stop);
* ``routes_changed`` — the aggregates toward the core must be re-advertised.

The adapter drains the outbox after every batch of input, so replies leave in batches. All
time is the ``now`` the adapter passes in (monotonic seconds); randomness (CHAP challenges,
magic numbers) comes from the injected ``random_bytes``.

Discovery is stateless until a valid PADR (RFC 2516 §5 with an HMAC AC-Cookie bound to the
client MAC, the chosen group and an expiry): a PADI only costs a PADO. Every active DP of a
site hears each broadcast PADI, so identical PADIs within :data:`PADI_DEDUP_S` are answered
once. A PADI we cannot serve gets no PADO (RFC 2516 §5.2: the AC "MUST NOT respond").
"""

from __future__ import annotations

import enum
import heapq
import re
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from control_plane.aaa.local import SubscriberDirectory
from control_plane.aaa.provisioning import ModemDirectory
from control_plane.cable import Cmts, Modem
from control_plane.groups import DpInfo, GroupState, Placement
from control_plane.recent import RecentFrames
from control_plane.replica import (
    AccountingWritten,
    Change,
    Counts,
    EpochSet,
    GroupPlaced,
    KeysUsed,
    ModemPut,
    ModemRecord,
    ModemRemoved,
    ReplicaState,
    SessionClosed,
    SessionRecord,
    SessionUpsert,
    SubscriberPut,
    SubscriberRemoved,
    add_counts,
    sub_counts,
)
from control_plane.sessions import Session, SessionState, SessionTable, Subscription
from vnf.codec.docsis import CARRIER_ETHERTYPE
from vnf.codec.ethernet import EtherType
from vnf.codec.ppp import PppProtocol
from vnf.codec.pppoe import (
    DiscoveryFrame,
    PppoeCode,
    TagType,
    decode_discovery_frame,
    decode_session_frame,
    encode_session_frame,
)
from vnf.config import CpConfig
from vnf.engines.lcp import AuthMethod as LcpAuthMethod
from vnf.engines.ppp_session import (
    Addressing,
    AuthMethod,
    AuthRequested,
    Dropped,
    LinkDown,
    LinkUp,
    NetworkUp,
    PapCredentials,
    Phase,
    PppConfig,
    PppSession,
    PppSnapshot,
    Role,
)
from vnf.engines.pppoe_discovery import AcDiscovery, CookieJar
from vnf.errors import DecodeError
from vnf.model.accounting import AccountingRecord, RecordType
from vnf.model.addresses import int_to_ip, ip_to_int, mac_to_str
from vnf.model.cable import ProvisionedModem
from vnf.model.group import SubscriberGroup
from vnf.model.session import (
    AccessType,
    Qos,
    RuleOp,
    RuleResult,
    SessionRule,
    TerminateCause,
    TrafficEndpoint,
    Usage,
)
from vnf.model.subscriber import Subscriber

PADI_DEDUP_S = 0.5
REMOVE_ACK_TIMEOUT_S = 5.0
MOVE_DRAIN_S = 1.0  # a moved group's old DP keeps it this long (make-before-break)
KEY_BLOCK = 1024  # session keys are replicated as "used up to", a block at a time
TAKEOVER_HISTORY = 32

_PROTOCOL_NAMES: dict[int, str] = {
    PppProtocol.LCP: "lcp",
    PppProtocol.PAP: "pap",
    PppProtocol.CHAP: "chap",
    PppProtocol.IPCP: "ipcp",
    PppProtocol.IPV4: "ipv4",
}
_CODE_NAMES: dict[int, str] = {
    PppoeCode.PADI: "padi",
    PppoeCode.PADO: "pado",
    PppoeCode.PADR: "padr",
    PppoeCode.PADS: "pads",
    PppoeCode.PADT: "padt",
}
_LINK_DOWN_CAUSE = {
    "terminated_by_peer": TerminateCause.USER_REQUEST,
    "lower_down": TerminateCause.USER_REQUEST,
    "echo_timeout": TerminateCause.LOST_CARRIER,
    "auth_failed": TerminateCause.USER_ERROR,
    "auth_timeout": TerminateCause.USER_ERROR,
    "negotiation_failed": TerminateCause.USER_ERROR,
    "terminated": TerminateCause.ADMIN_RESET,
}


class DpRole(enum.StrEnum):
    ACTIVE = "active"
    STANDBY = "standby"


@dataclass(frozen=True, slots=True)
class Assignment:
    """What a DP is told when it connects (SCi): its role and the groups it serves.
    ``prepared``: groups it installs without claiming them yet (make-before-break)."""

    role: DpRole
    groups: tuple[SubscriberGroup, ...]
    core_gateway: int
    prepared: frozenset[int] = frozenset()


@dataclass(slots=True)
class Takeover:
    """One takeover this CP made or drove: a promotion, a DP failover, a group move."""

    kind: str  # cp_failover, cp_switchover, dp_failover, group_move
    from_node: str
    to_node: str
    at_wall: float
    detection_ms: float
    decided: float  # monotonic
    sessions: int
    groups: int
    epoch: int
    takeover_ms: float = -1.0  # -1 while DPs have not acknowledged everything yet
    waiting: dict[str, set[int]] = field(default_factory=dict)  # dp → rule keys not acked

    @property
    def done(self) -> bool:
        return self.takeover_ms >= 0


@dataclass(slots=True)
class Move:
    """A planned, make-before-break move of one group to another DP."""

    group_id: int
    to_dp: str
    takeover: Takeover
    waiting: set[int]  # session keys the target has not acknowledged yet


@dataclass(frozen=True, slots=True)
class PendingStart:
    """An accounting start, with when its session's first PADI was seen (for setup time)."""

    record: AccountingRecord
    padi_mono: float


@dataclass(frozen=True, slots=True)
class SessionQuery:
    username_regex: str = ""
    dp: str = ""
    ipv4: str = ""
    client_mac: str = ""
    state: str = ""


class ControlPlane:
    """Sans-IO control plane: feed it punts, acks, usage and time; drain its outbox."""

    def __init__(
        self,
        config: CpConfig,
        directory: SubscriberDirectory,
        random_bytes: Callable[[int], bytes],
        acct_prefix: str = "00000000",
        wall: Callable[[], float] = lambda: 0.0,
        active: bool = True,
        modems: ModemDirectory | None = None,
    ) -> None:
        self.config = config
        self.wall = wall
        # Redundancy (docs/redundancy.md). A standby core only mirrors the replica and
        # tracks which DPs are connected; promote() makes it serve.
        self.active = active
        self.epoch = 0
        self.replica = ReplicaState()
        self.changes: list[Change] = []  # outbox: to the standby, in order
        self.standby_sync = False  # hold DP rules until the standby has their change
        self.acked_seq = 0
        self._held: deque[tuple[int, str, SessionRule]] = deque()
        self.takeovers: deque[Takeover] = deque(maxlen=TAKEOVER_HISTORY)
        self.moves: dict[int, Move] = {}
        self.moves_done: list[tuple[int, Takeover | None, str]] = []  # outbox
        self.orphaned: dict[int, float] = {}  # group → since when it has no serving DP
        self._unseen: dict[str, float] = {}  # DP → deadline to reach us after a takeover
        self._releases: deque[tuple[float, str]] = deque()  # (when, DP) after a move
        self._settling: deque[tuple[Takeover, str, list[int]]] = deque()  # see settle()
        self.directory = directory
        self.random_bytes = random_bytes
        self.acct_prefix = acct_prefix
        self.placement = Placement(config.groups, config.dps, config.max_sessions_per_group)
        self.sessions = SessionTable()
        cookies = CookieJar(bytes.fromhex(config.cookie_secret), config.cookie_ttl_s)
        self.discovery = AcDiscovery(config.ac_name, config.service_names, cookies)
        methods = tuple(
            AuthMethod.CHAP_MD5 if m == "chap" else AuthMethod.PAP for m in config.auth_methods
        )
        self.ppp_config = PppConfig(
            mru=config.mru,
            auth_methods=methods,
            echo_interval_s=config.echo_interval_s,
            echo_failures=config.echo_failures,
        )
        dns = [ip_to_int(d) for d in config.dns] + [0, 0]
        self.dns = (dns[0], dns[1])
        self.core_gateway = 0
        # Outbox, drained by the adapter.
        self.tx: dict[str, list[bytes]] = {}
        self.rules: dict[str, list[SessionRule]] = {}
        self.full_sync: dict[str, list[SessionRule]] = {}
        self.assignments: dict[str, Assignment] = {}
        self.prepared_on: dict[str, frozenset[int]] = {}  # DP → groups it holds prepared
        self.accounting: list[AccountingRecord] = []
        self.starts: list[PendingStart] = []
        self.routes_changed = True
        # Bookkeeping.
        self.counters: Counter[tuple[str, str]] = Counter()
        self._timers: list[tuple[float, int]] = []
        self._recent_padi = RecentFrames(PADI_DEDUP_S)
        self._padi_seen: dict[bytes, tuple[float, float]] = {}  # mac → (padi rx, now)
        # (group, client MAC, Host-Uniq) → session key, to answer a retransmitted PADR.
        self._by_padr: dict[tuple[int, bytes, bytes | None], int] = {}
        self.cable = Cmts(self, config.cable, modems or ModemDirectory(), wall)
        if active:
            for g in self.placement.by_id.values():
                self._emit(GroupPlaced(g.group_id, g.dp))

    # ------------------------------------------------------------------ DP lifecycle (SCi)

    def dp_connected(self, dp: str, site: str, now: float, max_groups: int = 0) -> None:
        """A DP said Hello. The active gives it its groups and its complete session set; a
        DP that serves no group adopts the site's orphaned groups (their DP failed while no
        standby was there), or else becomes a hot standby of its site."""
        info = self.placement.dps.get(dp)
        if info is None:
            self.counters["dp_rejected", "unknown_dp"] += 1
            raise KeyError(dp)
        info.max_groups = max_groups
        info.connected = True
        info.connected_at = now
        info.last_heartbeat = now
        self.counters["dp_connects", dp] += 1
        if not self.active:
            return
        for g in self.placement.groups_of(dp):
            self.orphaned.pop(g.group_id, None)
        if not self.placement.groups_of(dp):
            for group_id in list(self.orphaned):
                group = self.placement.by_id[group_id]
                if group.group.site == info.site:
                    self._place_group(group, dp)
        self._sync_dp(dp)

    def _assign(self, dp: str) -> tuple[list[GroupState], frozenset[int]]:
        """Queue ``dp``'s assignment: the groups it serves and those it holds prepared."""
        groups = self.placement.groups_of(dp)
        prepared = frozenset(m.group_id for m in self.moves.values() if m.to_dp == dp)
        prepared |= self._hot_groups(dp, groups)
        role = DpRole.ACTIVE if groups else DpRole.STANDBY
        every = tuple(g.group for g in groups) + tuple(
            self.placement.by_id[g].group for g in sorted(prepared)
        )
        self.assignments[dp] = Assignment(role, every, self.core_gateway, prepared)
        self.prepared_on[dp] = prepared
        return groups, prepared

    def _sync_dp(self, dp: str) -> list[SessionRule]:
        """Queue an assignment and a complete (replace-all) rule set for ``dp``."""
        groups, prepared = self._assign(dp)
        rules = []
        wanted = [*groups, *(self.placement.by_id[g] for g in prepared)]
        for g in wanted:
            for key in g.members:
                s = self.sessions.by_key[key]
                if s.state in (
                    SessionState.INSTALLING,
                    SessionState.ACTIVE,
                    SessionState.TERMINATING,
                ) and (not self.standby_sync or 0 < s.replicated_at <= self.acked_seq):
                    rules.append(self._rule(s, RuleOp.INSTALL))
                    s.rule_sent = True
        self.full_sync[dp] = rules
        self.rules.pop(dp, None)  # superseded by the full sync
        self.routes_changed = True
        return rules

    def _hot_groups(self, dp: str, serving: list[GroupState]) -> frozenset[int]:
        """The groups a hot standby DP holds ready (docs/redundancy.md): every group of its
        site, when it serves none and can hold them all. A failover is then a claim: its
        sessions are installed before the failure, not after."""
        info = self.placement.dps[dp]
        if serving or not self.config.hot_standby:
            return frozenset()
        site = [
            g.group.group_id for g in self.placement.by_id.values() if g.group.site == info.site
        ]
        if info.max_groups and len(site) > info.max_groups:
            self.counters["hot_standby_too_small", dp] += 1
            return frozenset()
        return frozenset(site)

    def dp_disconnected(self, dp: str, now: float, last_seen: float | None = None) -> None:
        """A DP's stream ended or went silent: for the active, the DP failed. Its groups
        move to a connected standby DP of its site (N+1); with none, they wait (orphaned)
        and their sessions end after the headless timeout unless a DP comes back."""
        info = self.placement.dps.get(dp)
        if info is None or not info.connected:
            return
        info.connected = False
        self.tx.pop(dp, None)
        self.rules.pop(dp, None)
        self.counters["dp_disconnects", dp] += 1
        if not self.active:
            return
        # Removals waiting for this DP's ack will never get one: close with the last usage.
        for g in self.placement.groups_of(dp):
            for key in list(g.members):
                s = self.sessions.by_key[key]
                if s.state is SessionState.REMOVING:
                    self._close(s, now)
        for move in list(self.moves.values()):
            if move.to_dp == dp:
                self._abort_move(move, f"{dp} failed")
        self._fail_over(info, now, last_seen if last_seen is not None else info.last_heartbeat)

    def _fail_over(self, info: DpInfo, now: float, seen: float) -> None:
        """Move the groups of the failed DP ``info`` to a standby of its site, or orphan them."""
        dp = info.name
        groups = self.placement.groups_of(dp)
        if not groups:
            return
        standby = self._standby_for(info)
        if standby is None:
            self.counters["dp_failures_without_standby", dp] += 1
            for g in groups:
                self.orphaned.setdefault(g.group_id, now)
            return
        takeover = Takeover(
            "dp_failover",
            dp,
            standby.name,
            self.wall(),
            max(0.0, (now - seen) * 1000.0),
            now,
            sum(g.sessions for g in groups),
            len(groups),
            self.epoch,
        )
        hot = {g.group_id for g in groups} <= self.prepared_on.get(standby.name, frozenset())
        for g in groups:
            self._place_group(g, standby.name, replicate=not hot)
        if hot:
            # The standby holds every session already: the claim is all that is urgent.
            # The confirming full set and the standby CP's session records follow in
            # settle(), once the adapter has sent the claim.
            self._assign(standby.name)
            self._settling.append((takeover, standby.name, [g.group_id for g in groups]))
        else:
            self._track(takeover, standby.name, self._sync_dp(standby.name))
        self.counters["failovers", "dp"] += 1

    @property
    def unsettled(self) -> bool:
        return bool(self._settling)

    def settle(self) -> None:
        """The unhurried half of hot-standby failovers (see :meth:`_fail_over`): the full
        rule set that confirms the new DP holds every session, and the session records."""
        while self._settling:
            takeover, dp, group_ids = self._settling.popleft()
            for group_id in group_ids:
                for key in self.placement.by_id[group_id].members:
                    s = self.sessions.by_key[key]
                    if s.replicated_at:
                        self.replicate(s)
            if self.placement.dps[dp].connected:
                self._track(takeover, dp, self._sync_dp(dp))

    def _standby_for(self, failed: DpInfo) -> DpInfo | None:
        """A connected DP of the same site that serves no group; configured standbys first."""
        candidates = [
            d
            for d in self.placement.dps.values()
            if d.site == failed.site
            and d.connected
            and d.name != failed.name
            and not self.placement.groups_of(d.name)
            and not any(m.to_dp == d.name for m in self.moves.values())
        ]
        candidates.sort(key=lambda d: (d.role != "standby", d.name))
        return candidates[0] if candidates else None

    def _place_group(
        self, group: GroupState, dp: str, draining: str = "", replicate: bool = True
    ) -> None:
        """``group`` is served by ``dp`` from now on. Its sessions keep what the old DP
        counted as their base; ``draining``: the old DP still runs and will report its final
        counts (a planned move), which then join the base (:meth:`usage`). ``replicate``:
        send the sessions' new records to the standby CP now (else :meth:`settle` does)."""
        self.orphaned.pop(group.group_id, None)
        group.dp = dp
        self._emit(GroupPlaced(group.group_id, dp))
        for key in group.members:
            s = self.sessions.by_key[key]
            s.moved_from, s.moved_usage = draining, sub_counts(s.usage, s.base)
            s.base = s.usage
            if replicate and s.replicated_at:
                self.replicate(s)
        self.routes_changed = True

    def _track(self, takeover: Takeover, dp: str, rules: list[SessionRule]) -> None:
        """Remember ``takeover`` until ``dp`` acknowledged ``rules``."""
        takeover.waiting[dp] = {r.session_key for r in rules}
        if takeover not in self.takeovers:
            self.takeovers.append(takeover)

    def _acked(self, dp: str, keys: Iterable[int], now: float) -> None:
        pending = [t for t in self.takeovers if not t.done and dp in t.waiting]
        if not pending:
            return
        keys = set(keys)
        for t in pending:
            left = t.waiting[dp]
            left -= keys
            if not left:
                del t.waiting[dp]
            if not t.waiting:
                t.takeover_ms = (now - t.decided) * 1000.0

    def dp_heartbeat(self, dp: str, sessions: int, now: float) -> None:
        info = self.placement.dps.get(dp)
        if info is not None:
            info.last_heartbeat = now
            info.sessions = sessions

    def tick(self, now: float) -> None:
        """Periodic work of the active (every heartbeat interval): release the old DP of a
        finished move after its drain; fail over DPs that did not reach us within the
        detection time after a takeover; end the sessions of groups without a serving DP
        for the headless timeout (their DP flushed them by now; accounting stops with the
        last counters reported)."""
        if not self.active:
            return
        self.settle()
        while self._releases and self._releases[0][0] <= now:
            _, old = self._releases.popleft()
            if self.placement.dps[old].connected:
                self._sync_dp(old)
        for dp, deadline in list(self._unseen.items()):
            info = self.placement.dps[dp]
            if info.connected:
                del self._unseen[dp]
            elif now >= deadline:
                del self._unseen[dp]
                self._fail_over(info, now, info.last_heartbeat)
        timeout = self.config.headless_timeout_s
        if timeout <= 0:
            return
        for group_id, since in list(self.orphaned.items()):
            if now - since < timeout:
                continue
            del self.orphaned[group_id]
            group = self.placement.by_id[group_id]
            self.counters["orphaned_groups_expired", ""] += 1
            for key in list(group.members):
                s = self.sessions.by_key.get(key)
                if s is not None:
                    s.cause = TerminateCause.LOST_SERVICE
                    self._close(s, now)

    # ------------------------------------------------------------------ planned moves

    def start_move(self, group_id: int, to_dp: str, now: float) -> Move:
        """Make-before-break: install the group on ``to_dp`` first, claim it once every
        session is acknowledged there (:meth:`rule_ack`), then release the old DP.
        Raises ValueError with a one-line reason when the move is impossible."""
        group = self.placement.by_id.get(group_id)
        if group is None:
            raise ValueError(f"no subscriber group {group_id}")
        target = self.placement.dps.get(to_dp)
        if target is None:
            raise ValueError(f"no data-plane worker {to_dp!r}")
        if group.dp == to_dp:
            raise ValueError(f"group {group_id} is already on {to_dp}")
        if target.site != group.group.site:
            raise ValueError(
                f"{to_dp} is in site {target.site}, group {group_id} in {group.group.site}"
            )
        if not target.connected:
            raise ValueError(f"{to_dp} is not connected")
        if group_id in self.moves:
            raise ValueError(f"group {group_id} is already moving")
        if not self.active:
            raise ValueError("this control plane is not active")
        takeover = Takeover(
            "group_move", group.dp, to_dp, self.wall(), 0.0, now, group.sessions, 1, self.epoch
        )
        move = Move(group_id, to_dp, takeover, set())
        self.moves[group_id] = move
        rules = self._sync_dp(to_dp)
        move.waiting = {r.session_key for r in rules if r.group == group_id}
        self.counters["group_moves", "started"] += 1
        if not move.waiting:
            self._complete_move(move, now)
        return move

    def _complete_move(self, move: Move, now: float) -> None:
        group = self.placement.by_id[move.group_id]
        old = group.dp
        del self.moves[move.group_id]
        self._place_group(group, move.to_dp, draining=old)
        self._sync_dp(move.to_dp)
        # The old DP keeps forwarding the group a little longer: until the core's routes
        # follow, its downstream frames can still teach the access bridge its port.
        self._releases.append((now + MOVE_DRAIN_S, old))
        move.takeover.takeover_ms = (now - move.takeover.decided) * 1000.0
        self.takeovers.append(move.takeover)
        self.moves_done.append((move.group_id, move.takeover, ""))
        self.counters["group_moves", "done"] += 1

    def _abort_move(self, move: Move, reason: str) -> None:
        del self.moves[move.group_id]
        if self.placement.dps[move.to_dp].connected:
            self._sync_dp(move.to_dp)
        self.moves_done.append((move.group_id, None, reason))
        self.counters["group_moves", "aborted"] += 1

    # ------------------------------------------------------------------ the 1+1 pair

    def _emit(self, change: Change) -> None:
        """Apply a replicated change here and queue it for the standby."""
        self.replica.apply(change)
        self.changes.append(change)

    def put_subscribers(self, subscribers: Iterable[Subscriber]) -> None:
        for sub in subscribers:
            self.directory.put(sub)
            self._emit(SubscriberPut(sub))

    def remove_subscribers(self, usernames: Iterable[str]) -> None:
        for name in usernames:
            self.directory.remove(name)
            self._emit(SubscriberRemoved(name))

    def put_modems(self, modems: Iterable[ProvisionedModem], now: float) -> None:
        """Provision modems (the store has them already). An online modem whose service
        class changed gets a DSC to the new one."""
        for modem in modems:
            self.cable.directory.put(modem)
            self._emit(ModemPut(modem))
            online = self.cable.by_mac.get(modem.mac)
            if online is not None and online.service_class != modem.service_class:
                self.cable.change_class(online, modem.service_class, now)

    def remove_modems(self, macs: Iterable[bytes]) -> None:
        for mac in macs:
            self.cable.directory.remove(mac)
            self._emit(ModemRemoved(mac))

    def reset_modem(self, mac: bytes, now: float) -> bool:
        modem = self.cable.by_mac.get(mac)
        if modem is None or not self.active:
            return False
        self.cable.reset(modem, now)
        return True

    def mirror(self, changes: Iterable[Change], snapshot: bool = False) -> list[Change]:
        """Standby: apply the active's changes with the same reducer. Returns those the
        adapter must make durable here too (accounting records, subscribers)."""
        if snapshot:
            self.replica.reset()
        durable: list[Change] = []
        for change in changes:
            self.replica.apply(change)
            if isinstance(change, SubscriberPut):
                self.directory.put(change.subscriber)
                durable.append(change)
            elif isinstance(change, SubscriberRemoved):
                self.directory.remove(change.username)
                durable.append(change)
            elif isinstance(change, ModemPut):
                self.cable.directory.put(change.modem)
                durable.append(change)
            elif isinstance(change, ModemRemoved):
                self.cable.directory.remove(change.mac)
                durable.append(change)
            elif isinstance(change, AccountingWritten):
                durable.append(change)
        return durable

    def set_standby_sync(self, on: bool) -> None:
        """While a standby is subscribed, DP rules wait for its acknowledgement."""
        self.standby_sync = on
        if not on:
            self.replication_acked(self.replica.seq)

    def replication_acked(self, seq: int) -> None:
        self.acked_seq = max(self.acked_seq, seq)
        held = self._held
        while held and held[0][0] <= self.acked_seq:
            _, dp, rule = held.popleft()
            self.rules.setdefault(dp, []).append(rule)

    def promote(self, epoch: int, now: float, kind: str, from_cp: str, detection_ms: float) -> None:
        """Become the active CP: rebuild live sessions from the replica and drive every
        connected DP with ``epoch`` (newer than any it has seen)."""
        if self.active:
            return
        self.active = True
        self.epoch = epoch
        self._emit(EpochSet(epoch))
        for group_id, dp in self.replica.placement.items():
            group = self.placement.by_id.get(group_id)
            if group is not None and dp in self.placement.dps:
                group.dp = dp
        for group in self.placement.by_id.values():
            if group.group_id not in self.replica.placement:  # a fresh pair: the initial one
                self._emit(GroupPlaced(group.group_id, group.dp))
        self.sessions.keys_from(self.replica.next_key)
        wall = self.wall()
        for record in self.replica.sessions.values():
            if isinstance(record, ModemRecord):
                self._restore_modem(record, now, wall)
            else:
                self._restore(record, now, wall)
        takeover = Takeover(
            kind,
            from_cp,
            self.config.name,
            wall,
            detection_ms,
            now,
            len(self.sessions),
            len(self.replica.placement),
            epoch,
        )
        for name, info in self.placement.dps.items():
            if info.connected:
                self._track(takeover, name, self._sync_dp(name))
        if not takeover.waiting:
            takeover.takeover_ms = 0.0
        if takeover not in self.takeovers:
            self.takeovers.append(takeover)
        self.counters["failovers", "cp" if kind == "cp_failover" else "cp_switchover"] += 1
        if kind != "cp_start":
            # A DP serving groups that is not connected to us may be dead (or just slower
            # to reach us): fail it over unless it connects within the detection time.
            for info in self.placement.dps.values():
                if not info.connected and self.placement.groups_of(info.name):
                    self._unseen[info.name] = now + self.config.detect_s
        self.routes_changed = True

    def _restore(self, record: SessionRecord, now: float, wall: float) -> None:
        group = self.placement.by_id.get(record.group)
        if group is None:
            return
        method = LcpAuthMethod.PAP if record.auth == "pap" else LcpAuthMethod.CHAP_MD5
        snapshot = PppSnapshot(
            record.magic,
            record.peer_magic,
            record.peer_mru,
            method,
            record.username,
            Addressing(group.pool.gateway, record.ipv4, self.dns[0], self.dns[1]),
        )
        ppp = PppSession.restore(
            Role.AUTHENTICATOR, self.ppp_config, snapshot, now, random_bytes=self.random_bytes
        )
        s = Session(
            record.key, record.group, record.sid, record.client_mac, record.host_uniq, ppp, now, now
        )
        s.username = record.username
        s.auth = record.auth
        s.ipv4 = record.ipv4
        s.acct_id = record.acct_id
        s.reserved = False
        s.rule_sent = False
        s.started = record.started
        s.base = record.base
        s.usage = record.usage
        s.up_wall = record.up_wall
        s.interim_wall = record.interim_wall
        s.replicated_at = max(1, self.replica.seq)
        group.session_ids.claim(record.sid)
        group.pool.claim(record.ipv4)
        group.members.add(s.key)
        self.sessions.add(s)
        if record.active:
            self.sessions.set_state(s, SessionState.ACTIVE)
            s.up_mono = now - max(0.0, wall - record.up_wall)
            since = max(0.0, wall - record.interim_wall)
            s.interim_at = now + max(0.0, self.config.interim_interval_s - since)
        else:
            self.sessions.set_state(s, SessionState.INSTALLING)
        self.schedule(s)

    def _restore_modem(self, record: ModemRecord, now: float, wall: float) -> None:
        modem = self.cable.restore(record, now, wall)
        if modem is None:
            return
        modem.replicated_at = max(1, self.replica.seq)
        self.placement.by_id[record.group].members.add(modem.key)
        self.sessions.add(modem)
        if record.active:
            self.sessions.set_state(modem, SessionState.ACTIVE)
            modem.up_mono = now - max(0.0, wall - record.up_wall)
            since = max(0.0, wall - record.interim_wall)
            modem.interim_at = now + max(0.0, self.config.interim_interval_s - since)
        elif record.ipv4:
            self.sessions.set_state(modem, SessionState.INSTALLING)
        self.schedule(modem)

    def replicate(self, s: Subscription) -> None:
        """Send ``s``'s current record to the standby CP."""
        if isinstance(s, Modem):
            self._emit(SessionUpsert(self.cable.record(s)))
        else:
            assert isinstance(s, Session)
            self._emit(SessionUpsert(self._record_of(s)))
        if not s.replicated_at:
            s.replicated_at = self.replica.seq

    def _record_of(self, s: Session) -> SessionRecord:
        return SessionRecord(
            key=s.key,
            group=s.group,
            sid=s.sid,
            client_mac=s.client_mac,
            host_uniq=s.host_uniq,
            username=s.username,
            auth=s.auth,
            ipv4=s.ipv4,
            acct_id=s.acct_id,
            active=s.state is SessionState.ACTIVE or s.started,
            started=s.started,
            up_wall=s.up_wall,
            interim_wall=s.interim_wall,
            base=s.base,
            usage=s.usage,
            magic=s.ppp.magic,
            peer_magic=s.ppp.peer_magic,
            peer_mru=s.ppp.mru,
        )

    # ------------------------------------------------------------------ CPRi: punted frames

    def punt(self, dp: str, frame: bytes, rx_time: float, now: float) -> None:
        """One control frame a DP received on its access port. Never raises on garbage."""
        self.counters["punts_rx", dp] += 1
        if not self.active:
            self.drop("not_active")
            return
        if len(frame) < 14:
            self.drop("truncated")
            return
        ethertype = (frame[12] << 8) | frame[13]
        if ethertype == EtherType.PPPOE_SESSION:
            self._on_session_frame(frame, now)
        elif ethertype == EtherType.PPPOE_DISCOVERY:
            self._on_discovery_frame(dp, frame, rx_time, now)
        elif ethertype == CARRIER_ETHERTYPE:
            self.cable.punt(dp, frame, now)
        else:
            self.drop("unknown_ethertype")

    def _on_discovery_frame(self, dp: str, raw: bytes, rx_time: float, now: float) -> None:
        try:
            frame = decode_discovery_frame(raw)
        except DecodeError as exc:
            self.drop(f"pppoe_{exc.reason}")
            return
        code = frame.packet.code
        name = _CODE_NAMES.get(code, "other")
        if code == PppoeCode.PADI:
            self._on_padi(dp, frame, raw, rx_time, now)
        elif code == PppoeCode.PADR:
            self.counters["discovery_rx", name] += 1
            self._on_padr(frame, now)
        elif code == PppoeCode.PADT:
            self.counters["discovery_rx", name] += 1
            self._on_padt(frame, now)
        else:
            self.counters["discovery_rx", name] += 1
            self.drop("unexpected_discovery_code")

    def _on_padi(
        self, dp: str, frame: DiscoveryFrame, raw: bytes, rx_time: float, now: float
    ) -> None:
        if not self._recent_padi.first(raw, now):
            self.counters["padi_duplicates", ""] += 1
            return
        self.counters["discovery_rx", "padi"] += 1
        reason = self.discovery.classify_padi(frame)
        if reason is not None:
            self.drop(reason)
            return
        info = self.placement.dps.get(dp)
        site = info.site if info is not None else ""
        group = self.placement.select(site, now)
        if group is None:
            self.drop("no_capacity")
            return
        seen = self._padi_seen
        while seen:
            oldest_mac = next(iter(seen))
            if now - seen[oldest_mac][1] <= self.config.cookie_ttl_s:
                break
            del seen[oldest_mac]
        seen.pop(frame.src, None)
        seen[frame.src] = (rx_time, now)
        self.send(group, self.discovery.make_pado(frame, group.mac, group.group_id, now))
        self.placement.offered(group, now + self.config.cookie_ttl_s)
        self.counters["discovery_tx", "pado"] += 1

    def _on_padr(self, frame: DiscoveryFrame, now: float) -> None:
        group = self.placement.by_mac.get(frame.dst)
        if group is None:
            self.drop("not_our_mac")
            return
        verdict = self.discovery.check_padr(frame, now)
        if not verdict.ok:
            self.drop(verdict.reason)
            return
        if verdict.group != group.group_id:
            self.drop("forged_cookie")
            return
        self.placement.answered(group)
        host_uniq = frame.packet.tag(TagType.HOST_UNIQ)
        earlier = self.sessions.by_key.get(
            self._by_padr.get((group.group_id, frame.src, host_uniq), 0)
        )
        if (
            isinstance(earlier, Session)
            and earlier.state is SessionState.NEGOTIATING
            and earlier.ppp.phase is Phase.ESTABLISH
        ):
            # A retransmitted PADR (our PADS was lost): answer with the same session.
            self.counters["padr_retransmits", ""] += 1
            self.send(group, self.discovery.make_pads(frame, group.mac, earlier.sid))
            self.counters["discovery_tx", "pads"] += 1
            return
        if not group.has_capacity():
            reason = "session_ids_exhausted" if group.session_ids.free == 0 else "pool_exhausted"
            self._refuse(group, frame, reason)
            return
        sid = group.session_ids.allocate()
        if sid is None:  # has_capacity() said otherwise; keep the invariant visible
            self._refuse(group, frame, "session_ids_exhausted")
            return
        padi = self._padi_seen.pop(frame.src, None)
        ppp = PppSession(
            Role.AUTHENTICATOR,
            self.ppp_config,
            magic=int.from_bytes(self.random_bytes(4), "big") or 1,
            random_bytes=self.random_bytes,
        )
        key = self.next_key()
        s = Session(
            key,
            group.group_id,
            sid,
            frame.src,
            host_uniq,
            ppp,
            now,
            padi[0] if padi else now,
        )
        s.acct_id = f"{self.acct_prefix}-{s.key:08x}"
        self.sessions.add(s)
        self._by_padr[group.group_id, frame.src, host_uniq] = s.key
        group.members.add(s.key)
        group.reserved += 1
        self.send(group, self.discovery.make_pads(frame, group.mac, sid))
        self.counters["discovery_tx", "pads"] += 1
        ppp.open(now)
        self._pump(s, now)

    def _refuse(self, group: GroupState, frame: DiscoveryFrame, reason: str) -> None:
        """PADS with session id 0 and AC-System-Error (RFC 2516 §5.4): no resources."""
        self.drop(reason)
        pads = self.discovery.make_pads_error(
            frame, group.mac, TagType.AC_SYSTEM_ERROR, "insufficient resources"
        )
        self.send(group, pads)
        self.counters["discovery_tx", "pads_error"] += 1

    def _on_padt(self, frame: DiscoveryFrame, now: float) -> None:
        group = self.placement.by_mac.get(frame.dst)
        if group is None:
            self.drop("padt_not_our_mac")
            return
        s = self.sessions.get(group.group_id, frame.packet.session_id)
        if s is None:
            self.drop("padt_unknown_session")
            return
        if s.client_mac != frame.src:
            self.drop("padt_wrong_mac")
            return
        if s.cause is None:
            s.cause = TerminateCause.USER_REQUEST
        s.ppp.lower_down(now)
        self._pump(s, now)

    def _on_session_frame(self, raw: bytes, now: float) -> None:
        try:
            frame = decode_session_frame(raw)
        except DecodeError as exc:
            self.drop(f"pppoe_{exc.reason}")
            return
        group = self.placement.by_mac.get(frame.dst)
        if group is None:
            self.drop("not_our_mac")
            return
        s = self.sessions.get(group.group_id, frame.session_id)
        if s is None:
            # A session this CP does not know (it was negotiating when the active it took
            # over from failed, or it ended): tell the client at once rather than let it
            # wait for its echo timeout.
            self.drop("unknown_session")
            self.send(group, self.discovery.make_padt(frame.src, group.mac, frame.session_id))
            self.counters["discovery_tx", "padt_unknown_session"] += 1
            return
        if s.client_mac != frame.src:
            self.drop("wrong_mac")
            return
        self.counters["ppp_rx", _PROTOCOL_NAMES.get(frame.protocol, "other")] += 1
        s.ppp.receive(frame.protocol, frame.payload, now)
        self._pump(s, now)

    # ------------------------------------------------------------------ per-session engine

    def _pump(self, s: Session, now: float) -> None:
        """Move a session's engine output to the outbox and react to its events."""
        group = self.placement.by_id[s.group]
        ppp = s.ppp
        while True:
            packets = ppp.packets_to_send()
            for protocol, payload in packets:
                frame = encode_session_frame(s.client_mac, group.mac, s.sid, protocol, payload)
                self.send(group, frame)
                self.counters["ppp_tx", _PROTOCOL_NAMES.get(protocol, "other")] += 1
            event = ppp.next_event()
            if event is None and not packets:
                break
            if event is None:
                continue
            if isinstance(event, AuthRequested):
                self._authenticate(s, group, event, now)
            elif isinstance(event, NetworkUp):
                self._network_up(s, group, event.addressing)
            elif isinstance(event, LinkDown):
                self._link_down(s, event.reason, now)
                if s.state is SessionState.CLOSED:
                    return
            elif isinstance(event, LinkUp):
                self.counters["lcp_up", ""] += 1
            elif isinstance(event, Dropped):
                self.drop(f"{event.layer}_{event.reason}")
        self.schedule(s)

    def _authenticate(
        self, s: Session, group: GroupState, event: AuthRequested, now: float
    ) -> None:
        decision = self.directory.authenticate(event.credentials)
        method = "pap" if isinstance(event.credentials, PapCredentials) else "chap"
        s.username = event.credentials.username
        s.auth = method
        if not decision.ok:
            self.counters["auth_fail", decision.reason] += 1
            s.cause = TerminateCause.USER_ERROR
            s.ppp.auth_result(False, now, decision.reply_message)
            return
        address = group.pool.allocate()
        if address is None:
            self.counters["auth_ok", method] += 1
            self.drop("pool_exhausted")
            s.cause = TerminateCause.NAS_ERROR
            s.ppp.close(now, "no address available")
            return
        self.counters["auth_ok", method] += 1
        if s.reserved:
            group.reserved -= 1
            s.reserved = False
        s.ipv4 = address
        addressing = Addressing(group.pool.gateway, address, self.dns[0], self.dns[1])
        s.ppp.auth_result(True, now, decision.reply_message, addressing)

    def _network_up(self, s: Session, group: GroupState, addressing: Addressing) -> None:
        self.counters["ipcp_up", ""] += 1
        if s.state is not SessionState.NEGOTIATING:
            return
        self.sessions.set_state(s, SessionState.INSTALLING)
        self._forget_padr(s)
        # The standby learns of the session before any DP forwards for it.
        self.replicate(s)
        if self._queue_rule(group, self._rule(s, RuleOp.INSTALL)):
            s.rule_sent = True
        # else: installed by the full sync when the DP (re)connects.

    def _link_down(self, s: Session, reason: str, now: float) -> None:
        cause = s.cause or _LINK_DOWN_CAUSE.get(reason, TerminateCause.NAS_ERROR)
        self.counters["link_down", reason] += 1
        # A PADT from the client took the link down: it knows; no PADT back.
        self.finish(s, cause, now, send_padt=reason != "lower_down")

    def finish(
        self, s: Subscription, cause: TerminateCause, now: float, send_padt: bool = False
    ) -> None:
        """End ``s``: remove its rule (final counters come with the ack), then close."""
        if s.state in (SessionState.REMOVING, SessionState.CLOSED):
            return
        if s.cause is None:
            s.cause = cause
        group = self.placement.by_id[s.group]
        if send_padt and isinstance(s, Session):
            self.send(group, self.discovery.make_padt(s.client_mac, group.mac, s.sid))
            self.counters["discovery_tx", "padt"] += 1
        if s.rule_sent and s.state in (
            SessionState.INSTALLING,
            SessionState.ACTIVE,
            SessionState.TERMINATING,
        ):
            self.sessions.set_state(s, SessionState.REMOVING)
            if not self._queue_rule(group, self._rule(s, RuleOp.REMOVE)):
                self._close(s, now)
                return
            s.remove_deadline = now + REMOVE_ACK_TIMEOUT_S
            self.schedule(s)
            return
        self._close(s, now)

    def _close(self, s: Subscription, now: float) -> None:
        """Last step: accounting stop (if it started), give back the id and the address."""
        if s.state is SessionState.CLOSED:
            return
        group = self.placement.by_id[s.group]
        cause = s.cause or TerminateCause.NAS_ERROR
        if s.started:
            self._account(self._record(s, RecordType.STOP, now, cause.label))
        if s.replicated_at:
            self._emit(SessionClosed(s.key))
        move = self.moves.get(s.group)
        if move is not None:
            move.waiting.discard(s.key)
        if s.reserved:
            group.reserved -= 1
            s.reserved = False
        if s.ipv4:
            group.pool.release(s.ipv4)
        group.members.discard(s.key)
        if isinstance(s, Modem):
            group.sids.release(s.sid)
            self.cable.closed(s)
        elif isinstance(s, Session):
            group.session_ids.release(s.sid)
            self._forget_padr(s)
        self.sessions.remove(s)
        self.counters["sessions_closed", cause.label] += 1

    # ------------------------------------------------------------------ SCi results

    def rule_ack(
        self, dp: str, results: Iterable[RuleResult], final: Iterable[Usage], now: float
    ) -> None:
        self.usage(final, dp)
        results = list(results)
        self._acked(dp, (r.session_key for r in results), now)
        for result in results:
            s = self.sessions.by_key.get(result.session_key)
            if s is None:
                self.counters["acks_unknown_session", ""] += 1
                continue
            move = self.moves.get(s.group)
            if move is not None and move.to_dp == dp:
                if not result.ok and s.state is not SessionState.REMOVING:
                    self._abort_move(move, f"{dp} refused session {s.key}: {result.error}")
                    continue
                move.waiting.discard(s.key)
                if not move.waiting:
                    self._complete_move(move, now)
                continue  # the serving DP's ack decides the session's state
            if self.placement.by_id[s.group].dp != dp:
                continue  # an ack from a DP that no longer serves the group
            if s.state is SessionState.INSTALLING:
                if result.ok:
                    self._activate(s, now)
                else:
                    self.counters["rule_failures", dp] += 1
                    s.cause = TerminateCause.NAS_ERROR
                    s.rule_sent = False
                    if not isinstance(s, Session):
                        self._close(s, now)
                        continue
                    s.ppp.close(now, "forwarding unavailable")
                    self.sessions.set_state(s, SessionState.TERMINATING)
                    self._pump(s, now)
            elif s.state is SessionState.REMOVING:
                self._close(s, now)

    def _activate(self, s: Subscription, now: float) -> None:
        self.sessions.set_state(s, SessionState.ACTIVE)
        if s.started:  # restored after a takeover: the start was written before
            self.replicate(s)
            return
        s.up_mono = now
        s.up_wall = s.interim_wall = self.wall()
        s.started = True
        s.interim_at = now + self.config.interim_interval_s
        self.replicate(s)
        record = self._record(s, RecordType.START, now)
        self._account(record)
        self.starts.append(PendingStart(record, s.setup_mono))
        self.counters["sessions_established", ""] += 1
        self.schedule(s)

    def usage(self, reports: Iterable[Usage], dp: str = "") -> None:
        """Cumulative counters from ``dp`` (empty: the serving DP). A session's total is
        its base (what earlier DPs counted) plus its serving DP's count; the final count of
        the DP a planned move took it from still lands in the base."""
        by_key = self.sessions.by_key
        for u in reports:
            s = by_key.get(u.session_key)
            if s is None:
                continue
            counts: Counts = (u.up_packets, u.up_bytes, u.down_packets, u.down_bytes)
            if dp and s.moved_from == dp:
                s.base = add_counts(s.base, sub_counts(counts, s.moved_usage))
                s.usage = add_counts(s.usage, sub_counts(counts, s.moved_usage))
                s.moved_usage = counts
            elif not dp or self.placement.by_id[s.group].dp == dp:
                s.usage = add_counts(s.base, counts)

    # ------------------------------------------------------------------ management

    def find(self, query: SessionQuery) -> list[Session]:
        pattern = re.compile(query.username_regex) if query.username_regex else None
        ip = ip_to_int(query.ipv4) if query.ipv4 else None
        mac = query.client_mac.lower()
        out = []
        for s in self.sessions.by_key.values():
            if not isinstance(s, Session):
                continue
            if pattern is not None and not pattern.search(s.username):
                continue
            if query.dp and self.placement.by_id[s.group].dp != query.dp:
                continue
            if ip is not None and s.ipv4 != ip:
                continue
            if mac and mac_to_str(s.client_mac) != mac:
                continue
            if query.state and s.state.value != query.state:
                continue
            out.append(s)
        return out

    def terminate(self, sessions: Iterable[Session], cause: TerminateCause, now: float) -> int:
        """Administrative close: LCP Terminate-Request, then (on Ack or timeout) PADT."""
        count = 0
        for s in list(sessions):
            if s.state in (SessionState.REMOVING, SessionState.CLOSED, SessionState.TERMINATING):
                continue
            s.cause = cause
            self.sessions.set_state(s, SessionState.TERMINATING)
            s.ppp.close(now, "administrative termination")
            self._pump(s, now)
            count += 1
        return count

    def shutdown(self, now: float) -> int:
        """Clean stop of the CP: every session ends now (LCP Terminate-Request and PADT at
        once, rule removal for final counters). The adapter then waits for the acks."""
        count = 0
        for s in list(self.sessions.by_key.values()):
            if s.state in (SessionState.REMOVING, SessionState.CLOSED):
                continue
            s.cause = TerminateCause.NAS_REBOOT
            if isinstance(s, Modem):
                self.finish(s, TerminateCause.NAS_REBOOT, now)
                count += 1
                continue
            assert isinstance(s, Session)
            s.ppp.close(now, "access concentrator shutting down")
            group = self.placement.by_id[s.group]
            for protocol, payload in s.ppp.packets_to_send():
                frame = encode_session_frame(s.client_mac, group.mac, s.sid, protocol, payload)
                self.send(group, frame)
            self.finish(s, TerminateCause.NAS_REBOOT, now, send_padt=True)
            count += 1
        return count

    def force_close_all(self, now: float) -> None:
        """Close what is still waiting for a DP's ack (end of a shutdown)."""
        for s in list(self.sessions.by_key.values()):
            self._close(s, now)

    # ------------------------------------------------------------------ time

    def next_deadline(self) -> float | None:
        return self._timers[0][0] if self._timers else None

    def handle_timers(self, now: float) -> None:
        timers = self._timers
        while timers and timers[0][0] <= now:
            at, key = heapq.heappop(timers)
            s = self.sessions.by_key.get(key)
            if s is None or s.timer_at != at:
                continue  # stale entry
            s.timer_at = None
            if s.state is SessionState.REMOVING and now >= s.remove_deadline:
                self.counters["remove_ack_timeouts", ""] += 1
                self._close(s, now)
                continue
            if s.state is SessionState.ACTIVE and now >= s.interim_at:
                s.interim_wall = self.wall()
                self.replicate(s)
                self._account(self._record(s, RecordType.INTERIM, now))
                s.interim_at += self.config.interim_interval_s
                if s.interim_at <= now:  # we were late by more than an interval: don't burst
                    s.interim_at = now + self.config.interim_interval_s
            if isinstance(s, Modem):
                self.cable.handle_timer(s, now)
                self.schedule(s)
                continue
            assert isinstance(s, Session)
            deadline = s.ppp.get_timer()
            if deadline is not None and deadline <= now:
                s.ppp.handle_timer(now)
            self._pump(s, now)

    def schedule(self, s: Subscription) -> None:
        """(Re)arm ``s``'s one timer entry: protocol timer, interim update or removal."""
        if s.state is SessionState.CLOSED:
            return
        if isinstance(s, Modem):
            at = self.cable.timer(s) if s.state is not SessionState.REMOVING else None
        else:
            assert isinstance(s, Session)
            at = s.ppp.get_timer()
        if s.state is SessionState.ACTIVE and (at is None or s.interim_at < at):
            at = s.interim_at
        if s.state is SessionState.REMOVING and (at is None or s.remove_deadline < at):
            at = s.remove_deadline
        if at != s.timer_at:
            s.timer_at = at
            if at is not None:
                heapq.heappush(self._timers, (at, s.key))

    # ------------------------------------------------------------------ helpers

    def _forget_padr(self, s: Session) -> None:
        """Past discovery a PADR for this session can no longer be a retransmission."""
        padr = (s.group, s.client_mac, s.host_uniq)
        if self._by_padr.get(padr) == s.key:
            del self._by_padr[padr]

    def _queue_rule(self, group: GroupState, rule: SessionRule) -> bool:
        """Queue ``rule`` for the group's serving DP and every DP holding the group prepared
        (a move's target, hot standbys), behind the standby CP's acknowledgement when one
        is subscribed. False: no serving DP or move target to send it to."""
        targets = []
        if self.placement.serving(group) is not None:
            targets.append(group.dp)
        move = self.moves.get(group.group_id)
        if move is not None and rule.op is RuleOp.INSTALL:
            move.waiting.add(rule.session_key)
        holders = [
            dp
            for dp, held in self.prepared_on.items()
            if group.group_id in held and dp != group.dp and self.placement.dps[dp].connected
        ]
        decisive = bool(targets) or move is not None
        for dp in targets + holders:
            if self.standby_sync and self.replica.seq > self.acked_seq:
                self._held.append((self.replica.seq, dp, rule))
            else:
                self.rules.setdefault(dp, []).append(rule)
        return decisive

    def next_key(self) -> int:
        """A new session key, never used before (also not by the CP we took over from)."""
        key = self.sessions.next_key()
        if key >= self.replica.next_key:
            self._emit(KeysUsed(key + KEY_BLOCK))
        return key

    def install(self, s: Subscription) -> None:
        """``s`` has its address: replicate it and install its rule (cable modems; PPPoE
        does the same in :meth:`_network_up`)."""
        if s.state is not SessionState.NEGOTIATING:
            return
        self.sessions.set_state(s, SessionState.INSTALLING)
        self.replicate(s)
        group = self.placement.by_id[s.group]
        if self._queue_rule(group, self._rule(s, RuleOp.INSTALL)):
            s.rule_sent = True

    def modify(self, s: Subscription) -> None:
        """Send ``s``'s changed rule (its QoS) to the DPs that hold it; replicate it."""
        if s.replicated_at:
            self.replicate(s)
        if s.rule_sent and s.state in (SessionState.INSTALLING, SessionState.ACTIVE):
            self._queue_rule(self.placement.by_id[s.group], self._rule(s, RuleOp.MODIFY))

    def send_via(self, dp: str, frame: bytes) -> None:
        """A frame out of ``dp``'s access port, whatever groups it serves."""
        self.tx.setdefault(dp, []).append(frame)

    def _account(self, record: AccountingRecord) -> None:
        self.accounting.append(record)
        self._emit(AccountingWritten(record))

    def send(self, group: GroupState, frame: bytes) -> None:
        info = self.placement.serving(group)
        if info is None:
            self.drop("dp_unavailable")
            return
        self.tx.setdefault(info.name, []).append(frame)

    def drop(self, reason: str) -> None:
        self.counters["drops", reason] += 1

    def _rule(self, s: Subscription, op: RuleOp) -> SessionRule:
        group = self.placement.by_id[s.group]
        if isinstance(s, Modem):
            profile = self.cable.profile(s.service_class)
            endpoint = TrafficEndpoint(
                s.client_mac, group.mac, cm_sid=s.sid, access=AccessType.DOCSIS, cpe_mac=s.cpe_mac
            )
            cable_qos = Qos(profile.up_kbps, profile.down_kbps, profile.burst_bytes)
            interval = self.config.usage_interval_s
            return SessionRule(op, s.key, s.group, endpoint, s.ipv4, cable_qos, interval)
        assert isinstance(s, Session)
        subscriber = self.directory.get(s.username)
        qos = self.directory.qos_of(subscriber) if subscriber is not None else None
        endpoint = TrafficEndpoint(s.client_mac, group.mac, s.sid)
        if qos is None:
            return SessionRule(
                op, s.key, s.group, endpoint, s.ipv4, usage_interval_s=self.config.usage_interval_s
            )
        return SessionRule(op, s.key, s.group, endpoint, s.ipv4, qos, self.config.usage_interval_s)

    def _record(
        self, s: Subscription, kind: RecordType, now: float, cause: str = ""
    ) -> AccountingRecord:
        up_p, up_b, down_p, down_b = s.usage
        group = self.placement.by_id[s.group]
        return AccountingRecord(
            acct_session_id=s.acct_id,
            record_type=kind,
            username=s.username,
            client_mac=mac_to_str(s.client_mac),
            ipv4=str(int_to_ip(s.ipv4)) if s.ipv4 else "",
            pppoe_session_id=s.sid,
            group=s.group,
            dp=group.dp,
            session_time_s=round(now - s.up_mono, 3) if s.up_mono else 0.0,
            up_packets=up_p,
            up_bytes=up_b,
            down_packets=down_p,
            down_bytes=down_b,
            terminate_cause=cause,
            wall_time=self.wall(),
        )

    def drain_tx(self) -> dict[str, list[bytes]]:
        tx, self.tx = self.tx, {}
        return tx
