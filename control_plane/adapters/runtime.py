"""Glue between the pure :class:`ControlPlane` and the outside world (asyncio + gRPC).

Every input (a DP message, a management call, a timer) is handed to the core, then the
core's outbox is flushed once per event-loop iteration: everything produced while handling
one burst of input leaves as one message per DP. That is the CPRi/SCi batching.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import grpc

from control_plane.adapters.metrics import CpMetrics
from control_plane.adapters.store import AccountingWriter, Store
from control_plane.service import ControlPlane, DpRole
from control_plane.setup_stats import SetupStats
from vnf.adapters import grpc_server
from vnf.adapters.process import DeadlineTimer
from vnf.api import common_pb2, convert, routing_pb2, routing_pb2_grpc, session_control_pb2
from vnf.model.accounting import AccountingRecord, RecordType
from vnf.model.addresses import int_to_ip
from vnf.model.session import SessionRule

log = logging.getLogger("cp")

_ROLE = {
    DpRole.ACTIVE: session_control_pb2.DP_ROLE_ACTIVE,
    DpRole.STANDBY: session_control_pb2.DP_ROLE_STANDBY,
}


class CpRuntime:
    def __init__(
        self,
        core: ControlPlane,
        store: Store,
        writer_path: str,
        epoch: int,
        role: str,
        router_address: str,
    ) -> None:
        self.core = core
        self.store = store
        self.epoch = epoch
        self.role = role
        self.router_address = router_address
        self.started = time.monotonic()
        self.loop = asyncio.get_running_loop()
        self.streams: dict[str, asyncio.Queue[session_control_pb2.CpMessage | None]] = {}
        self.setup = SetupStats()
        self.metrics = CpMetrics(core, core.config.name, role, epoch)
        self.writer = AccountingWriter(writer_path, self._committed_threadsafe)
        self._flush_scheduled = False
        self.timer = DeadlineTimer(self.loop, self._on_timer)
        self._routes_wanted = asyncio.Event()
        self._batch_id = 0
        self._drained = asyncio.Event()
        self.heartbeat_interval_ms = int(core.config.heartbeat_interval_s * 1000)
        self.usage_interval_ms = int(core.config.usage_interval_s * 1000)
        self.route_task = asyncio.create_task(self._advertise_routes(), name="routes")

    # ------------------------------------------------------------------ flushing

    def request_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        self._flush_scheduled = False
        core = self.core
        for dp, assignment in core.assignments.items():
            msg = session_control_pb2.CpMessage(
                epoch=self.epoch,
                assign=session_control_pb2.Assignment(
                    role=_ROLE[assignment.role],
                    groups=[convert.group_to_pb(g) for g in assignment.groups],
                    core_gateway=assignment.core_gateway,
                    usage_interval_ms=self.usage_interval_ms,
                    heartbeat_interval_ms=self.heartbeat_interval_ms,
                ),
            )
            self._put(dp, msg)
        core.assignments.clear()
        for dp, rules in core.full_sync.items():
            self._put(dp, self._rule_batch(rules, replace_all=True))
        core.full_sync.clear()
        for dp, rules in core.rules.items():
            if rules:
                self._put(dp, self._rule_batch(rules, replace_all=False))
        core.rules.clear()
        for dp, frames in core.drain_tx().items():
            batch = common_pb2.FrameBatch(
                frames=[common_pb2.Frame(port=common_pb2.PORT_ACCESS, data=f) for f in frames]
            )
            self._put(dp, session_control_pb2.CpMessage(epoch=self.epoch, transmit=batch))
        for pending in core.starts:
            self.setup.started(pending.record.acct_session_id, pending.padi_mono)
        core.starts.clear()
        for record in core.accounting:
            self.writer.write(record)
        core.accounting.clear()
        if core.routes_changed:
            core.routes_changed = False
            self._routes_wanted.set()
        if not core.sessions:
            self._drained.set()
        else:
            self._drained.clear()
        self.timer.arm(core.next_deadline())

    def _rule_batch(
        self, rules: list[SessionRule], replace_all: bool
    ) -> session_control_pb2.CpMessage:
        self._batch_id += 1
        return session_control_pb2.CpMessage(
            epoch=self.epoch,
            rules=session_control_pb2.RuleBatch(
                batch_id=self._batch_id,
                rules=[convert.rule_to_pb(r) for r in rules],
                replace_all=replace_all,
            ),
        )

    def _put(self, dp: str, msg: session_control_pb2.CpMessage) -> None:
        queue = self.streams.get(dp)
        if queue is not None:
            queue.put_nowait(msg)

    # ------------------------------------------------------------------ timers

    def _on_timer(self) -> None:
        self.core.handle_timers(time.monotonic())
        self.flush()

    # ------------------------------------------------------------------ DP streams

    async def dp_stream(
        self,
        requests: AsyncIterator[session_control_pb2.DpMessage],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[session_control_pb2.CpMessage]:
        try:
            first = await anext(requests)
        except StopAsyncIteration:
            return
        if first.WhichOneof("body") != "hello":
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the first message must be hello")
        hello = first.hello
        dp = hello.dp_id
        if dp not in self.core.placement.dps:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown data-plane worker {dp!r}")
        old = self.streams.get(dp)
        if old is not None:
            old.put_nowait(None)  # a reconnect replaces the previous stream
        queue: asyncio.Queue[session_control_pb2.CpMessage | None] = asyncio.Queue()
        self.streams[dp] = queue
        log.info("dp connected", extra={"fields": {"dp": dp, "site": hello.site}})
        self.core.dp_connected(dp, hello.site, time.monotonic())
        self.flush()
        reader = asyncio.create_task(self._read(dp, requests), name=f"read-{dp}")
        try:
            while True:
                msg = await queue.get()
                if msg is None:
                    break
                yield msg
                if reader.done():
                    break
        finally:
            reader.cancel()
            if self.streams.get(dp) is queue:
                del self.streams[dp]
                self.core.dp_disconnected(dp, time.monotonic())
                self.flush()
                log.warning("dp disconnected", extra={"fields": {"dp": dp}})

    async def _read(self, dp: str, requests: AsyncIterator[session_control_pb2.DpMessage]) -> None:
        core = self.core
        try:
            async for msg in requests:
                now = time.monotonic()
                kind = msg.WhichOneof("body")
                if kind == "punts":
                    for frame in msg.punts.frames:
                        core.punt(dp, frame.data, frame.rx_ns / 1e9 if frame.rx_ns else now, now)
                elif kind == "ack":
                    core.rule_ack(
                        dp,
                        [convert.result_from_pb(r) for r in msg.ack.results],
                        [convert.usage_from_pb(u) for u in msg.ack.final_usage],
                        now,
                    )
                elif kind == "usage":
                    core.usage(convert.usage_from_pb(u) for u in msg.usage.reports)
                elif kind == "heartbeat":
                    core.dp_heartbeat(dp, msg.heartbeat.sessions, now)
                self.request_flush()
        except (grpc.aio.AioRpcError, asyncio.CancelledError):
            pass
        finally:
            queue = self.streams.get(dp)
            if queue is not None:
                queue.put_nowait(None)

    # ------------------------------------------------------------------ accounting commits

    def _committed_threadsafe(self, records: list[AccountingRecord], mono: float) -> None:
        self.loop.call_soon_threadsafe(self._committed, records, mono)

    def _committed(self, records: list[AccountingRecord], mono: float) -> None:
        written = self.metrics.accounting_written
        for record in records:
            kind = str(record.record_type)
            written[kind] = written.get(kind, 0) + 1
            if record.record_type is RecordType.START:
                setup = self.setup.committed(record.acct_session_id, mono)
                if setup is not None:
                    self.metrics.setup_seconds.observe(setup)

    # ------------------------------------------------------------------ routes

    async def _advertise_routes(self) -> None:
        """Push the full set of aggregates to the core router whenever placement changes."""
        if not self.router_address:
            return
        delay = 0.1
        async with grpc_server.channel(self.router_address) as channel:
            stub = routing_pb2_grpc.CoreRoutingStub(channel)
            while True:
                await self._routes_wanted.wait()
                self._routes_wanted.clear()
                routes = [
                    routing_pb2.Route(prefix=prefix, next_hop=str(int_to_ip(hop)), group=group)
                    for prefix, hop, group in self.core.placement.routes()
                ]
                request = routing_pb2.RouteSet(
                    speaker=self.core.config.name, epoch=self.epoch, routes=routes
                )
                try:
                    reply = await stub.SetRoutes(request, timeout=5.0)
                    delay = 0.1
                    log.info(
                        "routes advertised",
                        extra={"fields": {"routes": len(routes), "accepted": reply.accepted}},
                    )
                except grpc.aio.AioRpcError as exc:
                    log.warning("route advertisement failed: %s", exc.code().name)
                    self._routes_wanted.set()
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 2.0)

    # ------------------------------------------------------------------ shutdown

    async def shutdown(self, deadline_s: float = 3.0) -> None:
        """Terminate every session, wait for the DPs' final counters, make accounting durable."""
        now = time.monotonic()
        count = self.core.shutdown(now)
        self.flush()
        if self.streams:
            try:
                await asyncio.wait_for(self._drained.wait(), deadline_s)
            except TimeoutError:
                log.warning("shutdown: %d sessions without final counters", len(self.core.sessions))
        self.core.force_close_all(time.monotonic())
        self.flush()
        for queue in list(self.streams.values()):
            queue.put_nowait(None)
        self.route_task.cancel()
        await asyncio.get_running_loop().run_in_executor(None, self.writer.close)
        log.info("shut down", extra={"fields": {"sessions_terminated": count}})
