"""MAC and IPv4 helpers used across the project.

MACs travel as 6-byte ``bytes``; IPv4 addresses as ``int`` in the fast path and in rules
(host order) and as :class:`ipaddress.IPv4Address` at the edges.
"""

from __future__ import annotations

import ipaddress

BROADCAST_MAC = b"\xff" * 6
ZERO_MAC = b"\x00" * 6


def mac_to_str(mac: bytes) -> str:
    """``b"\\x02\\x00..."`` → ``"02:00:..."``."""
    if len(mac) != 6:
        raise ValueError(f"a MAC address has 6 bytes, not {len(mac)}")
    return ":".join(f"{b:02x}" for b in mac)


def parse_mac(text: str) -> bytes:
    """``"02:00:5e:00:00:01"`` (or ``-`` separated) → 6 bytes; ValueError when malformed."""
    parts = text.replace("-", ":").split(":")
    if len(parts) != 6 or not all(len(p) == 2 for p in parts):
        raise ValueError(f"not a MAC address: {text!r}")
    try:
        return bytes(int(p, 16) for p in parts)
    except ValueError:
        raise ValueError(f"not a MAC address: {text!r}") from None


def ip_to_int(address: str | ipaddress.IPv4Address) -> int:
    return int(ipaddress.IPv4Address(address))


def int_to_ip(value: int) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(value)


def is_unicast_mac(mac: bytes) -> bool:
    return len(mac) == 6 and not (mac[0] & 0x01)
