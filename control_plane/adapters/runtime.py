"""Glue between the pure :class:`ControlPlane` and the outside world (asyncio + gRPC).

Every input (a DP message, a management call, a timer) is handed to the core, then the
core's outbox is flushed once per event-loop iteration: everything produced while handling
one burst of input leaves as one message per DP. That is the CPRi/SCi batching.

The 1+1 pair (docs/redundancy.md): a CP starts as standby. The standby follows the active's
replication stream and promotes itself when a majority of the lab's DPs report that the
active has been silent toward them for the detection time (the DPs are the witnesses), or
at once on a planned handover. The active demotes itself as soon as anyone shows it a newer
epoch: a DP's heartbeat, or a standby's hello. A CP without a peer is active from the start.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import grpc

from control_plane.adapters import replication
from control_plane.adapters.metrics import CpMetrics
from control_plane.adapters.store import AccountingWriter, Store
from control_plane.replica import (
    AccountingWritten,
    Change,
    ModemPut,
    ModemRemoved,
    SubscriberPut,
    SubscriberRemoved,
)
from control_plane.service import ControlPlane, DpRole
from control_plane.setup_stats import SetupStats
from vnf.adapters import grpc_server
from vnf.adapters.process import DeadlineTimer
from vnf.api import (
    common_pb2,
    convert,
    replication_pb2,
    routing_pb2,
    routing_pb2_grpc,
    session_control_pb2,
)
from vnf.model.accounting import AccountingRecord, RecordType
from vnf.model.addresses import int_to_ip
from vnf.model.session import SessionRule

log = logging.getLogger("cp")

_ROLE = {
    DpRole.ACTIVE: session_control_pb2.DP_ROLE_ACTIVE,
    DpRole.STANDBY: session_control_pb2.DP_ROLE_STANDBY,
}
INITIAL_ELECTION_HOLD_S = 1.0  # cp-b lets cp-a win the first election of a fresh pair
NO_ACTIVE_MS = 0xFFFFFFFF
SETTLE_DELAY_S = 0.005  # a hot-standby claim goes out first; the confirming full set after


@dataclass(slots=True)
class Witness:
    """The last heartbeat a DP sent us, as a vote on the active's liveness."""

    received: float
    highest_epoch: int
    active_cp: str
    active_silent_ms: int


class CpRuntime:
    def __init__(
        self,
        make_core: Callable[[bool], ControlPlane],
        store: Store,
        writer_path: str,
        router_address: str,
    ) -> None:
        self.make_core = make_core
        self.store = store
        self.router_address = router_address
        self.started = time.monotonic()
        self.loop = asyncio.get_running_loop()
        self.core = make_core(False)
        self.config = self.core.config
        self.epoch = store.epoch()
        self.role = "standby"
        self.streams: dict[str, asyncio.Queue[session_control_pb2.CpMessage | None]] = {}
        self.last_rx: dict[str, float] = {}  # dp → when its stream last delivered anything
        self.witnesses: dict[str, Witness] = {}
        self.setup = SetupStats()
        self.metrics = CpMetrics(self)
        self.writer = AccountingWriter(writer_path, self._committed_threadsafe)
        self._flush_scheduled = False
        self._settle_scheduled = False
        self.timer = DeadlineTimer(self.loop, self._on_timer)
        self._routes_wanted = asyncio.Event()
        self._batch_id = 0
        self._drained = asyncio.Event()
        self.heartbeat_interval_ms = max(1, int(self.config.heartbeat_interval_s * 1000))
        self.usage_interval_ms = int(self.config.usage_interval_s * 1000)
        self.route_task: asyncio.Task[None] | None = None
        self.follow_task: asyncio.Task[None] | None = None
        # Replication: the subscribed standby (active side) / the active (standby side).
        self.standby_queue: replication.Outgoing | None = None
        self.standby_name = ""
        self.standby_seq = 0
        self._standby_ready = False
        self.peer_connected = False
        self.peer_last_heard = 0.0
        self.peer_epoch = 0
        self.election_since: float | None = None
        self.isolated_since: float | None = None
        self.last_sent_to_standby = 0.0
        self._move_waiters: dict[int, asyncio.Future[tuple[object, str]]] = {}
        self.periodic_task = asyncio.create_task(self._periodic(), name="cp-periodic")
        if not self.config.peer:
            self._promote("cp_start", "", 0.0)
        else:
            self.follow_task = asyncio.create_task(
                replication.follow(self, self.config.peer), name="replication"
            )

    # ------------------------------------------------------------------ flushing

    def request_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        self._flush_scheduled = False
        core = self.core
        if core.changes:
            changes, core.changes = core.changes, []
            self._replicate(changes)
        for dp, assignment in core.assignments.items():
            groups = []
            for g in assignment.groups:
                pb = convert.group_to_pb(g)
                pb.prepare_only = g.group_id in assignment.prepared
                groups.append(pb)
            msg = session_control_pb2.CpMessage(
                epoch=self.epoch,
                assign=session_control_pb2.Assignment(
                    role=_ROLE[assignment.role],
                    groups=groups,
                    core_gateway=assignment.core_gateway,
                    usage_interval_ms=self.usage_interval_ms,
                    heartbeat_interval_ms=self.heartbeat_interval_ms,
                    headless_timeout_ms=int(self.config.headless_timeout_s * 1000),
                    cp=self.config.name,
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
        for group_id, takeover, error in core.moves_done:
            waiter = self._move_waiters.pop(group_id, None)
            if waiter is not None and not waiter.done():
                waiter.set_result((takeover, error))
        core.moves_done.clear()
        if core.routes_changed:
            core.routes_changed = False
            self._routes_wanted.set()
        if not core.sessions:
            self._drained.set()
        else:
            self._drained.clear()
        self.timer.arm(core.next_deadline())
        if core.unsettled and not self._settle_scheduled:
            # A hot-standby failover's claim is on its way: the heavy rest a moment later,
            # so converting it does not hold the claim back.
            self._settle_scheduled = True
            self.loop.call_later(SETTLE_DELAY_S, self._settle)

    def _settle(self) -> None:
        self._settle_scheduled = False
        self.core.settle()
        self.flush()

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

    async def _periodic(self) -> None:
        """Heartbeats to every DP (and to the standby when quiet), DP silence detection,
        the standby's election, orphaned groups' expiry."""
        interval = self.config.heartbeat_interval_s
        while True:
            now = time.monotonic()
            beat = session_control_pb2.CpMessage(
                epoch=self.epoch,
                heartbeat=session_control_pb2.CpHeartbeat(
                    role=session_control_pb2.CP_ROLE_ACTIVE
                    if self.role == "active"
                    else session_control_pb2.CP_ROLE_STANDBY,
                    sent_ns=time.monotonic_ns(),
                    cp=self.config.name,
                ),
            )
            for dp, queue in list(self.streams.items()):
                if now - self.last_rx.get(dp, now) > self.config.detect_s:
                    log.warning("dp silent", extra={"fields": {"dp": dp}})
                    queue.put_nowait(None)  # the stream ends: dp_stream's cleanup fails it
                else:
                    queue.put_nowait(beat)
            if self.role == "active":
                if self.standby_queue is not None and now - self.last_sent_to_standby >= interval:
                    self._to_standby(
                        replication_pb2.ActiveMessage(
                            epoch=self.epoch, cp=self.config.name, heartbeat_ns=time.monotonic_ns()
                        )
                    )
                self.core.tick(now)
                self.request_flush()
                self._step_down_if_isolated(now)
            else:
                self._elect(now)
            await asyncio.sleep(interval)

    # ------------------------------------------------------------------ the pair: roles

    def known_epoch(self) -> int:
        """The newest epoch this CP knows of: its own, the replica's, the DPs' reports."""
        seen = [self.epoch, self.core.replica.epoch, self.peer_epoch]
        seen.extend(w.highest_epoch for w in self.witnesses.values())
        return max(seen)

    def _next_epoch(self) -> int:
        """Newer than any known; its parity is this CP's index, so the two CPs of a pair
        never hold the same epoch even if both promote at once."""
        epoch = self.known_epoch() + 1
        if (epoch - self.config.index) % 2:
            epoch += 1
        return epoch

    def _elect(self, now: float) -> None:
        """Standby: promote when a majority of the lab's DPs (the witnesses) say the active
        has been silent toward them for the detection time."""
        if self.role != "standby":
            return
        detect_ms = self.config.detect_s * 1000.0
        fresh = [w for w in self.witnesses.values() if now - w.received <= 2 * self.config.detect_s]
        lost = [w for w in fresh if w.highest_epoch > 0 and w.active_silent_ms >= detect_ms]
        never = [w for w in fresh if w.highest_epoch == 0 and not w.active_cp]
        quorum = len(self.core.placement.dps) // 2 + 1
        peer_alive = self.peer_connected and now - self.peer_last_heard <= self.config.detect_s
        if len(lost) >= quorum:
            silent = min(w.active_silent_ms for w in lost) / 1000.0
            last_seen = max(now - silent, self.peer_last_heard if self.peer_last_heard else 0.0)
            self._promote("cp_failover", self.config.peer_name, (now - last_seen) * 1000.0)
            return
        if len(lost) + len(never) >= quorum and not peer_alive:
            # No CP is active (a fresh pair, or the active gave up): cp-a goes first.
            if self.config.index == 0:
                self._promote("cp_start", "", 0.0)
                return
            if self.election_since is None:
                self.election_since = now
            elif now - self.election_since >= INITIAL_ELECTION_HOLD_S:
                self._promote("cp_start", "", 0.0)
            return
        self.election_since = None

    def _step_down_if_isolated(self, now: float) -> None:
        """An active of a pair that hears neither a DP nor its peer for twice the detection
        time steps down: the standby may have taken over, and an isolated active must not
        end sessions (orphaned groups) that live on elsewhere."""
        if not self.config.peer:
            return
        limit = 2 * self.config.detect_s
        hears_dp = any(now - t <= limit for t in self.last_rx.values())
        hears_peer = self.standby_queue is not None and now - self.peer_last_heard <= limit
        if hears_dp or hears_peer:
            self.isolated_since = None
        elif self.isolated_since is None:
            self.isolated_since = now
        elif now - self.isolated_since >= limit:
            self.demote("isolated: no DP and no peer")

    def take_over(self, from_cp: str, kind: str) -> None:
        """Planned handover from the active: promote at once."""
        self._promote(kind, from_cp, 0.0)

    def _promote(self, kind: str, from_cp: str, detection_ms: float) -> None:
        if self.role == "active":
            return
        epoch = self._next_epoch()
        self.store.set_epoch(epoch)
        self.epoch = epoch
        self.role = "active"
        self.election_since = None
        self.peer_connected = False
        now = time.monotonic()
        self.core.promote(epoch, now, kind, from_cp, detection_ms)
        if self.follow_task is not None:
            self.follow_task.cancel()
            self.follow_task = None
        self.route_task = asyncio.create_task(self._advertise_routes(), name="routes")
        self.metrics.takeovers[kind] = self.metrics.takeovers.get(kind, 0) + 1
        log.warning(
            "active",
            extra={
                "fields": {
                    "kind": kind,
                    "epoch": epoch,
                    "sessions": len(self.core.sessions),
                    "detection_ms": round(detection_ms, 1),
                }
            },
        )
        self.flush()

    def demote(self, reason: str) -> None:
        """Someone showed us a newer epoch: stop driving anything, at once and silently
        (no PADT, no rule removal: the sessions are the new active's), become standby."""
        if self.role != "active" or not self.config.peer:
            return
        log.warning("demoted", extra={"fields": {"reason": reason, "epoch": self.epoch}})
        self.role = "standby"
        self.metrics.takeovers["demoted"] = self.metrics.takeovers.get("demoted", 0) + 1
        if self.route_task is not None:
            self.route_task.cancel()
            self.route_task = None
        if self.standby_queue is not None:
            self.standby_queue.put_nowait(None)
        old = self.core
        self.core = self.make_core(False)
        self.core.takeovers.extend(old.takeovers)
        self.core.replica = old.replica  # our last knowledge, until a snapshot replaces it
        self.isolated_since = None
        now = time.monotonic()
        for dp in self.streams:
            info = old.placement.dps[dp]
            self.core.dp_connected(dp, info.site, now, info.max_groups)
        self.timer.arm(None)
        self.follow_task = asyncio.create_task(
            replication.follow(self, self.config.peer), name="replication"
        )

    # ------------------------------------------------------------------ the pair: replication

    def attach_standby(self, name: str) -> replication.Outgoing:
        """Active: a standby subscribed. It gets the whole replica first."""
        if self.standby_queue is not None:
            self.standby_queue.put_nowait(None)
        queue: replication.Outgoing = asyncio.Queue()
        self.standby_queue = queue
        self.standby_name = name
        self._standby_ready = False
        replica = self.core.replica
        self.core.changes.clear()  # they are in the snapshot
        self._to_standby(
            replication_pb2.ActiveMessage(
                epoch=self.epoch,
                cp=self.config.name,
                snapshot=replication.batch_to_pb(replica.seq, replica.snapshot()),
            )
        )
        self.peer_connected = True
        log.info("standby subscribed", extra={"fields": {"standby": name, "seq": replica.seq}})
        return queue

    def detach_standby(self, queue: replication.Outgoing) -> None:
        if self.standby_queue is not queue:
            return
        self.standby_queue = None
        self.peer_connected = False
        self.core.set_standby_sync(False)
        self.flush()
        log.warning("standby lost", extra={"fields": {"standby": self.standby_name}})

    def standby_acked(self, queue: replication.Outgoing, seq: int) -> None:
        if self.standby_queue is not queue or self.role != "active":
            return
        self.standby_seq = seq
        self.peer_last_heard = time.monotonic()
        if not self._standby_ready:
            self._standby_ready = True
            self.core.set_standby_sync(True)
        self.core.replication_acked(seq)
        self.request_flush()

    def _replicate(self, changes: list[Change]) -> None:
        if self.standby_queue is None or self.role != "active":
            return
        self._to_standby(
            replication_pb2.ActiveMessage(
                epoch=self.epoch,
                cp=self.config.name,
                changes=replication.batch_to_pb(self.core.replica.seq, changes),
            )
        )

    def _to_standby(self, msg: replication_pb2.ActiveMessage) -> None:
        if self.standby_queue is not None:
            self.standby_queue.put_nowait(msg)
            self.last_sent_to_standby = time.monotonic()

    def apply_replicated(self, changes: list[Change], seq: int, snapshot: bool) -> None:
        """Standby: apply a batch from the active; make its durable part durable here."""
        for change in self.core.mirror(changes, snapshot):
            if isinstance(change, AccountingWritten):
                self.writer.write(change.record)
            elif isinstance(change, SubscriberPut):
                self.store.put_subscribers([change.subscriber])
            elif isinstance(change, SubscriberRemoved):
                self.store.remove_subscribers([change.username])
            elif isinstance(change, ModemPut):
                self.store.put_modems([change.modem])
            elif isinstance(change, ModemRemoved):
                self.store.remove_modems([change.mac])
        self.core.replica.seq = seq
        if self.core.replica.epoch > self.epoch:
            self.epoch = self.core.replica.epoch
            self.store.set_epoch(self.epoch)

    def peer_heard(self, name: str, epoch: int) -> None:
        del name
        self.peer_connected = True
        self.peer_last_heard = time.monotonic()
        self.peer_epoch = max(self.peer_epoch, epoch)

    def peer_lost(self) -> None:
        self.peer_connected = False

    def replication_lag(self) -> int:
        if self.role != "active" or self.standby_queue is None:
            return 0
        return max(0, self.core.replica.seq - self.standby_seq)

    # ------------------------------------------------------------------ planned maintenance

    async def switchover(self, timeout_s: float) -> tuple[str, int, float, int]:
        """Active → standby, make-before-break: wait until the standby has every change,
        hand over, step down. Returns (new active, its epoch, duration ms, sessions)."""
        if self.role != "active":
            raise ValueError("this control plane is not the active one")
        if self.standby_queue is None or not self._standby_ready:
            raise ValueError("no standby is subscribed")
        start = time.monotonic()
        deadline = start + timeout_s
        self.flush()
        while self.standby_seq < self.core.replica.seq:
            if time.monotonic() > deadline:
                raise TimeoutError("the standby did not catch up")
            await asyncio.sleep(0.005)
        sessions = len(self.core.sessions)
        old_epoch = self.epoch
        to = self.standby_name
        self._to_standby(
            replication_pb2.ActiveMessage(
                epoch=self.epoch,
                cp=self.config.name,
                handover=replication_pb2.Handover(seq=self.core.replica.seq),
            )
        )
        await asyncio.sleep(0)  # let the handover leave before the stream closes
        self.demote(f"switchover to {to}")
        while not any(w.highest_epoch > old_epoch for w in self.witnesses.values()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{to} did not take over")
            await asyncio.sleep(0.005)
        epoch = max(w.highest_epoch for w in self.witnesses.values())
        return to, epoch, (time.monotonic() - start) * 1000.0, sessions

    async def move_group(self, group_id: int, to_dp: str, timeout_s: float) -> tuple[object, str]:
        """Make-before-break move; returns (takeover, "") or (None, why it was aborted)."""
        if self.role != "active":
            raise ValueError("this control plane is not the active one")
        waiter: asyncio.Future[tuple[object, str]] = self.loop.create_future()
        self.core.start_move(group_id, to_dp, time.monotonic())
        self._move_waiters[group_id] = waiter
        self.flush()
        return await asyncio.wait_for(waiter, timeout_s)

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
        self.last_rx[dp] = time.monotonic()
        self.witnesses.pop(dp, None)
        log.info("dp connected", extra={"fields": {"dp": dp, "site": hello.site}})
        self.core.dp_connected(dp, hello.site, time.monotonic(), hello.capabilities.max_groups)
        self.flush()
        reader = asyncio.create_task(self._read(dp, queue, requests), name=f"read-{dp}")
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
            self._stream_ended(dp, queue)

    def _stream_ended(self, dp: str, queue: asyncio.Queue[Any]) -> None:
        """The DP's stream ``queue`` ended (either direction saw it first; the second call
        finds it gone): for the active, the DP failed."""
        if self.streams.get(dp) is not queue:
            return
        del self.streams[dp]
        queue.put_nowait(None)
        self.witnesses.pop(dp, None)
        last = self.last_rx.pop(dp, time.monotonic())
        self.core.dp_disconnected(dp, time.monotonic(), last)
        self.flush()
        log.warning("dp disconnected", extra={"fields": {"dp": dp}})
        if self.role == "standby":
            self._elect(time.monotonic())

    async def _read(
        self,
        dp: str,
        queue: asyncio.Queue[Any],
        requests: AsyncIterator[session_control_pb2.DpMessage],
    ) -> None:
        try:
            async for msg in requests:
                core = self.core  # replaced on demotion
                now = time.monotonic()
                self.last_rx[dp] = now
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
                    core.usage((convert.usage_from_pb(u) for u in msg.usage.reports), dp)
                elif kind == "heartbeat":
                    hb = msg.heartbeat
                    core.dp_heartbeat(dp, hb.sessions, now)
                    self.witnesses[dp] = Witness(
                        now, hb.highest_epoch, hb.active_cp, hb.active_silent_ms
                    )
                    if hb.highest_epoch > self.epoch and self.role == "active":
                        self.demote(f"{dp} has seen epoch {hb.highest_epoch}")
                    elif self.role == "standby":
                        self._elect(now)
                self.request_flush()
        except (grpc.aio.AioRpcError, asyncio.CancelledError):
            pass
        finally:
            # The DP's side ended (a killed DP closes its socket): act now, not when the
            # response stream, which may sit on queued messages, notices.
            self._stream_ended(dp, queue)

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
        for task in (self.route_task, self.follow_task, self.periodic_task):
            if task is not None:
                task.cancel()
        self.role = "stopped"
        await asyncio.get_running_loop().run_in_executor(None, self.writer.close)
        log.info("shut down", extra={"fields": {"sessions_terminated": count}})
