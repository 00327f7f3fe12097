"""Accounting records (RFC 2866 Acct-Status-Type start / interim-update / stop)."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class RecordType(enum.StrEnum):
    START = "start"
    INTERIM = "interim"
    STOP = "stop"


@dataclass(frozen=True, slots=True)
class AccountingRecord:
    acct_session_id: str
    record_type: RecordType
    username: str
    client_mac: str
    ipv4: str
    pppoe_session_id: int
    group: int
    dp: str
    session_time_s: float
    up_packets: int = 0
    up_bytes: int = 0
    down_packets: int = 0
    down_bytes: int = 0
    terminate_cause: str = ""
    wall_time: float = 0.0
