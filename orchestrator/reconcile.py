"""Reconcile desired nodes with observed processes (pure): which node to (re)start now.

A node that exits on its own is restarted at once the first time, then with exponential
backoff (0.5 s doubling to 30 s) up to ``max_restarts`` within ``restart_window_s``; beyond
that it is left failed and reported, so a crash loop cannot eat the machine.

A node killed on purpose (a KILL fault) is not a crash: it is restarted at once and does not
count toward the crash-loop limit, unless the fault holds it down (``held``) until Repair. A
frozen node (SIGSTOP) still runs: it is never restarted while frozen.
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
    killed_on_purpose: bool = False  # a KILL fault: not a crash
    held: bool = False  # a KILL fault with hold: stays down until Repair
    frozen: bool = False  # a FREEZE fault: SIGSTOPped, still running

    @property
    def state(self) -> str:
        if self.running:
            return "frozen" if self.frozen else "running"
        if self.held:
            return "held"
        if self.stopped_on_purpose:
            return "stopped"
        if self.exit_code is None:
            return "starting"
        return "exited"


@dataclass(frozen=True, slots=True)
class Start:
    node: NodeSpec
    restart: bool


def backoff_s(failures: int) -> float:
    """Delay before restarting a node that crashed ``failures`` times in the window: none
    for the first crash, then 0.5 s doubling to 30 s."""
    if failures <= 1:
        return 0.0
    return min(BACKOFF_START_S * float(2 ** (failures - 2)), BACKOFF_MAX_S)


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
        if seen.running or seen.stopped_on_purpose or seen.held:
            continue
        seen.recent_failures = [t for t in seen.recent_failures if now - t <= restart_window_s]
        if seen.killed_on_purpose:
            actions.append(Start(node, restart=True))
            continue
        if len(seen.recent_failures) >= max_restarts:
            continue  # crash loop: leave it failed
        if now - seen.exited_at >= backoff_s(len(seen.recent_failures)):
            actions.append(Start(node, restart=True))
    return actions
