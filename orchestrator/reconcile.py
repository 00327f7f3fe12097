"""Reconcile desired nodes with observed processes (pure): which node to (re)start now.

A node that exits on its own is restarted with exponential backoff (0.5 s doubling to 30 s)
up to ``max_restarts`` within ``restart_window_s``; beyond that it is left failed and
reported, so a crash loop cannot eat the machine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestrator.model import NodeSpec, start_sequence

BACKOFF_START_S = 0.5
BACKOFF_MAX_S = 30.0


@dataclass(slots=True)
class Observed:
    running: bool = False
    started_at: float = 0.0
    exited_at: float = 0.0
    exit_code: int | None = None
    restarts: int = 0
    recent_failures: list[float] = field(default_factory=list)
    stopped_on_purpose: bool = False

    @property
    def state(self) -> str:
        if self.running:
            return "running"
        if self.stopped_on_purpose:
            return "stopped"
        if self.exit_code is None:
            return "starting"
        return "exited"


@dataclass(frozen=True, slots=True)
class Start:
    node: NodeSpec
    restart: bool


def reconcile(
    nodes: list[NodeSpec],
    observed: dict[str, Observed],
    now: float,
    max_restarts: int = 5,
    restart_window_s: float = 300.0,
) -> list[Start]:
    actions: list[Start] = []
    for node in start_sequence(nodes):
        seen = observed.get(node.name)
        if seen is None:
            actions.append(Start(node, restart=False))
            continue
        if seen.running or seen.stopped_on_purpose:
            continue
        seen.recent_failures = [t for t in seen.recent_failures if now - t <= restart_window_s]
        if len(seen.recent_failures) >= max_restarts:
            continue  # crash loop: leave it failed
        backoff = min(BACKOFF_START_S * (2 ** len(seen.recent_failures)), BACKOFF_MAX_S)
        if now - seen.exited_at >= backoff:
            actions.append(Start(node, restart=True))
    return actions
