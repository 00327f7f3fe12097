"""Thousands of emulated PPPoE subscribers and cable modems behind one access port (sans-IO).

Theory of operation
-------------------
Each subscriber is a :class:`~vnf.emulator.client.SubscriberClient` (PPPoE discovery + PPP,
client side, ``kind`` "pppoe") or a :class:`~vnf.emulator.modem.ModemClient` (a DOCSIS cable
modem and its CPE, ``kind`` "docsis") with its own MAC (the modem's). Both have one sans-IO
interface. The fleet demultiplexes received frames by destination MAC, starts dials at a
configured rate with a cap on sessions in setup at once (BNG Blaster's
``sessions-start-rate`` / ``sessions-max-outstanding``), drives every client's timers from one
heap, and records what happened: setup time (first PADI sent → IPCP up; first RNG-REQ → the
CPE's DHCPACK), failures by reason, terminations by the access concentrator, and the state
counts per kind.

A PPPoE client that went down stays down until dialed again. A modem starts over by itself
(as a real one re-initializes): after its Disconnected it is DOWN or FAILED until it is
Connected again, without a dial, and its setup time counts from its own restart. Hanging a
modem up powers it off, whatever its state.

The adapter feeds it frames and time and sends what :attr:`Fleet.outbox` holds.
"""

from __future__ import annotations

import enum
import heapq
from array import array
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass

from vnf.emulator.client import Connected, Disconnected, SubscriberClient
from vnf.emulator.modem import ModemClient
from vnf.engines.ppp_session import Addressing, AuthMethod, Dropped, PppConfig

DEFAULT_MAX_OUTSTANDING = 1000
KINDS = ("pppoe", "docsis")
"""Subscriber kinds: a PPPoE client, a cable modem with its CPE."""


class SubscriberState(enum.Enum):
    IDLE = "idle"
    CONNECTING = "connecting"
    UP = "up"
    DOWN = "down"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class SubscriberSpec:
    """One subscriber to emulate. A cable modem (``kind`` "docsis") has no password or
    methods; its ``username`` is its MAC as text (what hangup by name takes)."""

    index: int
    mac: bytes
    username: str
    password: str
    auth_methods: tuple[AuthMethod, ...]
    kind: str = "pppoe"
    cpe_mac: bytes = b""
    service_class: str = ""


class Subscriber:
    __slots__ = (
        "addressing",
        "client",
        "session_id",
        "spec",
        "started_at",
        "state",
        "timer_at",
        "up_at",
    )

    def __init__(self, spec: SubscriberSpec) -> None:
        self.spec = spec
        self.client: SubscriberClient | ModemClient | None = None
        self.state = SubscriberState.IDLE
        self.started_at = 0.0
        self.up_at = 0.0
        self.timer_at: float | None = None
        self.addressing: Addressing | None = None
        self.session_id = 0


class Fleet:
    def __init__(
        self,
        specs: list[SubscriberSpec],
        random_bytes: Callable[[int], bytes],
        ppp_config: PppConfig | None = None,
        *,
        secret: bytes = b"",
        wall: Callable[[], float] | None = None,
        modem_ranging_interval_s: float = 10.0,
    ) -> None:
        """``secret`` signs the modems' REG-REQs (the CMTS MIC key); ``wall`` (Unix time) dates
        them and is required when there are modems."""
        for spec in specs:
            if spec.kind not in KINDS:
                raise ValueError(f"subscriber kind {spec.kind!r} is none of {KINDS}")
        if wall is None and any(s.kind == "docsis" for s in specs):
            raise ValueError("cable modems need a wall clock")
        self.subscribers = [Subscriber(s) for s in specs]
        self.by_mac = {s.mac: i for i, s in enumerate(specs)}
        self.by_name = {s.username: i for i, s in enumerate(specs)}
        self.random_bytes = random_bytes
        self.ppp_config = ppp_config
        self.secret = secret
        self.wall = wall
        self.modem_ranging_interval_s = modem_ranging_interval_s
        self.outbox: list[bytes] = []
        self.pending: deque[int] = deque()
        self.rate = 0.0
        self.max_outstanding = DEFAULT_MAX_OUTSTANDING
        self._tokens = 0.0
        self._last_tick = 0.0
        self._timers: list[tuple[float, int]] = []
        self.counts: Counter[SubscriberState] = Counter({SubscriberState.IDLE: len(specs)})
        self.counts_by_kind: dict[str, Counter[SubscriberState]] = {
            kind: Counter({SubscriberState.IDLE: sum(s.kind == kind for s in specs)})
            for kind in KINDS
        }
        self.totals_by_kind: dict[str, int] = {
            kind: sum(s.kind == kind for s in specs) for kind in KINDS
        }
        self.setup_s = array("d")
        self.up_times = array("d")
        self.first_start = 0.0
        self.last_up = 0.0
        self.failures: Counter[str] = Counter()
        self.terminated_by_peer = 0
        self.dropped: Counter[str] = Counter()
        self.on_up: Callable[[int], None] | None = None
        self.on_down: Callable[[int], None] | None = None

    # ------------------------------------------------------------------ control

    def dial(
        self, count: int, rate: float, max_outstanding: int, now: float, kind: str = ""
    ) -> int:
        """Queue up to ``count`` idle (or down/failed) subscribers; 0 means all of them. With
        ``kind`` ("pppoe" or "docsis") only subscribers of that kind."""
        if kind and kind not in KINDS:
            raise ValueError(f"subscriber kind {kind!r} is none of {KINDS}")
        self.rate = rate
        self.max_outstanding = max_outstanding or DEFAULT_MAX_OUTSTANDING
        queued = set(self.pending)
        added = 0
        for i, sub in enumerate(self.subscribers):
            if count and added >= count:
                break
            if kind and sub.spec.kind != kind:
                continue
            if i not in queued and sub.state in (
                SubscriberState.IDLE,
                SubscriberState.DOWN,
                SubscriberState.FAILED,
            ):
                self.pending.append(i)
                added += 1
        self._last_tick = now
        self._tokens = 1.0
        self.tick(now)
        return added

    def hangup(self, count: int, username: str, now: float) -> int:
        """Hang up to ``count`` (0: all) subscribers that are up or connecting, or the one
        named ``username``; returns how many. A modem is powered off, a down or failed one
        too (it would start over by itself), without counting it."""
        done = 0
        if username:
            index = self.by_name.get(username)
            targets: list[int] | range = [] if index is None else [index]
        else:
            targets = range(len(self.subscribers))
            self.pending.clear()
        for i in targets:
            if count and done >= count:
                break
            sub = self.subscribers[i]
            if sub.client is None:
                continue
            if sub.state in (SubscriberState.UP, SubscriberState.CONNECTING):
                sub.client.hangup(now)
                self._pump(i, now)
                done += 1
            elif isinstance(sub.client, ModemClient):
                # Down or failed, but starting over by itself: power it off too.
                sub.client.hangup(now)
                self._pump(i, now)
        return done

    # ------------------------------------------------------------------ I/O from the adapter

    def receive(self, frame: bytes, now: float) -> bool:
        """A frame from the access segment. False if it is not for one of our subscribers."""
        index = self.by_mac.get(frame[:6])
        if index is None:
            return False
        sub = self.subscribers[index]
        if sub.client is None:
            self.dropped["no_client"] += 1
            return True
        sub.client.receive(frame, now)
        self._pump(index, now)
        return True

    def tick(self, now: float) -> None:
        """Start due dials and run due timers."""
        self._start_dials(now)
        timers = self._timers
        while timers and timers[0][0] <= now:
            at, index = heapq.heappop(timers)
            sub = self.subscribers[index]
            if sub.timer_at != at or sub.client is None:
                continue
            sub.timer_at = None
            sub.client.handle_timer(now)
            self._pump(index, now)

    def next_deadline(self) -> float | None:
        deadline = self._timers[0][0] if self._timers else None
        if self.pending and self.outstanding < self.max_outstanding and self.rate > 0:
            due = self._last_tick + max(0.0, (1.0 - self._tokens) / self.rate)
            deadline = due if deadline is None else min(deadline, due)
        return deadline

    @property
    def outstanding(self) -> int:
        return self.counts[SubscriberState.CONNECTING]

    # ------------------------------------------------------------------ internals

    def _start_dials(self, now: float) -> None:
        if not self.pending:
            self._last_tick = now
            return
        if self.rate > 0:
            self._tokens = min(
                self._tokens + (now - self._last_tick) * self.rate, max(1.0, self.rate / 10)
            )
        self._last_tick = now
        pending = self.pending
        while pending and self.outstanding < self.max_outstanding:
            if self.subscribers[pending[0]].state is SubscriberState.UP:
                pending.popleft()  # a modem that came back by itself while queued
                continue
            if self.rate > 0:
                if self._tokens < 1.0:
                    break
                self._tokens -= 1.0
            self._start(self.pending.popleft(), now)

    def _start(self, index: int, now: float) -> None:
        sub = self.subscribers[index]
        sub.client = self._client(sub.spec)
        self._set_state(sub, SubscriberState.CONNECTING)
        sub.started_at = now
        if not self.first_start:
            self.first_start = now
        sub.client.start(now)
        self._pump(index, now)

    def _client(self, spec: SubscriberSpec) -> SubscriberClient | ModemClient:
        if spec.kind == "docsis":
            assert self.wall is not None  # __init__ checked
            return ModemClient(
                spec.mac,
                spec.cpe_mac,
                service_class=spec.service_class,
                secret=self.secret,
                random_bytes=self.random_bytes,
                wall=self.wall,
                ranging_interval_s=self.modem_ranging_interval_s,
            )
        magic = int.from_bytes(self.random_bytes(4), "big") or 1
        return SubscriberClient(
            spec.mac,
            spec.username,
            spec.password,
            spec.auth_methods,
            magic=magic,
            random_bytes=self.random_bytes,
            ppp_config=self.ppp_config,
        )

    def _pump(self, index: int, now: float) -> None:
        sub = self.subscribers[index]
        client = sub.client
        if client is None:
            return
        while True:
            frames = client.frames_to_send()
            self.outbox.extend(frames)
            event = client.next_event()
            if event is None:
                if not frames:
                    break
                continue
            if isinstance(event, Connected):
                sub.addressing = event.addressing
                sub.session_id = event.session_id
                sub.up_at = now
                # A modem may have started over by itself since it was dialed.
                started = client.started_at if isinstance(client, ModemClient) else sub.started_at
                self.setup_s.append(now - started)
                self.up_times.append(now)
                self.last_up = max(self.last_up, now)
                self._set_state(sub, SubscriberState.UP)
                if self.on_up is not None:
                    self.on_up(index)
            elif isinstance(event, Disconnected):
                was_up = sub.state is SubscriberState.UP
                if was_up and self.on_down is not None:
                    self.on_down(index)
                if was_up:
                    if event.by_peer:
                        self.terminated_by_peer += 1
                    self._set_state(sub, SubscriberState.DOWN)
                else:
                    self.failures[event.reason] += 1
                    self._set_state(sub, SubscriberState.FAILED)
            elif isinstance(event, Dropped):
                self.dropped[f"{event.layer}_{event.reason}"] += 1
        at = client.get_timer()
        if at != sub.timer_at:
            sub.timer_at = at
            if at is not None:
                heapq.heappush(self._timers, (at, index))

    def _set_state(self, sub: Subscriber, state: SubscriberState) -> None:
        by_kind = self.counts_by_kind[sub.spec.kind]
        self.counts[sub.state] -= 1
        by_kind[sub.state] -= 1
        sub.state = state
        self.counts[state] += 1
        by_kind[state] += 1
