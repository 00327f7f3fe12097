"""Routing information base of the core router's agent (pure).

A speaker (a CP) sends its complete set of aggregates with its epoch; the newest epoch wins
(an old active CP that wakes up cannot re-point the core). The agent diffs the accepted set
against what the kernel holds and applies only the difference.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from vnf.errors import ConfigError


@dataclass(frozen=True, slots=True, order=True)
class Route:
    prefix: ipaddress.IPv4Network
    next_hop: ipaddress.IPv4Address


class Rib:
    def __init__(self, subscriber_space: str, next_hop_space: str) -> None:
        self.subscriber_space = ipaddress.IPv4Network(subscriber_space)
        self.next_hop_space = ipaddress.IPv4Network(next_hop_space)
        self.epoch = 0
        self.speaker = ""
        self.routes: set[Route] = set()

    def validate(self, prefix: str, next_hop: str) -> Route:
        """A route inside the address plan, or ConfigError naming what is wrong."""
        try:
            network = ipaddress.IPv4Network(prefix)
            hop = ipaddress.IPv4Address(next_hop)
        except ValueError as exc:
            raise ConfigError("route", str(exc)) from None
        if not network.subnet_of(self.subscriber_space):
            raise ConfigError("route.prefix", f"{network} is outside {self.subscriber_space}")
        if hop not in self.next_hop_space:
            raise ConfigError("route.next_hop", f"{hop} is outside {self.next_hop_space}")
        return Route(network, hop)

    def offer(
        self, speaker: str, epoch: int, routes: set[Route]
    ) -> tuple[bool, set[Route], set[Route]]:
        """Accept (or not) a speaker's full set. Returns (accepted, to_add, to_remove)."""
        if epoch < self.epoch:
            return False, set(), set()
        self.epoch = epoch
        self.speaker = speaker
        to_add = routes - self.routes
        to_remove = {r for r in self.routes if r.prefix not in {n.prefix for n in routes}}
        self.routes = set(routes)
        return True, to_add, to_remove
