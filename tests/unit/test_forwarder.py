"""The forwarding thread: commands between batches, rules under full load, metrics.

Real threads and in-memory ports: a feeder thread keeps the access and core queues full
while the test changes rules through :meth:`Forwarder.submit`, as the control side does.
Every wait is a condition with a deadline; load loops are bounded in count and time.
"""

from __future__ import annotations

import itertools
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from ipaddress import IPv4Network

import pytest
from prometheus_client import CollectorRegistry

from data_plane.adapters.forwarder import RULE_CHUNK, Forwarder
from data_plane.adapters.services import forwarding_metrics
from data_plane.io.memory import MemoryPort
from data_plane.worker import Worker
from tests.unit.test_fastpath import (
    GROUP1,
    VMAC1,
    client_ip,
    client_mac,
    down_frame,
    expected_down,
    expected_up,
    make_worker,
    rule,
    up_frame,
)
from vnf.adapters.metrics_http import CallbackCollector
from vnf.model.group import SubscriberGroup
from vnf.model.session import RuleOp, SessionRule, TrafficEndpoint

pytestmark = pytest.mark.component


def until(cond: Callable[[], object], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.002)


@dataclass
class Rig:
    worker: Worker
    access: MemoryPort
    core: MemoryPort
    forwarder: Forwarder
    punts: list[bytes]


def rig(worker: Worker) -> Rig:
    access, core = MemoryPort("access"), MemoryPort("core")
    punts: list[bytes] = []
    forwarder = Forwarder(worker, access, core, lambda p: punts.extend(f for f, _ in p))
    return Rig(worker, access, core, forwarder, punts)


class Feeder(threading.Thread):
    """Keeps ``port``'s receive queue topped up with ``frames`` (cycled) until stopped,
    for at most ``limit_s`` and ``max_frames``."""

    def __init__(
        self, port: MemoryPort, frames: list[bytes], limit_s: float = 10.0, max_frames: int = 10**7
    ) -> None:
        super().__init__(daemon=True)
        self.port, self.frames = port, frames
        self.limit_s, self.max_frames = limit_s, max_frames
        self.sent = 0
        self.halt = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + self.limit_s
        chunk = self.frames * max(1, 256 // len(self.frames))
        while not self.halt.is_set() and time.monotonic() < deadline:
            if self.sent >= self.max_frames:
                return
            if self.port.pending() < 2048:
                self.sent += self.port.inject(chunk)
            else:
                time.sleep(0)  # let the forwarder drain; not a synchronization


def test_a_command_runs_on_the_forwarding_thread_and_returns_its_result() -> None:
    r = rig(make_worker())
    r.forwarder.start()
    try:
        name = r.forwarder.submit(lambda: threading.current_thread().name).result(5)
        assert name == "fastpath"
        failing = r.forwarder.submit(lambda: 1 // 0)
        with pytest.raises(ZeroDivisionError):
            failing.result(5)
        assert r.forwarder.stats.command_errors == 1
        assert r.forwarder.cpu_seconds() > 0
    finally:
        r.forwarder.stop()
    after = r.forwarder.submit(lambda: "inline")  # not running: runs in the caller
    assert after.result(0) == "inline"


def test_frames_flow_both_ways_and_punts_leave_once_per_round() -> None:
    r = rig(make_worker())
    r.worker.apply_rules([rule(1, 1)])
    r.forwarder.start()
    try:
        lcp = bytearray(up_frame(1))
        lcp[20:22] = b"\xc0\x21"  # PPP protocol LCP: punted
        r.access.inject([up_frame(1), bytes(lcp)])
        r.core.inject([down_frame(client_ip(1))])
        until(lambda: r.core.sent and r.access.sent and r.punts, "frames both ways and a punt")
    finally:
        r.forwarder.stop()
    assert r.core.take_sent() == [expected_up(up_frame(1))]
    assert r.access.take_sent() == [
        expected_down(down_frame(client_ip(1)), client_mac(1), VMAC1, 1)
    ]
    assert r.punts == [bytes(lcp)]
    stats = r.forwarder.stats
    assert stats.access.frames == 2 and stats.core.frames == 1
    assert stats.access.sizes[1] == 1  # one batch of two frames


def variant(key: int, which: int, op: RuleOp = RuleOp.MODIFY) -> SessionRule:
    """Session ``key`` at one address with two endpoints: (MAC 100+key, PPPoE id 100+key)
    or (MAC 200+key, id 200+key)."""
    n = (100 if which == 0 else 200) + key
    endpoint = TrafficEndpoint(client_mac(n), VMAC1, n)
    base = rule(key, key)
    return SessionRule(op, key, GROUP1.group_id, endpoint, base.ipv4)


@pytest.fixture
def eager_thread_switches() -> Iterator[None]:
    """Switch threads every 10 µs instead of 5 ms: a rule change that could land in the
    middle of a batch then does, within a second of churn."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(before)


@pytest.mark.usefixtures("eager_thread_switches")
def test_rule_churn_under_full_load_never_corrupts_a_forwarded_frame() -> None:
    """Sessions 1..4 stay; session 5 flips between two endpoints, and is removed and
    installed again, as fast as the control side can ask, while both directions run full.
    Every frame that comes out is exactly the transform of a frame that went in under one
    consistent rule: upstream the decapsulated packet, downstream the header of one
    endpoint or the other — never a mix of two rules; and every one of session 5's frames is
    counted on it exactly once. (Applied from the test thread instead, between the numpy
    steps of a batch, the same churn loses counts within a second.)"""
    r = rig(make_worker())
    r.worker.apply_rules([rule(k, k) for k in range(1, 5)] + [variant(5, 0, RuleOp.INSTALL)])
    ups = [up_frame(k) for k in range(1, 5)] + [up_frame(n, n) for n in (105, 205)]
    # Session 5's upstream frames come from either endpoint, at the session's address.
    ups[4:] = [up_frame(n, n, src_ip=client_ip(5)) for n in (105, 205)]
    downs = [down_frame(client_ip(k), size=10 + k) for k in range(1, 6)]
    allowed_up = {expected_up(f) for f in ups}
    allowed_down = {expected_down(downs[k - 1], client_mac(k), VMAC1, k) for k in range(1, 5)}
    allowed_down |= {expected_down(downs[4], client_mac(n), VMAC1, n) for n in (105, 205)}

    r.forwarder.start()
    feeders = [Feeder(r.access, ups), Feeder(r.core, downs)]
    for feeder in feeders:
        feeder.start()
    changes = counted = 0
    try:
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline and changes < 5000:
            step = changes % 4
            if step == 3:
                rules = [SessionRule(RuleOp.REMOVE, 5, 0, variant(5, 0).endpoint)]
            else:
                rules = [variant(5, step % 2, RuleOp.INSTALL if step == 0 else RuleOp.MODIFY)]
            results, final = r.forwarder.submit(
                lambda rules=rules: r.worker.apply_rules(rules)
            ).result(5)
            assert all(res.ok for res in results), results
            counted += sum(u.up_packets + u.down_packets for u in final)
            changes += 1
    finally:
        for feeder in feeders:
            feeder.halt.set()
            feeder.join()
        until(lambda: not r.access.pending() and not r.core.pending(), "queues drained")
        r.forwarder.stop()
    up_out, down_out = r.core.take_sent(), r.access.take_sent()
    assert changes > 50, "the churn must have happened while frames flowed"
    assert len(up_out) > 5000 and len(down_out) > 5000
    assert set(up_out) <= allowed_up
    assert set(down_out) <= allowed_down
    # Every frame of session 5 that went out was counted on it exactly once, across its
    # modifications (counters follow a session to its new slot) and removals (final usage).
    fives = {expected_up(f) for f in ups[4:]}
    fives |= {expected_down(downs[4], client_mac(n), VMAC1, n) for n in (105, 205)}
    now = r.worker.sessions.usage_of(5)
    counted += now.up_packets + now.down_packets if now is not None else 0
    assert counted == sum(1 for f in up_out + down_out if f in fives)
    # Both endpoints of session 5 were seen forwarding in both directions.
    assert {expected_up(f) for f in ups[4:]} <= set(up_out)
    assert {expected_down(downs[4], client_mac(n), VMAC1, n) for n in (105, 205)} <= set(down_out)


def test_a_rule_takes_effect_within_a_batch_under_load() -> None:
    """The loop looks at its commands before every batch: a command queued while the ports
    are full runs after at most the round in progress."""
    r = rig(make_worker())
    r.worker.apply_rules([rule(k, k) for k in range(1, 5)])
    r.forwarder.start()
    feeder = Feeder(r.access, [up_frame(k) for k in range(1, 5)])
    feeder.start()
    try:
        until(lambda: r.forwarder.stats.rounds > 100, "the loop under load")
        lags = []
        for _ in range(50):
            before = r.forwarder.stats.rounds
            ran_at = r.forwarder.submit(lambda: r.forwarder.stats.rounds).result(5)
            lags.append(ran_at - before)
    finally:
        feeder.halt.set()
        feeder.join()
        r.forwarder.stop()
    assert max(lags) <= 2, lags


def test_a_long_rule_batch_interleaves_with_forwarding() -> None:
    """20,000 installs in chunks of RULE_CHUNK, as the runtime applies a big rule batch:
    frames keep flowing between the chunks."""
    big = SubscriberGroup(3, "site1", bytes.fromhex("020000000103"), IPv4Network("100.65.0.0/16"))
    r = rig(make_worker((GROUP1, big)))
    r.worker.apply_rules([rule(1, 1)])
    r.forwarder.start()
    feeder = Feeder(r.access, [up_frame(1)])
    feeder.start()
    rules = [
        SessionRule(
            RuleOp.INSTALL,
            1000 + k,
            big.group_id,
            TrafficEndpoint(client_mac(1000 + k), big.virtual_mac, k),
            int(big.pool.network_address) + k,
        )
        for k in range(1, 20_001)
    ]
    chunks = [rules[i : i + RULE_CHUNK] for i in range(0, len(rules), RULE_CHUNK)]

    def apply(chunk: list[SessionRule]) -> int:
        results, _ = r.worker.apply_rules(chunk)
        assert all(res.ok for res in results)
        return r.forwarder.stats.access.frames

    try:
        until(lambda: r.forwarder.stats.rounds > 100, "the loop under load")
        futures = [r.forwarder.submit(lambda c=c: apply(c)) for c in chunks]
        seen = [f.result(60) for f in futures]
    finally:
        feeder.halt.set()
        feeder.join()
        r.forwarder.stop()
    assert r.worker.session_count == 20_001
    # Frames were forwarded between the chunks, not only before or after all of them.
    advanced = sum(1 for a, b in itertools.pairwise(seen) if b > a)
    assert advanced >= len(chunks) // 4, (advanced, len(chunks))


def test_the_thread_pins_itself_and_reports_cpu_batches_and_port_counters() -> None:
    cpu = max(os.sched_getaffinity(0))
    r = rig(make_worker())
    r.forwarder.cpu = cpu
    r.worker.apply_rules([rule(1, 1)])
    r.forwarder.start()
    try:
        affinity = r.forwarder.submit(lambda: os.sched_getaffinity(0)).result(5)
        r.access.inject([up_frame(1)] * 3)
        until(lambda: len(r.core.sent) == 3, "three frames forwarded")
    finally:
        r.forwarder.stop()
    assert affinity == {cpu}
    assert os.sched_getaffinity(0) != {cpu} or os.cpu_count() == 1  # only the thread pinned
    const = {"worker": "dp-test", "site": "site1"}
    registry = CollectorRegistry()
    registry.register(CallbackCollector(lambda: forwarding_metrics(r.forwarder, const)))

    def sample(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, {**const, **labels})

    assert sample("vnf_dp_worker_pinned_cpu") == cpu
    assert (sample("vnf_dp_worker_cpu_seconds_total") or 0) > 0
    assert sample("vnf_dp_batch_frames_count", port="access") == 1
    assert sample("vnf_dp_batch_frames_sum", port="access") == 3
    assert sample("vnf_dp_batch_frames_bucket", port="access", le="2") == 0
    assert sample("vnf_dp_batch_frames_bucket", port="access", le="4") == 1
    assert sample("vnf_dp_port_rx_packets_total", port="access") == 3
    assert sample("vnf_dp_port_tx_packets_total", port="core") == 3
    assert (sample("vnf_dp_forwarder_rounds_total") or 0) >= 1
