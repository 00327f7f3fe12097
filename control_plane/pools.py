"""Allocators for what a subscriber group hands out: PPPoE session ids and IPv4 addresses.

Both are the same structure — a bitmap over a dense integer range with a next-fit cursor —
so that "no id / address handed out twice" holds by construction and allocation is amortized
O(1) without a free list per entry (a /16 pool is 8 KiB of bitmap).
"""

from __future__ import annotations

import ipaddress

from vnf.errors import Conflict


class IdAllocator:
    """Allocates integers in ``[lo, hi]``; each is out at most once until released."""

    __slots__ = ("_bits", "_cursor", "free", "hi", "lo")

    def __init__(self, lo: int, hi: int) -> None:
        if hi < lo:
            raise ValueError("empty range")
        self.lo = lo
        self.hi = hi
        self._bits = bytearray(hi - lo + 1)
        self._cursor = 0
        self.free = hi - lo + 1

    @property
    def size(self) -> int:
        return self.hi - self.lo + 1

    def allocate(self) -> int | None:
        """The next free id after the last one handed out, or None when exhausted."""
        if self.free == 0:
            return None
        bits = self._bits
        n = len(bits)
        at = bits.find(0, self._cursor)
        if at < 0:
            at = bits.find(0, 0, self._cursor)
        # free > 0 guarantees a zero somewhere.
        bits[at] = 1
        self._cursor = at + 1 if at + 1 < n else 0
        self.free -= 1
        return self.lo + at

    def claim(self, value: int) -> None:
        """Mark a specific id as in use (state replicated from elsewhere, static addresses)."""
        at = self._offset(value)
        if self._bits[at]:
            raise Conflict(f"{value} is already allocated")
        self._bits[at] = 1
        self.free -= 1

    def release(self, value: int) -> bool:
        """Return an id; False if it was not allocated (a double free is reported, not fatal)."""
        at = self._offset(value)
        if not self._bits[at]:
            return False
        self._bits[at] = 0
        self.free += 1
        return True

    def in_use(self, value: int) -> bool:
        return bool(self._bits[self._offset(value)])

    def _offset(self, value: int) -> int:
        if not self.lo <= value <= self.hi:
            raise ValueError(f"{value} is outside {self.lo}..{self.hi}")
        return value - self.lo


class AddressPool:
    """The IPv4 pool of one subscriber group.

    The network address, the first host (the AC's own IPCP address, the *gateway*) and the
    broadcast address are never handed out.
    """

    __slots__ = ("_ids", "gateway", "network")

    def __init__(self, network: ipaddress.IPv4Network) -> None:
        if network.num_addresses < 4:
            raise ValueError(f"pool {network} is too small")
        self.network = network
        base = int(network.network_address)
        self.gateway = base + 1
        self._ids = IdAllocator(base + 2, int(network.broadcast_address) - 1)

    @property
    def free(self) -> int:
        return self._ids.free

    @property
    def size(self) -> int:
        return self._ids.size

    def allocate(self) -> int | None:
        return self._ids.allocate()

    def claim(self, address: int) -> None:
        self._ids.claim(address)

    def release(self, address: int) -> bool:
        return self._ids.release(address)

    def in_use(self, address: int) -> bool:
        return self._ids.in_use(address)
