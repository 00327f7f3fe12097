"""A DP worker process's control side: gRPC to the CPs, driving the forwarding thread.

Theory of operation
-------------------
The fast path runs on its own thread (:class:`~data_plane.adapters.forwarder.Forwarder`),
which owns the worker's tables. This asyncio loop runs the control streams and hands the
forwarding thread every change as a command that runs between two batches: assignments,
rule batches (in chunks of :data:`~data_plane.adapters.forwarder.RULE_CHUNK`), frames the CP
transmits, usage snapshots. Protobuf conversion and report building stay on this side, so
the control side never stalls forwarding, and a rule takes effect within a batch. Punts
arrive from the forwarding thread once per round and leave as one batch per loop iteration.

The CP is a 1+1 pair, so the DP keeps one ``SessionControl.Connect`` stream open to *every*
configured CP address at once (a :class:`CpLink` each, with its own reconnect loop). Each
stream starts with Hello and then carries a Heartbeat every heartbeat interval; the heartbeat
is also the DP's *witness report* for the standby CP's promotion decision: the newest epoch
accepted, the CP it follows, and how long that CP has been silent toward this DP.

Following and fencing (DESIGN §5):

* A CpMessage older than the newest epoch accepted is dropped and counted
  (``stale_epoch_messages``) — a frozen ex-active CP must never drive us again. Heartbeats are
  exempt: they drive nothing, and they are the liveness of every stream, the standby's too.
* An Assignment at least as new as the newest epoch makes its stream *the active stream*.
  Rules and transmit frames are accepted only from the active stream at exactly that epoch
  (``not_from_active`` otherwise); punts, usage and rule acks go only to it.
* A stream that hears nothing for ``detect_s`` is cancelled and reconnected (``cp_silent``);
  one that errors or ends reconnects too. Silence detection is armed on a stream by its
  first CpHeartbeat, so a CP that does not send them (an older CP) is not churned every
  ``detect_s``; gRPC keepalive still catches its death. Whenever a stream is lost, every other
  open stream gets one extra heartbeat at once, so the standby hears "active silent" now.
* Without an active stream the DP is headless: it keeps forwarding every installed session.
  After ``Assignment.headless_timeout_ms`` (0: never) it flushes every session and group
  (their addresses may have been handed out again); a later assignment restores it.

Make-before-break and hot standby: groups assigned ``prepare_only`` are held (their session
rules are accepted) but not served: the worker neither forwards nor punts their frames, so a
hot standby that flooded frames reach sends nothing twice. A group is claimed — one
gratuitous claim frame, plus the core announcement for the assignment — only when an
assignment newly claims it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator

import grpc

from data_plane.adapters.forwarder import RULE_CHUNK, Forwarder
from data_plane.io.base import FrameIO
from data_plane.tables import UsageColumns
from data_plane.worker import Worker
from vnf.adapters import grpc_server
from vnf.api import common_pb2, convert, session_control_pb2, session_control_pb2_grpc
from vnf.config import DpConfig
from vnf.errors import ConfigError, Overloaded
from vnf.model.addresses import ip_to_int, parse_mac
from vnf.model.session import RuleOp, SessionRule, TrafficEndpoint, Usage

log = logging.getLogger("dp")

RECONNECT_MIN_S = 0.2
RECONNECT_MAX_S = 2.0
HEARTBEAT_INTERVAL_S = 0.05
"""Until an assignment names one."""
NO_ACTIVE_CP_MS = 0xFFFF_FFFF
"""``Heartbeat.active_silent_ms`` when the DP has no active CP stream at all."""
MAX_SILENT_MS = NO_ACTIVE_CP_MS - 1

DpMessage = session_control_pb2.DpMessage
Outbox = asyncio.Queue[DpMessage | None]


class CpLink:
    """The state of one CP address's stream (the reconnect loop owns the stream itself)."""

    __slots__ = ("address", "heartbeating", "last_rx", "name", "out", "up")

    def __init__(self, address: str) -> None:
        self.address = address
        self.name = ""
        """The CP's own name (Assignment.cp / CpHeartbeat.cp); empty until it says it."""
        self.out: Outbox | None = None
        """The open stream's send queue; None while there is no stream."""
        self.up = False
        """The open stream has delivered a message."""
        self.heartbeating = False
        """The CP sends heartbeats on this stream: silence detection is armed."""
        self.last_rx = 0.0
        """Monotonic time of the last message received on the open stream."""

    @property
    def label(self) -> str:
        return self.name or self.address

    def send(self, msg: DpMessage) -> bool:
        if self.out is None:
            return False
        self.out.put_nowait(msg)
        return True


class DpRuntime:
    def __init__(self, config: DpConfig, worker: Worker, access: FrameIO, core: FrameIO) -> None:
        self.config = config
        self.worker = worker
        self.access = access
        self.core = core
        self.loop = asyncio.get_running_loop()
        self.forwarder = Forwarder(worker, access, core, self._punts_from_thread, config.cpu)
        self.epoch = 0
        self.role = config.role
        self.links = [CpLink(address) for address in config.cp_addresses]
        self.active: CpLink | None = None
        self.headless_since = time.monotonic()
        self.headless_timeout_s = 0.0
        self.flushed = False
        self._report_all = False  # send every session's counts with the next assignment
        self.counters: dict[str, int] = {
            "punts_sent": 0,
            "punts_dropped_headless": 0,
            "stale_epoch_messages": 0,
            "not_from_active": 0,
            "cp_connects": 0,
            "cp_silent": 0,
            "active_cp_changes": 0,
            "headless_flushes": 0,
            "assignments_refused": 0,
            "frames_transmitted_for_cp": 0,
            "rule_batches": 0,
        }
        self._followed = ""
        self._punts: list[common_pb2.Frame] = []
        self._flush_scheduled = False
        self.usage_interval_s = 2.0
        self.heartbeat_interval_s = HEARTBEAT_INTERVAL_S
        self.started = time.monotonic()

    # ------------------------------------------------------------------ state

    @property
    def connected(self) -> bool:
        """An active CP stream is up (not headless)."""
        return self.active is not None

    @property
    def cp_address(self) -> str:
        return self.active.address if self.active is not None else ""

    @property
    def active_cp(self) -> str:
        """The name of the CP this DP follows; empty while headless."""
        return self.active.label if self.active is not None else ""

    def headless_s(self, now: float) -> float:
        return 0.0 if self.active is not None else now - self.headless_since

    # ------------------------------------------------------------------ fast path

    def start_io(self) -> None:
        self.forwarder.start()

    def stop_io(self) -> None:
        self.forwarder.stop()

    def _punts_from_thread(self, punts: list[tuple[bytes, int]]) -> None:
        """Called on the forwarding thread: hand the round's punts to the event loop."""
        with contextlib.suppress(RuntimeError):  # the loop is closed: shutting down
            self.loop.call_soon_threadsafe(self._punt, punts)

    def _punt(self, punts: list[tuple[bytes, int]]) -> None:
        if self.active is None:
            self.counters["punts_dropped_headless"] += len(punts)
            return
        self._punts.extend(
            common_pb2.Frame(port=common_pb2.PORT_ACCESS, data=f, rx_ns=rx_ns) for f, rx_ns in punts
        )
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush_punts)

    def _flush_punts(self) -> None:
        self._flush_scheduled = False
        if not self._punts:
            return
        frames, self._punts = self._punts, []
        msg = DpMessage(punts=common_pb2.FrameBatch(frames=frames))
        if self.active is None or not self.active.send(msg):
            self.counters["punts_dropped_headless"] += len(frames)
            return
        self.counters["punts_sent"] += len(frames)

    # ------------------------------------------------------------------ periodic work

    async def periodic(self) -> None:
        """Usage reports to the active CP, the headless timeout (the forwarding thread
        keeps the next hop's ARP itself)."""
        next_usage = time.monotonic()
        while True:
            now = time.monotonic()
            if self.active is not None:
                if now >= next_usage:
                    next_usage = now + self.usage_interval_s
                    await self._report_changed_usage()
            else:
                await self._check_headless(now)
            await asyncio.sleep(min(self.heartbeat_interval_s, 0.5))

    async def _report_changed_usage(self) -> None:
        worker = self.worker
        columns = await self.forwarder.call(lambda: worker.usage_columns(changed_only=True))
        self._report_usage(columns.usages())

    def _report_usage(self, reports: list[Usage]) -> None:
        """Cumulative counters to the active CP (none while headless)."""
        if reports and self.active is not None:
            self.active.send(
                DpMessage(
                    usage=session_control_pb2.UsageBatch(
                        reports=[convert.usage_to_pb(u) for u in reports]
                    )
                )
            )

    async def _check_headless(self, now: float) -> None:
        timeout = self.headless_timeout_s
        if self.flushed or timeout <= 0 or now - self.headless_since < timeout:
            return
        # No active CP for this long: our sessions' addresses may belong to someone else by
        # now, so forwarding them could deliver one subscriber's traffic to another.
        self.flushed = True
        final = await self.forwarder.call(lambda: self.worker.assign_groups([]))
        self.counters["headless_flushes"] += 1
        log.warning(
            "headless too long: flushed every session and group",
            extra={
                "fields": {
                    "headless_s": round(now - self.headless_since, 3),
                    "sessions": len(final),
                }
            },
        )

    # ------------------------------------------------------------------ the CP streams

    async def cp_loop(self) -> None:
        """One stream per configured CP address, all at once; runs until cancelled."""
        async with asyncio.TaskGroup() as group:
            for link in self.links:
                group.create_task(self._link_loop(link), name=f"cp-{link.address}")

    async def _link_loop(self, link: CpLink) -> None:
        backoff = RECONNECT_MIN_S
        while True:
            try:
                await self._stream(link)
            except grpc.aio.AioRpcError as exc:
                log.info("cp %s unavailable: %s", link.address, exc.code().name)
            finally:
                established = self._lost(link)
            if established:
                backoff = RECONNECT_MIN_S
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, RECONNECT_MAX_S)

    async def _stream(self, link: CpLink) -> None:
        """One Connect stream, until it ends, errors (raised) or falls silent (returns)."""
        out: Outbox = asyncio.Queue()
        out.put_nowait(self._hello())
        link.out, link.up, link.heartbeating = out, False, False
        link.last_rx = time.monotonic()
        async with grpc_server.channel(link.address) as channel:
            call = session_control_pb2_grpc.SessionControlStub(channel).Connect(_drain(out))
            beat = asyncio.create_task(self._heartbeats(out), name=f"heartbeat-{link.address}")
            try:
                while True:
                    try:
                        async with asyncio.timeout(
                            self.config.detect_s if link.heartbeating else None
                        ):
                            msg = await call.read()
                    except TimeoutError:
                        self.counters["cp_silent"] += 1
                        log.warning("cp silent: reconnecting", extra={"fields": _fields(link)})
                        return
                    if msg is grpc.aio.EOF:
                        log.info("cp ended the stream", extra={"fields": _fields(link)})
                        return
                    await self._receive(link, msg)
            finally:
                beat.cancel()
                call.cancel()

    async def _heartbeats(self, out: Outbox) -> None:
        while True:
            out.put_nowait(self._heartbeat())
            await asyncio.sleep(self.heartbeat_interval_s)

    def _lost(self, link: CpLink) -> bool:
        """The stream of ``link`` is gone; returns whether it had delivered anything."""
        was_up = link.up
        if link.out is not None:
            link.out.put_nowait(None)
        link.out, link.up, link.heartbeating = None, False, False
        if link is self.active:
            self.active = None
            self.headless_since = time.monotonic()
            log.warning("lost the active cp: forwarding headless", extra={"fields": _fields(link)})
        if was_up:
            # The standby decides on the witnesses' reports: tell it now, not next tick.
            for other in self.links:
                if other is not link:
                    other.send(self._heartbeat())
        return was_up

    def _hello(self) -> DpMessage:
        cfg = self.config
        return DpMessage(
            hello=session_control_pb2.Hello(
                dp_id=cfg.name,
                site=cfg.site,
                capabilities=session_control_pb2.Capabilities(
                    access_types=["pppoe", "docsis"],
                    max_sessions=65534 * self.worker.config.max_groups,
                    max_groups=self.worker.config.max_groups,
                ),
                ports=[
                    session_control_pb2.PortInfo(
                        port=common_pb2.PORT_ACCESS,
                        ifname=cfg.access_ifname,
                        mac=parse_mac(cfg.access_mac),
                    ),
                    session_control_pb2.PortInfo(
                        port=common_pb2.PORT_CORE,
                        ifname=cfg.core_ifname,
                        mac=parse_mac(cfg.core_mac),
                    ),
                ],
                highest_epoch=self.epoch,
                installed_sessions=self.worker.session_count,
                core_ip=ip_to_int(cfg.core_ip),
                core_prefix_len=cfg.core_prefix_len,
                groups=self.claimed_groups(),
            )
        )

    def _heartbeat(self) -> DpMessage:
        active = self.active
        if active is None:
            silent_ms = NO_ACTIVE_CP_MS
        else:
            silent_ms = min(int((time.monotonic() - active.last_rx) * 1000), MAX_SILENT_MS)
        return DpMessage(
            heartbeat=session_control_pb2.Heartbeat(
                sent_ns=time.monotonic_ns(),
                sessions=self.worker.session_count,
                highest_epoch=self.epoch,
                active_cp=self.active_cp,
                active_silent_ms=silent_ms,
            )
        )

    # ------------------------------------------------------------------ CP messages

    async def _receive(self, link: CpLink, msg: session_control_pb2.CpMessage) -> None:
        link.last_rx = time.monotonic()
        if not link.up:
            link.up = True
            self.counters["cp_connects"] += 1
            log.info("cp stream up", extra={"fields": _fields(link)})
        kind = msg.WhichOneof("body")
        if kind == "heartbeat":
            # Liveness of this stream whatever its epoch: a heartbeat drives nothing.
            link.heartbeating = True
            if msg.heartbeat.cp:
                link.name = msg.heartbeat.cp
            return
        if msg.epoch < self.epoch:
            # Fencing: an older CP (a frozen ex-active) must never drive us again.
            self.counters["stale_epoch_messages"] += 1
            return
        if kind == "assign":
            self._follow(link, msg.epoch, msg.assign.cp)
            await self._assign(msg.assign)
            return
        if link is not self.active or msg.epoch != self.epoch:
            self.counters["not_from_active"] += 1
            return
        if kind == "transmit":
            frames = [
                (self.core if frame.port == common_pb2.PORT_CORE else self.access, frame.data)
                for frame in msg.transmit.frames
            ]
            self.forwarder.submit(lambda: _send_all(frames))
            self.counters["frames_transmitted_for_cp"] += len(frames)
        elif kind == "rules":
            link.send(await self._apply_rules(msg.rules))

    def _follow(self, link: CpLink, epoch: int, cp: str) -> None:
        if cp:
            link.name = cp
        self.epoch = epoch
        self.flushed = False
        if link is self.active:
            return
        self.active = link
        self._report_all = True
        fields = {**_fields(link), "epoch": epoch}
        if self._followed and self._followed != link.label:
            self.counters["active_cp_changes"] += 1
            log.warning(
                "following a new active cp", extra={"fields": {**fields, "was": self._followed}}
            )
        else:
            log.info("following cp", extra={"fields": fields})
        self._followed = link.label

    async def _assign(self, a: session_control_pb2.Assignment) -> None:
        groups = [convert.group_from_pb(g, self.config.site) for g in a.groups]
        prepare = {g.group_id for g in a.groups if g.prepare_only}
        worker, report_all = self.worker, self._report_all
        access, core = self.access, self.core

        def assign() -> tuple[set[int], list[Usage], UsageColumns | None]:
            held = worker.groups
            before = {(g.group_id, g.virtual_mac) for g in held if g.group_id not in held.prepared}
            final = worker.assign_groups(groups, prepare)
            # Claim only what this assignment newly claims (a changed virtual MAC is a new
            # claim): a gratuitous frame per group relearns the access bridge, once, in the
            # same gap between batches as the assignment takes effect.
            claims = {
                g.group_id
                for g in groups
                if g.group_id not in prepare and (g.group_id, g.virtual_mac) not in before
            }
            if claims:
                frames = [(access, claim) for claim in worker.claim_frames(claims)]
                _send_all([*frames, (core, worker.announce_frame())])
            everyone = worker.usage_columns(changed_only=False) if report_all else None
            return claims, final, everyone

        try:
            claims, final, everyone = await self.forwarder.call(assign)
        except (ConfigError, Overloaded) as exc:
            self.counters["assignments_refused"] += 1
            log.error("assignment refused: %s", exc)
            return
        # Counts the CP needs from us now: the last ones of sessions whose group left (a
        # planned move), and every session's after a new active CP took over (it only knows
        # the counts of the last interim update).
        reports = final + everyone.usages() if everyone is not None else final
        self._report_all = False
        self._report_usage(reports)
        self.role = "active" if a.role == session_control_pb2.DP_ROLE_ACTIVE else "standby"
        if a.usage_interval_ms:
            self.usage_interval_s = a.usage_interval_ms / 1000.0
        if a.heartbeat_interval_ms:
            self.heartbeat_interval_s = a.heartbeat_interval_ms / 1000.0
        self.headless_timeout_s = a.headless_timeout_ms / 1000.0
        log.info(
            "assignment",
            extra={
                "fields": {
                    "role": self.role,
                    "groups": [g.group_id for g in groups],
                    "prepared": sorted(prepare),
                    "claimed": sorted(claims),
                }
            },
        )

    async def _apply_rules(self, batch: session_control_pb2.RuleBatch) -> DpMessage:
        """Convert here, apply on the forwarding thread in chunks (forwarding interleaves),
        acknowledge the whole batch."""
        self.counters["rule_batches"] += 1
        rules = [convert.rule_from_pb(r) for r in batch.rules]
        worker = self.worker
        if batch.replace_all:
            wanted = {r.session_key for r in rules}
            keys = await self.forwarder.call(worker.session_keys)
            rules = [_removal(k) for k in keys if k not in wanted] + rules
        chunks = [rules[i : i + RULE_CHUNK] for i in range(0, len(rules), RULE_CHUNK)]
        done = await asyncio.gather(
            *(self.forwarder.call(functools.partial(worker.apply_rules, c)) for c in chunks)
        )
        results = [r for chunk_results, _ in done for r in chunk_results]
        final = [u for _, chunk_final in done for u in chunk_final]
        return DpMessage(
            ack=session_control_pb2.RuleAck(
                batch_id=batch.batch_id,
                results=[convert.result_to_pb(r) for r in results],
                final_usage=[convert.usage_to_pb(u) for u in final],
            )
        )

    def claimed_groups(self) -> list[int]:
        return self.worker.groups.served_ids()


async def _drain(out: Outbox) -> AsyncIterator[DpMessage]:
    while True:
        msg = await out.get()
        if msg is None:
            return
        yield msg


def _fields(link: CpLink) -> dict[str, str]:
    return {"cp": link.label, "address": link.address}


def _send_all(frames: list[tuple[FrameIO, bytes]]) -> None:
    """Runs on the forwarding thread: the ports are its own."""
    for port, frame in frames:
        port.send(frame)


def _removal(key: int) -> SessionRule:
    return SessionRule(RuleOp.REMOVE, key, 0, TrafficEndpoint(b"\x00" * 6, b"\x00" * 6))
