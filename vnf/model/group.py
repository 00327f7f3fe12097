"""Subscriber groups: the unit of placement and failover (DESIGN.md §4)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SubscriberGroup:
    """One virtual AC MAC, one IPv4 pool, exactly one serving DP at a time.

    ``gateway`` is the AC's own address in IPCP (the first host of the pool; never handed
    out). The pool is advertised to the core as one aggregate with the serving DP's core
    address as next hop.
    """

    group_id: int
    site: str
    virtual_mac: bytes
    pool: ipaddress.IPv4Network

    @property
    def gateway(self) -> ipaddress.IPv4Address:
        return self.pool.network_address + 1
