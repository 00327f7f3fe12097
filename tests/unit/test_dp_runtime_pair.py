"""DpRuntime against a 1+1 CP pair: two fake CPs on real grpc.aio servers, in-memory ports.

The fake CPs only record what the DP sends and send what a test tells them to (plus, while
``beating``, a CpHeartbeat every 50 ms). Every wait is a condition with a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest

from data_plane.adapters.runtime import NO_ACTIVE_CP_MS, DpRuntime
from data_plane.adapters.services import DpMetrics
from data_plane.io.memory import MemoryPort
from data_plane.worker import CLAIM_MAGIC, ETHERTYPE_CLAIM
from tests.unit.test_fastpath import CORE_IP, CORE_MAC, GROUP1, GROUP2, make_worker, rule
from vnf.adapters import grpc_server
from vnf.api import common_pb2, convert, session_control_pb2, session_control_pb2_grpc
from vnf.config import DpConfig, Endpoint
from vnf.model.addresses import mac_to_str
from vnf.model.group import SubscriberGroup

pytestmark = pytest.mark.component

DETECT_S = 0.25
CP_BEAT_S = 0.05
CONST = {"worker": "dp-test", "site": "site1"}
PADI = bytes.fromhex(
    next(
        line
        for line in (pathlib.Path(__file__).parent.parent / "data" / "padi.hex")
        .read_text()
        .splitlines()
        if line and not line.startswith("#")
    )
)

CpMessage = session_control_pb2.CpMessage
DpMessage = session_control_pb2.DpMessage


# ---- the fake CPs -------------------------------------------------------------------------------
@dataclass
class FakeStream:
    received: list[tuple[float, DpMessage]] = field(default_factory=list)
    queue: asyncio.Queue[CpMessage | None] = field(default_factory=asyncio.Queue)
    closed_at: float | None = None

    def of(self, kind: str) -> list[Any]:
        return [getattr(m, kind) for _, m in self.received if m.WhichOneof("body") == kind]


class FakeCp(session_control_pb2_grpc.SessionControlServicer):
    def __init__(self, name: str, epoch: int) -> None:
        self.name = name
        self.epoch = epoch
        self.streams: list[FakeStream] = []
        self.beating = False
        self.beats_sent = 0

    @property
    def stream(self) -> FakeStream:
        return self.streams[-1]

    def send(self, epoch: int, **body: Any) -> None:
        self.stream.queue.put_nowait(CpMessage(epoch=epoch, **body))

    def assign(
        self,
        epoch: int,
        groups: Iterable[SubscriberGroup],
        prepare: Iterable[SubscriberGroup] = (),
        **options: int,
    ) -> None:
        pbs = [convert.group_to_pb(g) for g in groups]
        for g in prepare:
            pb = convert.group_to_pb(g)
            pb.prepare_only = True
            pbs.append(pb)
        assignment = session_control_pb2.Assignment(
            role=session_control_pb2.DP_ROLE_ACTIVE, groups=pbs, cp=self.name, **options
        )
        self.send(epoch, assign=assignment)

    def rules(self, epoch: int, batch_id: int, *rules: Any) -> None:
        batch = session_control_pb2.RuleBatch(
            batch_id=batch_id, rules=[convert.rule_to_pb(r) for r in rules]
        )
        self.send(epoch, rules=batch)

    def close(self) -> None:
        """End the current stream normally (the servicer returns)."""
        self.stream.queue.put_nowait(None)

    def heartbeats(self, stream: int = -1) -> list[session_control_pb2.Heartbeat]:
        return self.streams[stream].of("heartbeat")

    def acks(self, stream: int = -1) -> list[session_control_pb2.RuleAck]:
        return self.streams[stream].of("ack")

    async def Connect(  # noqa: N802
        self, request_iterator: AsyncIterator[DpMessage], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[CpMessage]:
        stream = FakeStream()
        self.streams.append(stream)
        reader = asyncio.create_task(self._read(stream, request_iterator))
        try:
            while (msg := await stream.queue.get()) is not None:
                yield msg
        finally:
            stream.closed_at = time.monotonic()
            reader.cancel()

    async def _read(self, stream: FakeStream, requests: AsyncIterator[DpMessage]) -> None:
        with contextlib.suppress(grpc.aio.AioRpcError):
            async for msg in requests:
                stream.received.append((time.monotonic(), msg))

    async def beat(self) -> None:
        role = session_control_pb2.CP_ROLE_ACTIVE
        while True:
            if self.beating and self.streams and self.stream.closed_at is None:
                heartbeat = session_control_pb2.CpHeartbeat(role=role, cp=self.name)
                self.send(self.epoch, heartbeat=heartbeat)
                self.beats_sent += 1
            await asyncio.sleep(CP_BEAT_S)


@dataclass
class Pair:
    dp: DpRuntime
    a: FakeCp
    b: FakeCp
    access: MemoryPort
    core: MemoryPort
    metrics: DpMetrics

    def sample(self, name: str, **labels: str) -> float | None:
        return self.metrics.registry.get_sample_value(name, {**CONST, **labels})


async def until(cond: Callable[[], object], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


@contextlib.asynccontextmanager
async def pair() -> AsyncIterator[Pair]:
    a, b = FakeCp("cp-a", 1), FakeCp("cp-b", 2)
    servers = []
    for cp in (a, b):
        server = grpc_server.Server(
            "127.0.0.1:0",
            [
                (
                    session_control_pb2_grpc.add_SessionControlServicer_to_server,
                    cp,
                    "vnf.v1.SessionControl",
                )
            ],
        )
        await server.start()
        servers.append(server)
    config = DpConfig(
        name="dp-test",
        lab="test",
        site="site1",
        netns="",
        endpoint=Endpoint("127.0.0.1"),
        role="standby",
        log_path="",
        access_ifname="access",
        core_ifname="core",
        access_mac="02:00:00:00:00:a1",
        core_mac=mac_to_str(CORE_MAC),
        core_ip=CORE_IP,
        core_prefix_len=24,
        core_gateway="198.18.0.1",
        cp_addresses=tuple(f"127.0.0.1:{s.port}" for s in servers),
        detect_s=DETECT_S,
    )
    access, core = MemoryPort("access"), MemoryPort("core")
    dp = DpRuntime(config, make_worker(()), access, core)
    dp.start_io()
    tasks = [
        asyncio.create_task(dp.cp_loop()),
        asyncio.create_task(dp.periodic()),
        asyncio.create_task(a.beat()),
        asyncio.create_task(b.beat()),
    ]
    try:
        await until(lambda: a.streams and b.streams, "both streams")
        yield Pair(dp, a, b, access, core, DpMetrics(dp))
    finally:
        dp.stop_io()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for server in servers:
            await server.stop(0.1)
        access.close()
        core.close()


def run(scenario: Callable[[Pair], Awaitable[None]]) -> None:
    async def main() -> None:
        async with pair() as p:
            await scenario(p)

    asyncio.run(main())


def claim(group: SubscriberGroup) -> bytes:
    return (
        b"\xff" * 6
        + group.virtual_mac
        + ETHERTYPE_CLAIM.to_bytes(2, "big")
        + CLAIM_MAGIC
        + group.group_id.to_bytes(4, "big")
    )


async def beat(p: Pair, *cps: FakeCp) -> None:
    """Start the CpHeartbeats of ``cps`` and wait until the DP hears them."""
    links = [p.dp.links[0 if cp is p.a else 1] for cp in cps]
    for cp in cps:
        cp.beating = True
    await until(lambda: all(link.heartbeating for link in links), "CP heartbeats heard")


async def follow(p: Pair, cp: FakeCp, epoch: int, **options: int) -> None:
    cp.assign(epoch, [GROUP1], (), **options)
    await until(lambda: p.dp.active_cp == cp.name and p.dp.epoch == epoch, f"following {cp.name}")


# ---- streams ------------------------------------------------------------------------------------
def test_both_cps_get_hello_then_heartbeats() -> None:
    async def scenario(p: Pair) -> None:
        await until(lambda: min(len(p.a.heartbeats()), len(p.b.heartbeats())) >= 3, "heartbeats")
        for cp in (p.a, p.b):
            first = cp.stream.received[0][1]
            assert first.WhichOneof("body") == "hello"
            assert first.hello.dp_id == "dp-test" and first.hello.highest_epoch == 0
            assert list(first.hello.groups) == []
            for hb in cp.heartbeats():
                assert (hb.highest_epoch, hb.active_cp) == (0, "")
                assert hb.active_silent_ms == NO_ACTIVE_CP_MS
        assert not p.dp.connected
        assert len(p.a.streams) == len(p.b.streams) == 1

    run(scenario)


def test_follows_the_newest_epoch_and_fences_the_other_cp() -> None:
    async def scenario(p: Pair) -> None:
        dp, a, b = p.dp, p.a, p.b
        await beat(p, a, b)
        await follow(p, a, 3)
        await until(
            lambda: any(h.active_cp == "cp-a" and h.highest_epoch == 3 for h in b.heartbeats()),
            "witness report naming cp-a to cp-b",
        )
        a.rules(3, 1, rule(30, 3))
        await until(lambda: a.acks(), "ack to cp-a")
        assert [(r.session_key, r.ok) for r in a.acks()[0].results] == [(30, True)]

        # The standby's rules and frames are refused, even at the same epoch.
        b.rules(3, 2, rule(31, 4))
        b.send(3, transmit=common_pb2.FrameBatch(frames=[common_pb2.Frame(data=b"x" * 60)]))
        await until(lambda: dp.counters["not_from_active"] == 2, "refusals from cp-b")
        assert b.acks() == [] and p.access.take_sent() == [claim(GROUP1)]

        # A newer epoch from cp-b: the DP follows it; cp-a's older epoch is fenced.
        await follow(p, b, 4)
        assert dp.counters["active_cp_changes"] == 1
        a.rules(3, 3, rule(32, 5))
        a.send(3, transmit=common_pb2.FrameBatch(frames=[common_pb2.Frame(data=b"y" * 60)]))
        a.assign(3, [GROUP1, GROUP2])
        await until(lambda: dp.counters["stale_epoch_messages"] == 3, "fenced cp-a messages")
        assert dp.active_cp == "cp-b" and dp.epoch == 4 and len(dp.worker.groups) == 1

        # cp-a's heartbeats (epoch 1) still keep its stream alive, and are not "stale".
        beats = a.beats_sent
        await until(lambda: a.beats_sent >= beats + 3 * DETECT_S / CP_BEAT_S, "cp-a beating")
        assert len(a.streams) == 1 and dp.counters["cp_silent"] == 0
        assert dp.counters["stale_epoch_messages"] == 3

        # Only the active CP's frames go out, and punts and acks go only to it.
        frame = b"\x02" * 60
        b.send(4, transmit=common_pb2.FrameBatch(frames=[common_pb2.Frame(data=frame)]))
        b.rules(4, 4, rule(33, 6))
        await until(lambda: b.acks(), "ack to cp-b")
        assert p.access.take_sent() == [frame]
        p.access.inject([PADI])
        await until(lambda: b.stream.of("punts"), "punt to cp-b")
        assert [f.data for f in b.stream.of("punts")[0].frames] == [PADI]
        assert a.stream.of("punts") == [] and len(a.acks()) == 1
        await until(
            lambda: any(h.active_cp == "cp-b" and h.highest_epoch == 4 for h in a.heartbeats()),
            "witness report naming cp-b to cp-a",
        )
        assert p.sample("vnf_dp_active_cp", cp="cp-b") == 1
        assert p.sample("vnf_dp_not_from_active_total") == 2
        assert p.sample("vnf_dp_active_cp_changes_total") == 1

    run(scenario)


# ---- witness reports ----------------------------------------------------------------------------
def test_silence_of_the_active_cp_grows_then_its_loss_is_reported() -> None:
    async def scenario(p: Pair) -> None:
        a, b = p.a, p.b
        await beat(p, a, b)
        await follow(p, a, 1)
        await until(lambda: len([h for h in b.heartbeats() if h.active_cp]) >= 5, "reports")
        assert all(h.active_silent_ms < 1000 * DETECT_S for h in b.heartbeats() if h.active_cp)
        seen = len(b.heartbeats())
        a.beating = False  # the stream stays open; cp-a just says nothing more
        await until(
            lambda: any(h.active_silent_ms == NO_ACTIVE_CP_MS for h in b.heartbeats()[seen:]),
            "cp-a reported lost",
        )
        reports = b.heartbeats()[seen:]
        lost = next(i for i, h in enumerate(reports) if h.active_silent_ms == NO_ACTIVE_CP_MS)
        silent = [h.active_silent_ms for h in reports[:lost]]
        assert all(h.active_cp == "cp-a" for h in reports[:lost])
        assert silent == sorted(silent) and silent[-1] >= 1000 * DETECT_S / 2
        assert reports[lost].active_cp == "" and reports[lost].highest_epoch == 1
        assert p.dp.counters["cp_silent"] == 1

    run(scenario)


def test_a_lost_stream_is_reported_to_the_other_cp_at_once() -> None:
    async def scenario(p: Pair) -> None:
        a, b = p.a, p.b
        # Regular heartbeats a minute apart: only the extra one can arrive in time.
        await follow(p, a, 1, heartbeat_interval_ms=60_000)
        await until(lambda: any(h.active_cp == "cp-a" for h in b.heartbeats()), "report")
        seen = len(b.heartbeats())
        a.close()
        await until(lambda: len(b.heartbeats()) > seen, "extra heartbeat to cp-b", timeout=1.0)
        extra = b.heartbeats()[seen]
        assert (extra.active_cp, extra.active_silent_ms) == ("", NO_ACTIVE_CP_MS)
        assert not p.dp.connected and len(b.streams) == 1

    run(scenario)


# ---- silence and reconnection -------------------------------------------------------------------
def test_a_silent_stream_is_cancelled_and_reconnected_with_a_new_hello() -> None:
    async def scenario(p: Pair) -> None:
        a = p.a
        await beat(p, a)
        await follow(p, a, 2)
        a.rules(2, 1, rule(30, 3))
        await until(lambda: a.acks(), "ack")
        a.beating = False
        stopped = time.monotonic()
        await until(lambda: len(a.streams) == 2 and a.stream.received, "a second stream")
        closed_at = a.streams[0].closed_at
        assert closed_at is not None and closed_at - stopped >= DETECT_S - 2 * CP_BEAT_S
        hello = a.stream.received[0][1]
        assert hello.WhichOneof("body") == "hello"
        assert hello.hello.highest_epoch == 2 and list(hello.hello.groups) == [1]
        assert hello.hello.installed_sessions == 1
        assert p.dp.counters["cp_silent"] == 1
        assert p.dp.worker.session_count == 1  # headless: still forwarding
        assert len(p.b.streams) == 1  # the other stream is left alone

    run(scenario)


def test_a_cp_that_never_sends_heartbeats_is_not_called_silent() -> None:
    async def scenario(p: Pair) -> None:
        a = p.a
        await follow(p, a, 1)
        # Twenty 50 ms heartbeat intervals: four times the detection time.
        await until(lambda: len([h for h in a.heartbeats() if h.active_cp]) >= 20, "time")
        assert len(a.streams) == 1 and p.dp.counters["cp_silent"] == 0 and p.dp.connected

    run(scenario)


# ---- headless -----------------------------------------------------------------------------------
def test_headless_timeout_flushes_and_a_new_assignment_restores() -> None:
    async def scenario(p: Pair) -> None:
        dp, a = p.dp, p.a
        await follow(p, a, 1, headless_timeout_ms=400)
        a.rules(1, 1, rule(30, 3))
        await until(lambda: a.acks(), "ack")
        assert p.access.take_sent() == [claim(GROUP1)]
        a.close()
        lost = time.monotonic()
        await until(lambda: not dp.connected, "headless")
        assert dp.worker.session_count == 1 and p.sample("vnf_dp_headless") == 1
        assert p.sample("vnf_dp_active_cp", cp="") == 0
        await until(lambda: dp.counters["headless_flushes"] == 1, "flush")
        assert time.monotonic() - lost >= 0.4
        assert dp.worker.session_count == 0 and len(dp.worker.groups) == 0
        headless_s = p.sample("vnf_dp_headless_seconds")
        assert headless_s is not None and headless_s >= 0.4

        await until(lambda: len(a.streams) == 2 and a.stream.received, "reconnected")
        assert a.stream.received[0][1].hello.highest_epoch == 1
        await follow(p, a, 1)
        await until(lambda: len(dp.worker.groups) == 1, "group restored")
        assert p.access.take_sent() == [claim(GROUP1)]
        assert dp.counters["headless_flushes"] == 1 and p.sample("vnf_dp_headless") == 0
        assert p.sample("vnf_dp_headless_flushes_total") == 1
        assert p.sample("vnf_dp_active_cp", cp="cp-a") == 1

    run(scenario)


# ---- make-before-break claims -------------------------------------------------------------------
def test_prepare_only_groups_take_rules_without_a_claim_and_are_claimed_once() -> None:
    async def scenario(p: Pair) -> None:
        dp, a = p.dp, p.a
        a.assign(1, [GROUP1], prepare=[GROUP2])
        await until(lambda: len(dp.worker.groups) == 2, "two groups installed")
        assert p.access.take_sent() == [claim(GROUP1)]
        assert len(p.core.take_sent()) == 1  # one announcement
        a.rules(1, 1, rule(40, 7, group=GROUP2))
        await until(lambda: a.acks(), "ack")
        assert [r.ok for r in a.acks()[0].results] == [True]

        a.assign(1, [GROUP1, GROUP2])  # the claim of the prepared group
        a.rules(1, 2)
        await until(lambda: len(a.acks()) == 2, "second ack")
        assert p.access.take_sent() == [claim(GROUP2)]
        assert len(p.core.take_sent()) == 1
        assert dp.worker.session_count == 1

        a.assign(1, [GROUP1, GROUP2])  # nothing new: nothing claimed
        a.rules(1, 3)
        await until(lambda: len(a.acks()) == 3, "third ack")
        assert p.access.take_sent() == [] and p.core.take_sent() == []

    run(scenario)


def test_claim_frames_can_be_limited_to_some_groups() -> None:
    worker = make_worker((GROUP1, GROUP2))
    assert worker.claim_frames() == [claim(GROUP1), claim(GROUP2)]
    assert worker.claim_frames({2}) == [claim(GROUP2)]
    assert worker.claim_frames([]) == []
