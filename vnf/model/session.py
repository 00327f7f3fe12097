"""Sessions as the control plane and the data plane agree on them (DESIGN.md §5, TR-459 SCi).

A *session rule* is what the CP installs on a DP: match a traffic endpoint, forward, police,
count. The DP reports cumulative *usage* per session key; the CP turns it into accounting.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class AccessType(enum.IntEnum):
    PPPOE = 1
    DOCSIS = 2


class RuleOp(enum.IntEnum):
    INSTALL = 1
    MODIFY = 2
    REMOVE = 3


class TerminateCause(enum.IntEnum):
    """RFC 2866 §5.10 Acct-Terminate-Cause values (the ones a BNG uses)."""

    USER_REQUEST = 1
    LOST_CARRIER = 2
    LOST_SERVICE = 3
    IDLE_TIMEOUT = 4
    SESSION_TIMEOUT = 5
    ADMIN_RESET = 6
    ADMIN_REBOOT = 7
    PORT_ERROR = 8
    NAS_ERROR = 9
    NAS_REQUEST = 10
    NAS_REBOOT = 11
    SERVICE_UNAVAILABLE = 15
    USER_ERROR = 17

    @property
    def label(self) -> str:
        return self.name.lower().replace("_", "-")


@dataclass(frozen=True, slots=True)
class TrafficEndpoint:
    """The packet match of a session (TR-459 traffic endpoint).

    PPPoE: client MAC + AC (virtual, per subscriber group) MAC + PPPoE session id.
    DOCSIS-like: ``client_mac`` is the cable modem's MAC, ``cm_sid`` its upstream SID (per
    group, 1..0x3FFF) instead of the PPPoE session id, and ``cpe_mac`` the MAC of the CPE
    behind the modem that owns ``ipv4`` (the Ethernet PDU's source upstream, destination
    downstream).
    """

    client_mac: bytes
    ac_mac: bytes
    pppoe_session_id: int = 0
    cm_sid: int = 0
    access: AccessType = AccessType.PPPOE
    cpe_mac: bytes = b""


@dataclass(frozen=True, slots=True)
class Qos:
    """Per-session rate limits; 0 means unlimited."""

    up_kbps: int = 0
    down_kbps: int = 0
    burst_bytes: int = 0


@dataclass(frozen=True, slots=True)
class SessionRule:
    op: RuleOp
    session_key: int
    group: int
    endpoint: TrafficEndpoint
    ipv4: int = 0
    qos: Qos = Qos()
    usage_interval_s: int = 0


@dataclass(frozen=True, slots=True)
class Usage:
    """Cumulative counters of one session, as measured by its DP."""

    session_key: int
    up_packets: int = 0
    up_bytes: int = 0
    down_packets: int = 0
    down_bytes: int = 0
    dropped: int = 0


@dataclass(frozen=True, slots=True)
class RuleResult:
    session_key: int
    ok: bool
    error: str = ""
