"""Subscribers of the local store and their rate profiles."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class AuthType(enum.StrEnum):
    """Which PPP authentication protocol a subscriber may use."""

    PAP = "pap"
    CHAP = "chap"
    ANY = "any"

    def allows(self, method: AuthType) -> bool:
        return self is AuthType.ANY or self is method


@dataclass(frozen=True, slots=True)
class RateProfile:
    name: str
    up_kbps: int = 0
    down_kbps: int = 0
    burst_bytes: int = 0


@dataclass(frozen=True, slots=True)
class Subscriber:
    username: str
    secret: str
    auth_type: AuthType = AuthType.ANY
    rate_profile: str = "default"
