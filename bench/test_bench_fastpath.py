"""Micro-benchmarks of the worker's batch fast path (compute only, no I/O).

Upstream (decapsulation) and downstream (encapsulation) at batch sizes 32, 256, 1024 and 4096:

* PPPoE with 1,000 and 64,000 installed sessions, every frame a valid 64-byte data frame of
  a random installed session (a PPPoE-only worker, no QoS: the reference figures);
* the same with every session rate-limited (at 10 Gbit/s, so every frame passes: the cost
  of policing, not of dropping);
* DOCSIS with 1,000 and 16,000 modems in one group (SIDs have 14 bits), the same 42-byte
  IPv4 packets in 84-byte carrier frames upstream (the core frame is 64 bytes again).

Frames are built once outside the timed region; before each timed call the setup restores
the bytes the previous call rewrote. ``extra_info`` records Mpps (batch size / mean and / min
time per call).

Run: ``.venv/bin/python -m pytest bench/test_bench_fastpath.py --benchmark-columns=min,mean,ops``
"""

from __future__ import annotations

import ipaddress
import struct
from typing import Any

import numpy as np
import pytest

from data_plane.io.base import RxBatch
from data_plane.worker import Worker, WorkerConfig
from vnf.codec.docsis import PacketFrame, RequestEh, encode_carrier, encode_frame
from vnf.model.addresses import ip_to_int
from vnf.model.group import SubscriberGroup
from vnf.model.session import AccessType, Qos, RuleOp, SessionRule, TrafficEndpoint

BATCHES = [32, 256, 1024, 4096]
SESSIONS = [1_000, 64_000]
MODEMS = [1_000, 16_000]
VMAC = bytes.fromhex("020000000101")
CORE_MAC = bytes.fromhex("0200000000c1")
GW_MAC = bytes.fromhex("02000000009f")
POOL = ipaddress.IPv4Network("100.64.0.0/16")
SERVER = ip_to_int("198.18.9.9")
FRAME_BYTES = 64  # without FCS, as in shared/reference/dataplane-io/RESULTS.md
NO_QOS = Qos()


def client_mac(key: int) -> bytes:
    return bytes.fromhex(f"0200{key:08x}")


def client_ip(key: int) -> int:
    return int(POOL.network_address) + key


def ipv4(src: int, dst: int, size: int) -> bytes:
    header = struct.pack("!BBHHHBBHII", 0x45, 0, 20 + size, 1, 0, 64, 17, 0, src, dst)
    words = struct.unpack("!10H", header)
    total = sum(words)
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    header = header[:10] + struct.pack("!H", ~total & 0xFFFF) + header[12:]
    return header + bytes(size)


def up_frame(key: int) -> bytes:
    ip = ipv4(client_ip(key), SERVER, FRAME_BYTES - 42)
    pppoe = struct.pack("!BBHH", 0x11, 0, key, len(ip) + 2) + b"\x00\x21"
    return VMAC + client_mac(key) + b"\x88\x64" + pppoe + ip


def down_frame(key: int) -> bytes:
    return CORE_MAC + GW_MAC + b"\x08\x00" + ipv4(SERVER, client_ip(key), FRAME_BYTES - 34)


def cm_mac(key: int) -> bytes:
    return bytes.fromhex(f"0201{key:08x}")


def cpe_mac(key: int) -> bytes:
    return bytes.fromhex(f"0a02{key:08x}")


def cable_up_frame(key: int) -> bytes:
    """Modem ``key`` (SID ``key``): the PPPoE frames' IPv4 packet in a Packet PDU."""
    ip = ipv4(client_ip(key), SERVER, FRAME_BYTES - 42)
    pdu = PacketFrame(VMAC, cpe_mac(key), 0x0800, ip, (RequestEh(0, key),))
    return encode_carrier(VMAC, cm_mac(key), encode_frame(pdu))


def _worker(rules: list[SessionRule]) -> Worker:
    cfg = WorkerConfig(
        "bench", CORE_MAC, ip_to_int("198.18.0.2"), 24, ip_to_int("198.18.0.1"), gateway_mac=GW_MAC
    )
    w = Worker(cfg)
    w.assign_groups([SubscriberGroup(1, "bench", VMAC, POOL)])
    results, _ = w.apply_rules(rules)
    assert all(r.ok for r in results)
    return w


def _pppoe_rules(sessions: int, qos: Qos = NO_QOS) -> list[SessionRule]:
    return [
        SessionRule(
            RuleOp.INSTALL, k, 1, TrafficEndpoint(client_mac(k), VMAC, k), client_ip(k), qos
        )
        for k in range(1, sessions + 1)
    ]


@pytest.fixture(scope="module", params=SESSIONS, ids=lambda n: f"{n}sessions")
def worker(request: pytest.FixtureRequest) -> tuple[Worker, int]:
    sessions: int = request.param
    return _worker(_pppoe_rules(sessions)), sessions


@pytest.fixture(scope="module", params=SESSIONS, ids=lambda n: f"{n}sessions")
def qos_worker(request: pytest.FixtureRequest) -> tuple[Worker, int]:
    """Every session policed at 10 Gbit/s both ways: every frame conforms."""
    sessions: int = request.param
    return _worker(_pppoe_rules(sessions, Qos(10_000_000, 10_000_000))), sessions


@pytest.fixture(scope="module", params=MODEMS, ids=lambda n: f"{n}modems")
def cable_worker(request: pytest.FixtureRequest) -> tuple[Worker, int]:
    modems: int = request.param
    rules = [
        SessionRule(
            RuleOp.INSTALL,
            k,
            1,
            TrafficEndpoint(
                cm_mac(k), VMAC, cm_sid=k, access=AccessType.DOCSIS, cpe_mac=cpe_mac(k)
            ),
            client_ip(k),
        )
        for k in range(1, modems + 1)
    ]
    return _worker(rules), modems


def _run(benchmark: Any, worker: Worker, frames: list[bytes], upstream: bool) -> None:
    batch = RxBatch.of(frames)
    columns = batch.headroom + max(len(f) for f in frames) + 8  # DOCSIS's CRC goes behind
    pristine = batch.buf[:, :columns].copy()

    def restore() -> None:
        batch.buf[:, :columns] = pristine

    process = worker.process_access if upstream else worker.process_core
    rounds = max(300, 200_000 // len(frames))
    benchmark.pedantic(process, args=(batch,), setup=restore, rounds=rounds, warmup_rounds=20)
    restore()
    result = process(batch)
    sent = result.to_core if upstream else result.to_access  # type: ignore[union-attr]
    assert sent.count == len(frames)
    stats = benchmark.stats.stats
    benchmark.extra_info["batch"] = len(frames)
    benchmark.extra_info["mpps_mean"] = round(len(frames) / stats.mean / 1e6, 3)
    benchmark.extra_info["mpps_best"] = round(len(frames) / stats.min / 1e6, 3)


def _keys(sessions: int, count: int) -> list[int]:
    rng = np.random.default_rng(count)
    return [int(k) for k in rng.integers(1, sessions + 1, count)]


@pytest.mark.parametrize("size", BATCHES, ids=lambda b: f"batch{b}")
def test_upstream(benchmark: Any, worker: tuple[Worker, int], size: int) -> None:
    w, sessions = worker
    benchmark.group = f"upstream {sessions} sessions"
    _run(benchmark, w, [up_frame(k) for k in _keys(sessions, size)], upstream=True)


@pytest.mark.parametrize("size", BATCHES, ids=lambda b: f"batch{b}")
def test_downstream(benchmark: Any, worker: tuple[Worker, int], size: int) -> None:
    w, sessions = worker
    benchmark.group = f"downstream {sessions} sessions"
    _run(benchmark, w, [down_frame(k) for k in _keys(sessions, size)], upstream=False)


@pytest.mark.parametrize("size", BATCHES, ids=lambda b: f"batch{b}")
def test_upstream_qos(benchmark: Any, qos_worker: tuple[Worker, int], size: int) -> None:
    w, sessions = qos_worker
    benchmark.group = f"upstream {sessions} sessions, policed"
    _run(benchmark, w, [up_frame(k) for k in _keys(sessions, size)], upstream=True)


@pytest.mark.parametrize("size", BATCHES, ids=lambda b: f"batch{b}")
def test_downstream_qos(benchmark: Any, qos_worker: tuple[Worker, int], size: int) -> None:
    w, sessions = qos_worker
    benchmark.group = f"downstream {sessions} sessions, policed"
    _run(benchmark, w, [down_frame(k) for k in _keys(sessions, size)], upstream=False)


@pytest.mark.parametrize("size", BATCHES, ids=lambda b: f"batch{b}")
def test_docsis_upstream(benchmark: Any, cable_worker: tuple[Worker, int], size: int) -> None:
    w, modems = cable_worker
    benchmark.group = f"docsis upstream {modems} modems"
    _run(benchmark, w, [cable_up_frame(k) for k in _keys(modems, size)], upstream=True)


@pytest.mark.parametrize("size", BATCHES, ids=lambda b: f"batch{b}")
def test_docsis_downstream(benchmark: Any, cable_worker: tuple[Worker, int], size: int) -> None:
    w, modems = cable_worker
    benchmark.group = f"docsis downstream {modems} modems"
    _run(benchmark, w, [down_frame(k) for k in _keys(modems, size)], upstream=False)
