"""Authentication against the local subscriber directory (pure; the SQLite store feeds it).

The directory is an in-memory mirror of the store: authentication is a dict lookup in the
session setup path, and the management API keeps both in step (store first, then mirror).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from vnf.engines.ppp_session import AuthMethod, ChapCredentials, PapCredentials
from vnf.model.session import Qos
from vnf.model.subscriber import AuthType, RateProfile, Subscriber

_METHOD_TYPE = {AuthMethod.PAP: AuthType.PAP, AuthMethod.CHAP_MD5: AuthType.CHAP}


@dataclass(frozen=True, slots=True)
class AuthDecision:
    ok: bool
    reason: str  # "ok", "unknown_user", "bad_password", "method_not_allowed"
    subscriber: Subscriber | None = None
    method: AuthType | None = None

    @property
    def reply_message(self) -> str:
        # Do not tell a peer whether the user exists (RFC 1334 §2.2.2 leaves the text free).
        return "Authentication succeeded" if self.ok else "Authentication failed"


class SubscriberDirectory:
    """username → :class:`Subscriber`, plus the rate profiles that become session QoS."""

    def __init__(self, profiles: dict[str, RateProfile] | None = None) -> None:
        self._subscribers: dict[str, Subscriber] = {}
        self.profiles: dict[str, RateProfile] = dict(profiles or {})
        self.profiles.setdefault("default", RateProfile("default"))

    def __len__(self) -> int:
        return len(self._subscribers)

    def put(self, subscriber: Subscriber) -> bool:
        """Add or replace; True if it was new."""
        new = subscriber.username not in self._subscribers
        self._subscribers[subscriber.username] = subscriber
        return new

    def remove(self, username: str) -> bool:
        return self._subscribers.pop(username, None) is not None

    def get(self, username: str) -> Subscriber | None:
        return self._subscribers.get(username)

    def all(self) -> list[Subscriber]:
        return list(self._subscribers.values())

    def qos_of(self, subscriber: Subscriber) -> Qos:
        profile = self.profiles.get(subscriber.rate_profile) or self.profiles["default"]
        return Qos(profile.up_kbps, profile.down_kbps, profile.burst_bytes)

    def authenticate(self, credentials: PapCredentials | ChapCredentials) -> AuthDecision:
        subscriber = self._subscribers.get(credentials.username)
        if subscriber is None:
            return AuthDecision(False, "unknown_user")
        if isinstance(credentials, PapCredentials):
            method = AuthType.PAP
            good = hmac.compare_digest(credentials.password, subscriber.secret.encode())
        else:
            method = AuthType.CHAP
            good = credentials.verify(subscriber.secret.encode())
        if not subscriber.auth_type.allows(method):
            return AuthDecision(False, "method_not_allowed", subscriber, method)
        if not good:
            return AuthDecision(False, "bad_password", subscriber, method)
        return AuthDecision(True, "ok", subscriber, method)
