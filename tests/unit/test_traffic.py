"""The traffic verifier: loss, reordering, duplicates, gaps, latency, and the schedule."""

from __future__ import annotations

import pytest

from vnf.emulator.traffic import (
    Direction,
    TrafficPlan,
    TrafficRun,
    distribution,
    parse,
    payload,
)


def test_payload_round_trip_and_padding() -> None:
    data = payload(7, 42, 123456789, 100)
    assert len(data) == 100
    assert parse(data) == (7, 42, 123456789)
    assert parse(b"x" * 30) is None
    assert parse(b"VNFT") is None


def test_loss_reorder_duplicates_and_gap() -> None:
    d = Direction("upstream")
    for seq in range(10):
        d.record_sent(1, seq)
    ms = 1_000_000
    arrivals = [0, 1, 3, 2, 2, 9]  # 4..8 lost, 2 reordered after 3, one duplicate of 2
    for i, seq in enumerate(arrivals):
        now = (100 + i) * ms if seq != 9 else 500 * ms
        assert d.record_received(payload(1, seq, now - ms, 24), now)
    r = d.report()
    assert (r.sent, r.received, r.lost) == (10, 5, 5)
    assert r.reordered == 1
    assert r.duplicates == 1
    # The forwarding gap spans the send times of 3 (sent at 101) and 9 (sent at 499): the
    # reordered 2 and the duplicate do not shorten it.
    assert r.max_gap_ms == pytest.approx(499 - 101)
    assert r.flow_gap_ms.count == 1 and r.flow_gap_ms.p99 == pytest.approx(499 - 101)
    assert r.max_arrival_gap_ms == pytest.approx(500 - 103)  # the duplicate is not an arrival
    assert r.latency_ms.min == pytest.approx(1.0)


def test_the_forwarding_gap_ignores_the_receivers_queueing() -> None:
    """Sent every 20 ms; 5 packets lost; the receiver stalls 150 ms after the hole and then
    reads a burst. The forwarding gap is the hole (6 intervals), not the stall."""
    d = Direction("downstream")
    ms = 1_000_000
    for seq in range(20):
        d.record_sent(1, seq)
    for seq in [*range(5), *range(10, 20)]:
        tx = seq * 20 * ms
        rx = tx + ms if seq < 10 else 10 * 20 * ms + 150 * ms + seq * ms
        d.record_received(payload(1, seq, tx, 24), rx)
    r = d.report()
    assert r.max_gap_ms == pytest.approx(6 * 20)
    assert r.max_arrival_gap_ms > 200
    assert r.lost == 5
    assert d.max_gap_ns() == 6 * 20 * ms and d.lost() == 5  # what /metrics shows


def test_foreign_and_unsent_sequence_numbers_are_not_counted() -> None:
    d = Direction("downstream")
    d.record_sent(1, 0)
    assert not d.record_received(payload(1, 5, 0, 24), 1)  # never sent
    assert not d.record_received(payload(2, 0, 0, 24), 1)  # unknown flow
    assert not d.record_received(b"garbage" * 5, 1)
    assert d.report().received == 0 and d.foreign == 3


def test_schedule_is_bounded_and_paced() -> None:
    plan = TrafficPlan(duration_s=1.0, pps_per_flow=10, ip_size=128)
    run = TrafficRun(plan, [0, 1], start=100.0)
    assert run.due(100.0) == [(0, 0), (1, 0)]
    assert run.due(100.05) == []
    assert len(run.due(100.55)) == 2 * 5
    assert len(run.due(1000.0)) == 2 * 4  # never more than duration * pps per flow
    assert run.finished


@pytest.mark.parametrize(
    "kwargs", [{"duration_s": 0}, {"pps_per_flow": 0}, {"ip_size": 20}, {"ip_size": 9000}]
)
def test_plan_bounds(kwargs: dict[str, float]) -> None:
    args = {"duration_s": 1.0, "pps_per_flow": 10, "ip_size": 128, **kwargs}
    with pytest.raises(ValueError):
        TrafficPlan(**args)  # type: ignore[arg-type]


def test_distribution_percentiles() -> None:
    d = distribution([float(i) for i in range(1, 101)])
    assert (d.min, d.p50, d.p99, d.max) == (1.0, 50.0, 99.0, 100.0)
    assert d.avg == pytest.approx(50.5)
    assert distribution([]).count == 0
