"""The QoS and DP-memory benches' building blocks, small and fast (the benches themselves run
with ``python -m bench.run --only qos,dp_memory``)."""

from __future__ import annotations

import numpy as np
import pytest

from bench import dp_memory, qos
from vnf.model.session import AccessType, Qos


def test_mean_gap_brings_the_target_frames_within_bounds() -> None:
    load = np.array([1e8])  # 100 MB/s of 1000-byte packets at 1.75x: 175,000 frames/s
    assert qos.mean_gap(load, (1000,)) == pytest.approx(qos.FRAMES_PER_GAP / 175_000)
    assert qos.mean_gap(np.array([1.0]), (1000,)) == qos.GAP_BOUNDS_S[1]
    assert qos.mean_gap(np.array([1e12]), (46,)) == qos.GAP_BOUNDS_S[0]


@pytest.mark.parametrize("access", [AccessType.PPPOE, AccessType.DOCSIS])
@pytest.mark.parametrize("up", [True, False])
def test_a_short_drive_gets_the_rate_and_the_counters_agree(access: AccessType, up: bool) -> None:
    rng = np.random.default_rng(0)
    rules = [qos.session_rule(access, 1, 1, qos=Qos(2_000, 2_000))]
    worker = qos.make_worker(rules)
    rate = np.array([2e6 / 8])
    pattern = qos.PATTERNS[qos.MIX]
    offer = qos.Offer(worker, rules, pattern, up)
    run = qos.drive(offer, pattern, qos.jittered(rate, rng), 2e-3, rng, seconds=1.0)
    assert run.offered[0, 0] > 1.4 * rate[0]
    # the rate plus at most the starting bucket (3044 bytes)
    assert rate[0] < run.forwarded[0, 0] <= rate[0] + 3044
    assert qos._check_counters(worker, rules, up, run.forwarded[0])


def test_touched_bytes_counts_the_pages_of_the_rows() -> None:
    array = np.zeros((1 << 20, 8), dtype=np.uint8)  # 8 MiB, rows 8 bytes
    page = dp_memory.PAGE
    rows = np.array([0, 1, page // 8, 3 * page // 8 - 1], dtype=np.int64)
    expected = len({(array.ctypes.data + int(r) * 8 + k) // page for r in rows for k in (0, 7)})
    assert dp_memory.touched_bytes(array, rows) == expected * page
    assert expected >= 3
    assert dp_memory.touched_bytes(array, rows[:0]) == 0


def test_deep_size_counts_shared_objects_once_and_skips_enums() -> None:
    rule = qos.session_rule(AccessType.PPPOE, 7, 7)
    alone = dp_memory.deep_size([rule])
    assert dp_memory.deep_size([rule, rule]) == alone
    assert dp_memory.deep_size([{1: rule}]) > alone
    assert dp_memory.deep_size([AccessType.PPPOE]) == 0
