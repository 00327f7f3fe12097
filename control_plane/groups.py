"""Subscriber groups, their placement on DP workers, and DP selection (DESIGN.md §4).

Choosing a group for a new session *is* DP selection: each group has exactly one serving DP.
A group is eligible when its DP is connected and it still has both a free PPPoE session id
and a free address for every session already negotiating in it; among eligible groups of the
subscriber's site the least loaded wins, which spreads sessions across the active DPs. Load
counts the group's sessions *and* its outstanding offers (PADOs not yet answered by a PADR,
forgotten after the cookie lifetime): a burst of PADIs would otherwise all pick one group.
"""

from __future__ import annotations

import ipaddress
from collections import deque
from dataclasses import dataclass, field

from control_plane.pools import AddressPool, IdAllocator
from vnf.config import DpRef, GroupConfig
from vnf.model.addresses import ip_to_int, parse_mac
from vnf.model.group import SubscriberGroup

MAX_PPPOE_SESSION_ID = 0xFFFE  # 0 and 0xFFFF are reserved (RFC 2516 §4)
MAX_SID = 0x3FFF  # DOCSIS SIDs have 14 bits; 0 is the initial-ranging SID


@dataclass(slots=True)
class DpInfo:
    name: str
    site: str
    role: str
    core_ip: int
    connected: bool = False
    connected_at: float = 0.0
    last_heartbeat: float = 0.0
    sessions: int = 0
    max_groups: int = 0  # what its Hello said it can hold (0: not said)


@dataclass(slots=True)
class GroupState:
    group: SubscriberGroup
    pool: AddressPool
    session_ids: IdAllocator
    dp: str
    sids: IdAllocator = field(default_factory=lambda: IdAllocator(1, MAX_SID))  # cable modems
    reserved: int = 0  # sessions negotiating that will need an address
    offers: int = 0  # PADOs out whose PADR has not come back (yet)
    members: set[int] = field(default_factory=set)  # session keys

    @property
    def sessions(self) -> int:
        return len(self.members)

    @property
    def group_id(self) -> int:
        return self.group.group_id

    @property
    def mac(self) -> bytes:
        return self.group.virtual_mac

    def has_capacity(self, cable: bool = False) -> bool:
        ids = self.sids if cable else self.session_ids
        return ids.free > 0 and self.pool.free > self.reserved


class Placement:
    """Groups, DPs and which DP serves which group."""

    def __init__(
        self,
        groups: tuple[GroupConfig, ...],
        dps: tuple[DpRef, ...],
        max_sessions_per_group: int = MAX_PPPOE_SESSION_ID,
    ) -> None:
        top = min(max_sessions_per_group, MAX_PPPOE_SESSION_ID)
        self.dps: dict[str, DpInfo] = {
            d.name: DpInfo(d.name, d.site, d.role, ip_to_int(d.core_ip) if d.core_ip else 0)
            for d in dps
        }
        self.by_id: dict[int, GroupState] = {}
        self.by_mac: dict[bytes, GroupState] = {}
        self._offers: deque[tuple[float, int]] = deque()  # (expiry, group id)
        for g in groups:
            group = SubscriberGroup(
                g.group_id, g.site, parse_mac(g.virtual_mac), ipaddress.IPv4Network(g.pool)
            )
            state = GroupState(group, AddressPool(group.pool), IdAllocator(1, top), g.dp)
            self.by_id[group.group_id] = state
            self.by_mac[group.virtual_mac] = state

    def groups_of(self, dp: str) -> list[GroupState]:
        return [g for g in self.by_id.values() if g.dp == dp]

    def serving(self, group: GroupState) -> DpInfo | None:
        info = self.dps.get(group.dp)
        return info if info is not None and info.connected else None

    def select(self, site: str, now: float, cable: bool = False) -> GroupState | None:
        """The least loaded eligible group of ``site`` with a free PPPoE session id (or
        SID, for a ``cable`` modem), or None (then: no PADO, no RNG-RSP)."""
        self._expire_offers(now)
        best: GroupState | None = None
        best_load = 0
        for g in self.by_id.values():
            if g.group.site != site or not g.has_capacity(cable):
                continue
            info = self.dps.get(g.dp)
            if info is None or not info.connected:
                continue
            load = len(g.members) + g.offers
            if best is None or load < best_load:
                best, best_load = g, load
        return best

    def offered(self, group: GroupState, expiry: float) -> None:
        group.offers += 1
        self._offers.append((expiry, group.group_id))

    def answered(self, group: GroupState) -> None:
        """A PADR came back for an offer of this group."""
        if group.offers > 0:
            group.offers -= 1

    def _expire_offers(self, now: float) -> None:
        offers = self._offers
        while offers and offers[0][0] <= now:
            _, group_id = offers.popleft()
            self.answered(self.by_id[group_id])

    def routes(self) -> list[tuple[str, int, int]]:
        """(pool prefix, next-hop core address, group id) for every placed group."""
        out = []
        for g in self.by_id.values():
            info = self.dps.get(g.dp)
            if info is not None and info.core_ip:
                out.append((str(g.group.pool), info.core_ip, g.group_id))
        return out
