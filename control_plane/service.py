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
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from control_plane.aaa.local import SubscriberDirectory
from control_plane.groups import GroupState, Placement
from control_plane.sessions import Session, SessionState, SessionTable
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
    Role,
)
from vnf.engines.pppoe_discovery import AcDiscovery, CookieJar
from vnf.errors import DecodeError
from vnf.model.accounting import AccountingRecord, RecordType
from vnf.model.addresses import int_to_ip, ip_to_int, mac_to_str
from vnf.model.group import SubscriberGroup
from vnf.model.session import (
    RuleOp,
    RuleResult,
    SessionRule,
    TerminateCause,
    TrafficEndpoint,
    Usage,
)

PADI_DEDUP_S = 0.5
REMOVE_ACK_TIMEOUT_S = 5.0

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
    """What a DP is told when it connects (SCi): its role and the groups it serves."""

    role: DpRole
    groups: tuple[SubscriberGroup, ...]
    core_gateway: int


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
    ) -> None:
        self.config = config
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
        self.accounting: list[AccountingRecord] = []
        self.starts: list[PendingStart] = []
        self.routes_changed = True
        # Bookkeeping.
        self.counters: Counter[tuple[str, str]] = Counter()
        self._timers: list[tuple[float, int]] = []
        self._recent_padi: dict[bytes, float] = {}
        self._padi_seen: dict[bytes, tuple[float, float]] = {}  # mac → (padi rx, now)
        # (group, client MAC, Host-Uniq) → session key, to answer a retransmitted PADR.
        self._by_padr: dict[tuple[int, bytes, bytes | None], int] = {}

    # ------------------------------------------------------------------ DP lifecycle (SCi)

    def dp_connected(self, dp: str, site: str, now: float) -> None:
        """A DP said Hello: give it its groups and its complete session set."""
        info = self.placement.dps.get(dp)
        if info is None:
            self.counters["dp_rejected", "unknown_dp"] += 1
            raise KeyError(dp)
        info.connected = True
        info.connected_at = now
        info.last_heartbeat = now
        groups = self.placement.groups_of(dp)
        role = DpRole.ACTIVE if groups or info.role == "active" else DpRole.STANDBY
        self.assignments[dp] = Assignment(role, tuple(g.group for g in groups), self.core_gateway)
        rules = []
        for g in groups:
            for key in g.members:
                s = self.sessions.by_key[key]
                if s.state in (
                    SessionState.INSTALLING,
                    SessionState.ACTIVE,
                    SessionState.TERMINATING,
                ):
                    rules.append(self._rule(s, RuleOp.INSTALL))
                    s.rule_sent = True
        self.full_sync[dp] = rules
        self.rules.pop(dp, None)  # superseded by the full sync
        self.routes_changed = True
        self.counters["dp_connects", dp] += 1

    def dp_disconnected(self, dp: str, now: float) -> None:
        info = self.placement.dps.get(dp)
        if info is None or not info.connected:
            return
        info.connected = False
        self.tx.pop(dp, None)
        self.rules.pop(dp, None)
        self.counters["dp_disconnects", dp] += 1
        # Removals waiting for this DP's ack will never get one: close with the last usage.
        for g in self.placement.groups_of(dp):
            for key in list(g.members):
                s = self.sessions.by_key[key]
                if s.state is SessionState.REMOVING:
                    self._close(s, now)

    def dp_heartbeat(self, dp: str, sessions: int, now: float) -> None:
        info = self.placement.dps.get(dp)
        if info is not None:
            info.last_heartbeat = now
            info.sessions = sessions

    # ------------------------------------------------------------------ CPRi: punted frames

    def punt(self, dp: str, frame: bytes, rx_time: float, now: float) -> None:
        """One control frame a DP received on its access port. Never raises on garbage."""
        self.counters["punts_rx", dp] += 1
        if len(frame) < 14:
            self._drop("truncated")
            return
        ethertype = (frame[12] << 8) | frame[13]
        if ethertype == EtherType.PPPOE_SESSION:
            self._on_session_frame(frame, now)
        elif ethertype == EtherType.PPPOE_DISCOVERY:
            self._on_discovery_frame(dp, frame, rx_time, now)
        else:
            self._drop("unknown_ethertype")

    def _on_discovery_frame(self, dp: str, raw: bytes, rx_time: float, now: float) -> None:
        try:
            frame = decode_discovery_frame(raw)
        except DecodeError as exc:
            self._drop(f"pppoe_{exc.reason}")
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
            self._drop("unexpected_discovery_code")

    def _on_padi(
        self, dp: str, frame: DiscoveryFrame, raw: bytes, rx_time: float, now: float
    ) -> None:
        recent = self._recent_padi
        while recent:
            oldest = next(iter(recent))
            if now - recent[oldest] <= PADI_DEDUP_S:
                break
            del recent[oldest]
        if raw in recent:
            self.counters["padi_duplicates", ""] += 1
            return
        recent[raw] = now
        self.counters["discovery_rx", "padi"] += 1
        reason = self.discovery.classify_padi(frame)
        if reason is not None:
            self._drop(reason)
            return
        info = self.placement.dps.get(dp)
        site = info.site if info is not None else ""
        group = self.placement.select(site, now)
        if group is None:
            self._drop("no_capacity")
            return
        seen = self._padi_seen
        while seen:
            oldest_mac = next(iter(seen))
            if now - seen[oldest_mac][1] <= self.config.cookie_ttl_s:
                break
            del seen[oldest_mac]
        seen.pop(frame.src, None)
        seen[frame.src] = (rx_time, now)
        self._send(group, self.discovery.make_pado(frame, group.mac, group.group_id, now))
        self.placement.offered(group, now + self.config.cookie_ttl_s)
        self.counters["discovery_tx", "pado"] += 1

    def _on_padr(self, frame: DiscoveryFrame, now: float) -> None:
        group = self.placement.by_mac.get(frame.dst)
        if group is None:
            self._drop("not_our_mac")
            return
        verdict = self.discovery.check_padr(frame, now)
        if not verdict.ok:
            self._drop(verdict.reason)
            return
        if verdict.group != group.group_id:
            self._drop("forged_cookie")
            return
        self.placement.answered(group)
        host_uniq = frame.packet.tag(TagType.HOST_UNIQ)
        earlier = self.sessions.by_key.get(
            self._by_padr.get((group.group_id, frame.src, host_uniq), 0)
        )
        if (
            earlier is not None
            and earlier.state is SessionState.NEGOTIATING
            and earlier.ppp.phase is Phase.ESTABLISH
        ):
            # A retransmitted PADR (our PADS was lost): answer with the same session.
            self.counters["padr_retransmits", ""] += 1
            self._send(group, self.discovery.make_pads(frame, group.mac, earlier.sid))
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
        s = Session(
            self.sessions.next_key(),
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
        self._send(group, self.discovery.make_pads(frame, group.mac, sid))
        self.counters["discovery_tx", "pads"] += 1
        ppp.open(now)
        self._pump(s, now)

    def _refuse(self, group: GroupState, frame: DiscoveryFrame, reason: str) -> None:
        """PADS with session id 0 and AC-System-Error (RFC 2516 §5.4): no resources."""
        self._drop(reason)
        pads = self.discovery.make_pads_error(
            frame, group.mac, TagType.AC_SYSTEM_ERROR, "insufficient resources"
        )
        self._send(group, pads)
        self.counters["discovery_tx", "pads_error"] += 1

    def _on_padt(self, frame: DiscoveryFrame, now: float) -> None:
        group = self.placement.by_mac.get(frame.dst)
        if group is None:
            self._drop("padt_not_our_mac")
            return
        s = self.sessions.get(group.group_id, frame.packet.session_id)
        if s is None:
            self._drop("padt_unknown_session")
            return
        if s.client_mac != frame.src:
            self._drop("padt_wrong_mac")
            return
        if s.cause is None:
            s.cause = TerminateCause.USER_REQUEST
        s.ppp.lower_down(now)
        self._pump(s, now)

    def _on_session_frame(self, raw: bytes, now: float) -> None:
        try:
            frame = decode_session_frame(raw)
        except DecodeError as exc:
            self._drop(f"pppoe_{exc.reason}")
            return
        group = self.placement.by_mac.get(frame.dst)
        if group is None:
            self._drop("not_our_mac")
            return
        s = self.sessions.get(group.group_id, frame.session_id)
        if s is None:
            self._drop("unknown_session")
            return
        if s.client_mac != frame.src:
            self._drop("wrong_mac")
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
                self._send(group, frame)
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
                self._drop(f"{event.layer}_{event.reason}")
        self._schedule(s)

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
            self._drop("pool_exhausted")
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
        info = self.placement.serving(group)
        if info is not None:
            self.rules.setdefault(group.dp, []).append(self._rule(s, RuleOp.INSTALL))
            s.rule_sent = True
        # else: installed by the full sync when the DP (re)connects.

    def _link_down(self, s: Session, reason: str, now: float) -> None:
        cause = s.cause or _LINK_DOWN_CAUSE.get(reason, TerminateCause.NAS_ERROR)
        self.counters["link_down", reason] += 1
        # A PADT from the client took the link down: it knows; no PADT back.
        self._finish(s, cause, now, send_padt=reason != "lower_down")

    def _finish(self, s: Session, cause: TerminateCause, now: float, send_padt: bool) -> None:
        if s.state in (SessionState.REMOVING, SessionState.CLOSED):
            return
        if s.cause is None:
            s.cause = cause
        group = self.placement.by_id[s.group]
        if send_padt:
            self._send(group, self.discovery.make_padt(s.client_mac, group.mac, s.sid))
            self.counters["discovery_tx", "padt"] += 1
        if s.rule_sent and s.state in (
            SessionState.INSTALLING,
            SessionState.ACTIVE,
            SessionState.TERMINATING,
        ):
            self.sessions.set_state(s, SessionState.REMOVING)
            if self.placement.serving(group) is None:
                self._close(s, now)
                return
            self.rules.setdefault(group.dp, []).append(self._rule(s, RuleOp.REMOVE))
            s.remove_deadline = now + REMOVE_ACK_TIMEOUT_S
            self._schedule(s)
            return
        self._close(s, now)

    def _close(self, s: Session, now: float) -> None:
        """Last step: accounting stop (if it started), give back the id and the address."""
        if s.state is SessionState.CLOSED:
            return
        group = self.placement.by_id[s.group]
        cause = s.cause or TerminateCause.NAS_ERROR
        if s.started:
            self.accounting.append(self._record(s, RecordType.STOP, now, cause.label))
        if s.reserved:
            group.reserved -= 1
            s.reserved = False
        if s.ipv4:
            group.pool.release(s.ipv4)
        group.session_ids.release(s.sid)
        group.members.discard(s.key)
        self._forget_padr(s)
        self.sessions.remove(s)
        self.counters["sessions_closed", cause.label] += 1

    # ------------------------------------------------------------------ SCi results

    def rule_ack(
        self, dp: str, results: Iterable[RuleResult], final: Iterable[Usage], now: float
    ) -> None:
        for usage in final:
            s = self.sessions.by_key.get(usage.session_key)
            if s is not None:
                s.usage = (usage.up_packets, usage.up_bytes, usage.down_packets, usage.down_bytes)
        for result in results:
            s = self.sessions.by_key.get(result.session_key)
            if s is None:
                self.counters["acks_unknown_session", ""] += 1
                continue
            if s.state is SessionState.INSTALLING:
                if result.ok:
                    self._activate(s, now)
                else:
                    self.counters["rule_failures", dp] += 1
                    s.cause = TerminateCause.NAS_ERROR
                    s.rule_sent = False
                    s.ppp.close(now, "forwarding unavailable")
                    self.sessions.set_state(s, SessionState.TERMINATING)
                    self._pump(s, now)
            elif s.state is SessionState.REMOVING:
                self._close(s, now)

    def _activate(self, s: Session, now: float) -> None:
        self.sessions.set_state(s, SessionState.ACTIVE)
        s.up_mono = now
        s.started = True
        s.interim_at = now + self.config.interim_interval_s
        record = self._record(s, RecordType.START, now)
        self.accounting.append(record)
        self.starts.append(PendingStart(record, s.padi_mono))
        self.counters["sessions_established", ""] += 1
        self._schedule(s)

    def usage(self, reports: Iterable[Usage]) -> None:
        by_key = self.sessions.by_key
        for u in reports:
            s = by_key.get(u.session_key)
            if s is not None:
                s.usage = (u.up_packets, u.up_bytes, u.down_packets, u.down_bytes)

    # ------------------------------------------------------------------ management

    def find(self, query: SessionQuery) -> list[Session]:
        pattern = re.compile(query.username_regex) if query.username_regex else None
        ip = ip_to_int(query.ipv4) if query.ipv4 else None
        mac = query.client_mac.lower()
        out = []
        for s in self.sessions.by_key.values():
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
            s.ppp.close(now, "access concentrator shutting down")
            group = self.placement.by_id[s.group]
            for protocol, payload in s.ppp.packets_to_send():
                frame = encode_session_frame(s.client_mac, group.mac, s.sid, protocol, payload)
                self._send(group, frame)
            self._finish(s, TerminateCause.NAS_REBOOT, now, send_padt=True)
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
                self.accounting.append(self._record(s, RecordType.INTERIM, now))
                s.interim_at += self.config.interim_interval_s
                if s.interim_at <= now:  # we were late by more than an interval: don't burst
                    s.interim_at = now + self.config.interim_interval_s
            deadline = s.ppp.get_timer()
            if deadline is not None and deadline <= now:
                s.ppp.handle_timer(now)
            self._pump(s, now)

    def _schedule(self, s: Session) -> None:
        if s.state is SessionState.CLOSED:
            return
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

    def _send(self, group: GroupState, frame: bytes) -> None:
        info = self.placement.serving(group)
        if info is None:
            self._drop("dp_unavailable")
            return
        self.tx.setdefault(info.name, []).append(frame)

    def _drop(self, reason: str) -> None:
        self.counters["drops", reason] += 1

    def _rule(self, s: Session, op: RuleOp) -> SessionRule:
        group = self.placement.by_id[s.group]
        subscriber = self.directory.get(s.username)
        qos = self.directory.qos_of(subscriber) if subscriber is not None else None
        endpoint = TrafficEndpoint(s.client_mac, group.mac, s.sid)
        if qos is None:
            return SessionRule(
                op, s.key, s.group, endpoint, s.ipv4, usage_interval_s=self.config.usage_interval_s
            )
        return SessionRule(op, s.key, s.group, endpoint, s.ipv4, qos, self.config.usage_interval_s)

    def _record(
        self, s: Session, kind: RecordType, now: float, cause: str = ""
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
        )

    def drain_tx(self) -> dict[str, list[bytes]]:
        tx, self.tx = self.tx, {}
        return tx
