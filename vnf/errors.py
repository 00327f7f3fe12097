"""One error hierarchy for the whole project.

Peer garbage never raises out of an engine or the fast path (it becomes a protocol reply or a
counted drop); these exceptions are for our own misuse, bad configuration and management
requests that cannot be served. Adapters map them to gRPC status codes and to one-line CLI
errors.
"""

from __future__ import annotations


class VnfError(Exception):
    """Base of every error this project raises on purpose."""


class DecodeError(VnfError):
    """Bytes that do not decode as the named layer.

    ``layer`` names the codec ("pppoe", "lcp", ...), ``offset`` is where in the buffer the
    problem was found and ``reason`` is a short, stable, snake_case word usable as a counter
    label (``"truncated"``, ``"bad_version"``, ``"tag_overrun"`` ...).
    """

    def __init__(self, layer: str, offset: int, reason: str, detail: str = "") -> None:
        self.layer = layer
        self.offset = offset
        self.reason = reason
        self.detail = detail
        text = f"{layer}: {reason} at offset {offset}"
        super().__init__(f"{text}: {detail}" if detail else text)


class LocalProtocolError(VnfError):
    """We asked an engine to do something its state does not allow (a bug on our side)."""


class ConfigError(VnfError):
    """A configuration or topology value is wrong. ``field`` is a dotted path to it."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}" if field else message)


class NotFound(VnfError):
    """A named thing (lab, session, subscriber, node) does not exist."""


class Conflict(VnfError):
    """The request contradicts existing state (duplicate name, lab already running ...)."""


class Overloaded(VnfError):
    """A resource is exhausted (address pool, session ids, capacity)."""
