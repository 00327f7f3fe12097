"""Sequence-numbered traffic between subscribers and a server, and its verifier (sans-IO).

Every test packet carries ``magic | flow | seq | tx_ns`` (24 bytes, padded to the frame
size). One flow per session and direction. The verifier counts per direction: sent,
received, lost (sent - received once the run has drained), reordered (a sequence number
below one already seen), duplicates, one-way latency (the sender and receiver share the
machine's monotonic clock) and, per flow, the longest gap between consecutive arrivals —
the figure a failover test reads.
"""

from __future__ import annotations

import math
import struct
from array import array
from dataclasses import dataclass

PAYLOAD = struct.Struct("!4sIQQ")
MAGIC = b"VNFT"
MIN_PAYLOAD = PAYLOAD.size
IP_UDP_OVERHEAD = 28
MAX_PPS = 100_000
MAX_DURATION_S = 3600.0


def payload(flow: int, seq: int, tx_ns: int, size: int) -> bytes:
    head = PAYLOAD.pack(MAGIC, flow, seq, tx_ns)
    return head + bytes(size - len(head)) if size > len(head) else head


def parse(data: bytes | memoryview) -> tuple[int, int, int] | None:
    """(flow, seq, tx_ns) of a test payload, or None if it is not one."""
    if len(data) < PAYLOAD.size:
        return None
    magic, flow, seq, tx_ns = PAYLOAD.unpack_from(data)
    if magic != MAGIC:
        return None
    return flow, seq, tx_ns


class FlowStats:
    """One flow's counts and gaps. The *forwarding gap* comes from the sequence numbers:
    between two in-order arrivals it is the span of send time they enclose (the packets
    sent in between never arrived), so it measures the network and not the receiver's
    scheduling. The *arrival gap* is the receiver's view, queueing jitter included."""

    __slots__ = (
        "last_rx_ns",
        "last_tx_ns",
        "max_arrival_gap_ns",
        "max_gap_ns",
        "max_seq",
        "received",
        "reordered",
        "seen",
        "sent",
    )

    def __init__(self) -> None:
        self.sent = 0
        self.received = 0
        self.max_seq = -1
        self.reordered = 0
        self.seen = bytearray()
        self.last_rx_ns = 0
        self.last_tx_ns = 0
        self.max_gap_ns = 0
        self.max_arrival_gap_ns = 0


@dataclass(frozen=True, slots=True)
class Distribution:
    count: int = 0
    min: float = 0.0
    avg: float = 0.0
    p50: float = 0.0
    p99: float = 0.0
    max: float = 0.0


def distribution(values: array[float] | list[float]) -> Distribution:
    if not values:
        return Distribution()
    ordered = sorted(values)
    n = len(ordered)

    def pct(p: float) -> float:
        return ordered[min(n - 1, max(0, math.ceil(p * n) - 1))]

    return Distribution(n, ordered[0], sum(ordered) / n, pct(0.50), pct(0.99), ordered[-1])


@dataclass(frozen=True, slots=True)
class DirectionReport:
    direction: str
    flows: int
    sent: int
    received: int
    lost: int
    reordered: int
    duplicates: int
    latency_ms: Distribution
    max_gap_ms: float  # longest forwarding gap of any flow, from sequence numbers
    flow_gap_ms: Distribution = Distribution()  # over flows: each flow's longest gap
    max_arrival_gap_ms: float = 0.0  # longest gap between arrivals, receiver jitter included


class Direction:
    def __init__(self, name: str) -> None:
        self.name = name
        self.flows: dict[int, FlowStats] = {}
        self.latency_ms = array("d")
        self.duplicates = 0
        self.foreign = 0

    def flow(self, flow: int) -> FlowStats:
        stats = self.flows.get(flow)
        if stats is None:
            stats = self.flows[flow] = FlowStats()
        return stats

    def record_sent(self, flow: int, seq: int) -> None:
        stats = self.flow(flow)
        stats.sent = max(stats.sent, seq + 1)

    def record_received(self, data: bytes | memoryview, now_ns: int) -> bool:
        parsed = parse(data)
        if parsed is None:
            self.foreign += 1
            return False
        flow, seq, tx_ns = parsed
        stats = self.flows.get(flow)
        if stats is None or seq >= stats.sent:
            self.foreign += 1
            return False
        seen = stats.seen
        if len(seen) <= seq:
            seen.extend(bytes(seq + 1 - len(seen) + 64))
        if seen[seq]:
            self.duplicates += 1
            return True
        seen[seq] = 1
        stats.received += 1
        if seq < stats.max_seq:
            stats.reordered += 1
        else:
            stats.max_seq = seq
            if stats.last_tx_ns:
                gap = tx_ns - stats.last_tx_ns
                if gap > stats.max_gap_ns:
                    stats.max_gap_ns = gap
            stats.last_tx_ns = tx_ns
        if stats.last_rx_ns:
            gap = now_ns - stats.last_rx_ns
            if gap > stats.max_arrival_gap_ns:
                stats.max_arrival_gap_ns = gap
        stats.last_rx_ns = now_ns
        self.latency_ms.append((now_ns - tx_ns) / 1e6)
        return True

    def max_gap_ns(self) -> int:
        return max((f.max_gap_ns for f in self.flows.values()), default=0)

    def lost(self) -> int:
        return sum(f.sent - f.received for f in self.flows.values())

    def report(self) -> DirectionReport:
        flows = self.flows.values()
        sent = sum(f.sent for f in flows)
        received = sum(f.received for f in flows)
        return DirectionReport(
            direction=self.name,
            flows=len(self.flows),
            sent=sent,
            received=received,
            lost=sent - received,
            reordered=sum(f.reordered for f in flows),
            duplicates=self.duplicates,
            latency_ms=distribution(self.latency_ms),
            max_gap_ms=self.max_gap_ns() / 1e6,
            flow_gap_ms=distribution([f.max_gap_ns / 1e6 for f in flows]),
            max_arrival_gap_ms=max((f.max_arrival_gap_ns for f in flows), default=0) / 1e6,
        )


@dataclass(frozen=True, slots=True)
class TrafficPlan:
    duration_s: float
    pps_per_flow: int
    ip_size: int

    def __post_init__(self) -> None:
        if not 0 < self.duration_s <= MAX_DURATION_S:
            raise ValueError(f"duration must be in (0, {MAX_DURATION_S:g}] seconds")
        if not 1 <= self.pps_per_flow <= MAX_PPS:
            raise ValueError(f"pps per flow must be 1..{MAX_PPS}")
        if not IP_UDP_OVERHEAD + MIN_PAYLOAD <= self.ip_size <= 1492:
            raise ValueError(f"packet size must be {IP_UDP_OVERHEAD + MIN_PAYLOAD}..1492 bytes")

    @property
    def payload_size(self) -> int:
        return self.ip_size - IP_UDP_OVERHEAD

    @property
    def packets_per_flow(self) -> int:
        return max(1, int(self.duration_s * self.pps_per_flow))


class TrafficRun:
    """Which packets are due when: every flow sends ``pps_per_flow`` for ``duration_s``."""

    def __init__(self, plan: TrafficPlan, flows: list[int], start: float) -> None:
        self.plan = plan
        self.flows = flows
        self.start = start
        self.next_seq = dict.fromkeys(flows, 0)
        self.upstream = Direction("upstream")
        self.downstream = Direction("downstream")
        self.finished = False

    @property
    def end(self) -> float:
        return self.start + self.plan.duration_s

    def due(self, now: float) -> list[tuple[int, int]]:
        """(flow, seq) pairs to send now in each direction (bounded by the plan)."""
        total = self.plan.packets_per_flow
        target = min(total, int((now - self.start) * self.plan.pps_per_flow) + 1)
        out = []
        for flow in self.flows:
            seq = self.next_seq[flow]
            while seq < target:
                out.append((flow, seq))
                seq += 1
            self.next_seq[flow] = seq
        if all(s >= total for s in self.next_seq.values()):
            self.finished = True
        return out

    def next_due(self) -> float:
        return self.start + (min(self.next_seq.values(), default=0)) / self.plan.pps_per_flow
