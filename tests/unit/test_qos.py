"""Per-session QoS: the token buckets alone, and policing through the worker's fast path with
simulated time (``RxBatch.rx_ns``), both access types, both directions."""

from __future__ import annotations

import numpy as np
import pytest

from data_plane.io.base import RxBatch
from data_plane.qos import DOCSIS_DEFAULT_BURST, TokenBuckets, bucket_depth
from data_plane.worker import Worker
from tests.unit.test_fastpath import (
    GROUP1,
    client_ip,
    down_frame,
    drops,
    make_worker,
    rule,
    up_frame,
)
from tests.unit.test_fastpath_docsis import cable_rule, cable_up
from vnf.model.session import Qos, RuleOp, SessionRule, Usage

SECOND = 1_000_000_000
T0 = 7 * SECOND  # any start: the buckets only see differences


def sizes(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.uint64)


def slots(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.intp)


# ---- the buckets alone ----------------------------------------------------------------------
def test_depth_is_burst_or_docsis_default_or_ten_milliseconds() -> None:
    assert bucket_depth(1_000, 0) == DOCSIS_DEFAULT_BURST == 3044
    assert bucket_depth(1_000, 5_000) == 5_000
    assert bucket_depth(12.5e6, 5_000) == pytest.approx(125_000)  # 100 Mbit/s: 10 ms of it


def test_a_slot_passes_a_prefix_of_its_frames_and_spends_it() -> None:
    b = TokenBuckets(8)
    b.configure(3, 800, 0)  # 100 000 bytes/s, depth 3044
    b.configure(5, 800, 10_000)
    passed = b.police(slots(3, 5, 3, 3, 5, 3), sizes(1000, 6000, 1000, 1500, 6000, 10), T0)
    # slot 3: 1000 and 2000 fit 3044, 3500 does not, and the 10 after it is not slipped in
    assert passed is not None
    assert passed.tolist() == [True, True, True, False, False, False]
    assert b.tokens[3] == pytest.approx(1044) and b.tokens[5] == pytest.approx(4000)
    # 10 ms later: 1000 bytes more each
    passed = b.police(slots(3, 5), sizes(2044, 5000), T0 + SECOND // 100)
    assert passed is not None and passed.tolist() == [True, True]
    assert b.tokens[3] == pytest.approx(0) and b.tokens[5] == pytest.approx(0)


def test_unlimited_slots_skip_everything() -> None:
    b = TokenBuckets(8)
    b.configure(2, 0, 5000)
    assert b.count == 0 and not b.limited.any()
    assert b.police(slots(2, 2), sizes(1500, 1500), T0) is None
    b.configure(4, 1000, 0)
    passed = b.police(slots(2, 4, 2), sizes(1500, 1500, 1500), T0)
    assert passed is not None and passed.tolist() == [True, True, True]


def test_refill_never_goes_backwards_in_time() -> None:
    b = TokenBuckets(4)
    b.configure(1, 8_000, 0)  # 1 MB/s, depth 10 000
    b.police(slots(1), sizes(10_000), T0)
    passed = b.police(slots(1), sizes(1), T0 - SECOND)  # an earlier clock: no refill
    assert passed is not None and passed.tolist() == [False]
    assert b.tokens[1] == 0


# ---- through the worker ---------------------------------------------------------------------
KEY = 11
IP_SIZE = 1000


def _worker(access: str, up: int, down: int, burst: int = 0) -> Worker:
    w = make_worker()
    qos = Qos(up_kbps=up, down_kbps=down, burst_bytes=burst)
    results, _ = w.apply_rules([_rule(access, qos)])
    assert all(r.ok for r in results)
    return w


def _rule(access: str, qos: Qos, op: RuleOp = RuleOp.INSTALL) -> SessionRule:
    if access == "docsis":
        return _with_qos(cable_rule(KEY, 3, op=op), qos)
    return _with_qos(rule(KEY, 3, op=op), qos)


def _with_qos(r: SessionRule, qos: Qos) -> SessionRule:
    return SessionRule(r.op, r.session_key, r.group, r.endpoint, r.ipv4, qos)


def _frame(access: str, direction: str, size: int = IP_SIZE) -> bytes:
    if direction == "down":
        n = 23 if access == "docsis" else 3
        return down_frame(client_ip(n), size=size - 28)
    return cable_up(3, size=size - 28) if access == "docsis" else up_frame(3, size=size - 28)


class Offer:
    """Batches of one session's frames, reused: the headers the worker rewrote are restored
    before each."""

    def __init__(self, worker: Worker, frame: bytes, direction: str, most: int) -> None:
        self.worker = worker
        self.batch = RxBatch(max(most, 1))
        self.batch.fill([frame] * max(most, 1))
        self.pristine = self.batch.buf.copy()
        self.up = direction == "up"

    def send(self, count: int, rx_ns: int) -> int:
        """Offer ``count`` frames at ``rx_ns``; returns how many were forwarded."""
        batch = self.batch
        batch.buf[:count] = self.pristine[:count]
        batch.count, batch.rx_ns = count, rx_ns
        if self.up:
            return self.worker.process_access(batch).to_core.count
        return self.worker.process_core(batch).to_access.count


@pytest.mark.parametrize("direction", ["up", "down"])
@pytest.mark.parametrize("access", ["pppoe", "docsis"])
@pytest.mark.parametrize("mbps", [1, 10, 100, 500])
def test_policed_rate_holds_at_twice_the_offered_load(
    mbps: int, access: str, direction: str
) -> None:
    """2x the rate for 5 simulated seconds in batches 5 ms apart: the session gets its rate
    (plus the full bucket it starts with), within 2 %."""
    kbps = mbps * 1000
    w = _worker(access, kbps if direction == "up" else 0, kbps if direction == "down" else 0)
    rate = kbps * 1000 / 8  # bytes per second
    interval_ns, seconds = 5_000_000, 5
    per_batch = 2 * rate * interval_ns / SECOND / IP_SIZE
    offer = Offer(w, _frame(access, direction), direction, int(per_batch) + 1)
    owed = 0.0
    offered = forwarded = 0
    for i in range(seconds * SECOND // interval_ns + 1):
        owed += per_batch
        count = int(owed)
        owed -= count
        if count:
            offered += count
            forwarded += offer.send(count, T0 + i * interval_ns)
    expected = rate * seconds + bucket_depth(rate, 0)
    assert forwarded * IP_SIZE == pytest.approx(expected, rel=0.02)
    usage = w.sessions.usage_of(KEY)
    assert usage is not None
    moved = usage.up_bytes if direction == "up" else usage.down_bytes
    assert moved == forwarded * IP_SIZE
    assert usage.dropped == offered - forwarded
    counter = f"drop_{direction}_rate_limited"
    assert drops(w) == {counter: offered - forwarded}


@pytest.mark.parametrize("direction", ["up", "down"])
@pytest.mark.parametrize("access", ["pppoe", "docsis"])
def test_burst_allowance_then_the_rate(access: str, direction: str) -> None:
    """A new session starts with a full bucket of ``burst_bytes``; then 10 ms buys 10 ms of
    the rate."""
    kbps = 8_000  # 1 MB/s: 10 000 bytes per 10 ms
    w = _worker(access, kbps, kbps, burst=50_000)
    offer = Offer(w, _frame(access, direction), direction, 100)
    assert offer.send(100, T0) == 50
    assert offer.send(100, T0 + SECOND // 100) == 10
    assert offer.send(100, T0 + SECOND // 100) == 0  # same instant: nothing new
    # a long pause refills up to the depth only
    assert offer.send(100, T0 + 100 * SECOND) == 50


def test_unlimited_sessions_in_a_policed_batch_are_untouched() -> None:
    w = make_worker()
    slow = _with_qos(rule(1, 1), Qos(up_kbps=64, down_kbps=64))
    w.apply_rules([slow, rule(2, 2), cable_rule(3, 3)])
    frames = [up_frame(1, size=972), up_frame(2, size=972), cable_up(3, size=972)] * 10
    result = w.process_access(RxBatch.of(frames, rx_ns=T0))
    assert result.to_core.count == 3 + 20  # 3044 bytes: 3 of session 1, every other one
    assert w.sessions.usage_of(2) == Usage(2, 10, 10_000)
    assert w.sessions.usage_of(3) == Usage(3, 10, 10_000)
    assert w.sessions.usage_of(1) == Usage(1, 3, 3_000, dropped=7)
    down = [down_frame(client_ip(n), size=972) for n in (1, 2, 23)] * 10
    assert w.process_core(RxBatch.of(down, rx_ns=T0)).to_access.count == 23


def test_interleaved_limited_sessions_each_get_their_own_prefix() -> None:
    w = make_worker()
    qos = Qos(up_kbps=64, down_kbps=0)  # depth 3044: three 1000-byte packets each
    w.apply_rules([_with_qos(rule(1, 1), qos), _with_qos(cable_rule(2, 2), qos)])
    a, b = up_frame(1, size=972), cable_up(2, size=972)
    result = w.process_access(RxBatch.of([a, b, b, a, a, b, b, a, a], rx_ns=T0))
    assert result.to_core.rows.tolist() == [0, 1, 2, 3, 4, 5]


@pytest.mark.parametrize("access", ["pppoe", "docsis"])
def test_modify_changes_the_rate_on_the_next_batch_and_keeps_counters(access: str) -> None:
    w = _worker(access, 8_000, 0)  # 1 MB/s
    offer = Offer(w, _frame(access, "up"), "up", 100)
    t = T0
    assert offer.send(100, t) == 10  # the full bucket: 10 ms of the rate
    for _ in range(3):
        t += SECOND // 100
        assert offer.send(100, t) == 10
    before = w.sessions.usage_of(KEY)
    results, _ = w.apply_rules([_rule(access, Qos(up_kbps=80_000), RuleOp.MODIFY)])
    assert results[0].ok
    assert w.sessions.usage_of(KEY) == before  # counters kept
    t += SECOND // 100
    assert offer.send(100, t) == 100  # 10 MB/s: 100 000 bytes in 10 ms
    t += SECOND // 100
    assert offer.send(100, t) == 100
    # slower again (100 000 bytes/s, depth 3044): nothing left now, 1000 bytes in 10 ms
    w.apply_rules([_rule(access, Qos(up_kbps=800), RuleOp.MODIFY)])
    assert offer.send(100, t) == 0
    t += SECOND // 100
    assert offer.send(100, t) == 1
    assert before is not None
    assert w.sessions.usage_of(KEY) == Usage(
        KEY, before.up_packets + 201, before.up_bytes + 201_000, dropped=before.dropped + 199
    )
    # and unlimited
    w.apply_rules([_rule(access, Qos(), RuleOp.MODIFY)])
    assert offer.send(100, t) == 100
    assert w.sessions.qos_up.count == 0


@pytest.mark.parametrize("access", ["pppoe", "docsis"])
def test_removal_clears_the_buckets(access: str) -> None:
    w = _worker(access, 8_000, 8_000)
    offer = Offer(w, _frame(access, "up"), "up", 100)
    assert offer.send(100, T0) == 10
    slot = w.sessions.slot_of(KEY)
    assert slot is not None
    _, final = w.apply_rules([_rule(access, Qos(), RuleOp.REMOVE)])
    assert final == [Usage(KEY, 10, 10_000, dropped=90)]
    for buckets in (w.sessions.qos_up, w.sessions.qos_down):
        assert buckets.count == 0 and not buckets.limited[slot] and buckets.tokens[slot] == 0
    # the same slot again, a new session: a full bucket at once, whatever the clock says
    w.apply_rules([_rule(access, Qos(up_kbps=8_000))])
    assert offer.send(100, T0) == 10


def test_without_a_receive_time_the_clock_is_read() -> None:
    w = _worker("pppoe", 8_000, 0)
    batch = RxBatch.of([up_frame(3, size=972)] * 20)
    assert batch.rx_ns == 0
    assert w.process_access(batch).to_core.count == 10
    assert w.counters()["drop_up_rate_limited"] == 10


def test_a_pppoe_only_worker_polices_too() -> None:
    """QoS needs no DOCSIS: a PPPoE rule with a rate is policed in a PPPoE-only worker."""
    w = make_worker((GROUP1,))
    w.apply_rules([_with_qos(rule(1, 1), Qos(down_kbps=64))])
    frames = [down_frame(client_ip(1), size=972)] * 5
    assert w.process_core(RxBatch.of(frames, rx_ns=T0)).to_access.count == 3
    assert drops(w) == {"drop_down_rate_limited": 2}


@pytest.mark.parametrize("limit", [16, 0], ids=["per_frame", "vectorized"])
@pytest.mark.parametrize("direction", ["up", "down"])
@pytest.mark.parametrize("access", ["pppoe", "docsis"])
def test_policing_beside_exceptions_is_the_same(access: str, direction: str, limit: int) -> None:
    """A runt in every batch sends it down the exception path (one by one, or with limit 0
    all at once): the policed frames are the same as through the gate."""
    kbps = 8_000  # 1 MB/s, depth 10 000
    plain = _worker(access, kbps, kbps)
    beside = make_worker(per_frame_limit=limit)
    beside.apply_rules([_rule(access, Qos(up_kbps=kbps, down_kbps=kbps))])
    frame = _frame(access, direction)
    for i, count in enumerate([30, 5, 12, 0, 40]):
        rx_ns = T0 + i * SECOND // 200
        got = []
        for w, extra in ((plain, []), (beside, [b"\x00"])):
            batch = RxBatch.of([frame] * count + extra, rx_ns=rx_ns)
            if direction == "up":
                got.append(w.process_access(batch).to_core.rows.tolist())
            else:
                got.append(w.process_core(batch).to_access.rows.tolist())
        assert got[0] == got[1]
    assert plain.usage() == beside.usage()
    counter = f"drop_{direction}_rate_limited"
    assert plain.counters()[counter] == beside.counters()[counter] > 0
