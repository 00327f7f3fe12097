"""A DP worker process's event loop: packet sockets in, fast path, gRPC to the CP out.

The fast path runs in reader callbacks on the asyncio loop (a burst of batches per wakeup);
the SCi/CPRi stream to the CP shares the loop but never blocks forwarding: punts are queued
and leave as one batch per loop iteration; when the CP is unreachable the worker keeps
forwarding every installed session (headless) and reconnects with backoff.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import grpc

from data_plane.io.base import FrameIO, send_tx
from data_plane.worker import Worker
from vnf.adapters import grpc_server
from vnf.api import common_pb2, convert, session_control_pb2, session_control_pb2_grpc
from vnf.config import DpConfig
from vnf.model.addresses import ip_to_int, parse_mac
from vnf.model.session import RuleOp, SessionRule, TrafficEndpoint

log = logging.getLogger("dp")

BATCHES_PER_WAKEUP = 16
RECONNECT_MIN_S = 0.2
RECONNECT_MAX_S = 2.0


class DpRuntime:
    def __init__(self, config: DpConfig, worker: Worker, access: FrameIO, core: FrameIO) -> None:
        self.config = config
        self.worker = worker
        self.access = access
        self.core = core
        self.loop = asyncio.get_running_loop()
        self.access_batch = worker.new_batch()
        self.core_batch = worker.new_batch()
        self.epoch = 0
        self.role = config.role
        self.cp_address = ""
        self.connected = False
        self.disconnected_since = time.monotonic()
        self.counters: dict[str, int] = {
            "punts_sent": 0,
            "punts_dropped_headless": 0,
            "stale_epoch_messages": 0,
            "cp_connects": 0,
            "frames_transmitted_for_cp": 0,
            "rule_batches": 0,
        }
        self._out: asyncio.Queue[session_control_pb2.DpMessage | None] | None = None
        self._punts: list[common_pb2.Frame] = []
        self._flush_scheduled = False
        self.usage_interval_s = 2.0
        self.heartbeat_interval_s = 0.5
        self.started = time.monotonic()

    # ------------------------------------------------------------------ fast path

    def start_io(self) -> None:
        self.loop.add_reader(self.access.fileno(), self.on_access)
        self.loop.add_reader(self.core.fileno(), self.on_core)

    def stop_io(self) -> None:
        self.loop.remove_reader(self.access.fileno())
        self.loop.remove_reader(self.core.fileno())

    def on_access(self) -> None:
        batch = self.access_batch
        for _ in range(BATCHES_PER_WAKEUP):
            n = self.access.recv_batch(batch)
            if n == 0:
                return
            result = self.worker.process_access(batch)
            send_tx(self.core, result.to_core)
            if result.punts:
                self._punt(result.punts, batch.rx_ns)
            if n < batch.capacity:
                return

    def on_core(self) -> None:
        batch = self.core_batch
        for _ in range(BATCHES_PER_WAKEUP):
            n = self.core.recv_batch(batch)
            if n == 0:
                return
            result = self.worker.process_core(batch)
            send_tx(self.access, result.to_access)
            for frame in result.to_core:
                self.core.send(frame)
            if result.punts:
                self._punt(result.punts, batch.rx_ns)
            if n < batch.capacity:
                return

    def _punt(self, frames: list[bytes], rx_ns: int) -> None:
        if self._out is None or not self.connected:
            self.counters["punts_dropped_headless"] += len(frames)
            return
        self._punts.extend(
            common_pb2.Frame(port=common_pb2.PORT_ACCESS, data=f, rx_ns=rx_ns) for f in frames
        )
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush_punts)

    def _flush_punts(self) -> None:
        self._flush_scheduled = False
        if not self._punts:
            return
        frames, self._punts = self._punts, []
        if self._out is None:
            self.counters["punts_dropped_headless"] += len(frames)
            return
        self.counters["punts_sent"] += len(frames)
        self._out.put_nowait(
            session_control_pb2.DpMessage(punts=common_pb2.FrameBatch(frames=frames))
        )

    # ------------------------------------------------------------------ periodic work

    async def periodic(self) -> None:
        """ARP for the core next hop, heartbeats and usage reports."""
        next_usage = time.monotonic()
        while True:
            now = time.monotonic()
            request = self.worker.arp_request_if_needed(now)
            if request is not None:
                self.core.send(request)
            if self._out is not None and self.connected:
                self._out.put_nowait(
                    session_control_pb2.DpMessage(
                        heartbeat=session_control_pb2.Heartbeat(
                            sent_ns=time.monotonic_ns(), sessions=self.worker.session_count
                        )
                    )
                )
                if now >= next_usage:
                    next_usage = now + self.usage_interval_s
                    reports = self.worker.usage(changed_only=True)
                    if reports:
                        self._out.put_nowait(
                            session_control_pb2.DpMessage(
                                usage=session_control_pb2.UsageBatch(
                                    reports=[convert.usage_to_pb(u) for u in reports]
                                )
                            )
                        )
            await asyncio.sleep(min(self.heartbeat_interval_s, 0.5))

    # ------------------------------------------------------------------ the CP stream

    async def cp_loop(self) -> None:
        backoff = RECONNECT_MIN_S
        while True:
            for address in self.config.cp_addresses:
                try:
                    await self._session(address)
                    backoff = RECONNECT_MIN_S
                except grpc.aio.AioRpcError as exc:
                    log.info("cp %s unavailable: %s", address, exc.code().name)
                finally:
                    self._lost()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, RECONNECT_MAX_S)

    def _hello(self) -> session_control_pb2.DpMessage:
        cfg = self.config
        return session_control_pb2.DpMessage(
            hello=session_control_pb2.Hello(
                dp_id=cfg.name,
                site=cfg.site,
                capabilities=session_control_pb2.Capabilities(
                    access_types=["pppoe"], max_sessions=65534 * 16, max_groups=16
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
            )
        )

    async def _requests(
        self, out: asyncio.Queue[session_control_pb2.DpMessage | None]
    ) -> AsyncIterator[session_control_pb2.DpMessage]:
        while True:
            msg = await out.get()
            if msg is None:
                return
            yield msg

    async def _session(self, address: str) -> None:
        out: asyncio.Queue[session_control_pb2.DpMessage | None] = asyncio.Queue()
        out.put_nowait(self._hello())
        self._out = out
        async with grpc_server.channel(address) as channel:
            stub = session_control_pb2_grpc.SessionControlStub(channel)
            call = stub.Connect(self._requests(out))
            async for msg in call:
                if msg.epoch < self.epoch:
                    # Fencing: an older CP (a frozen ex-active) must never drive us again.
                    self.counters["stale_epoch_messages"] += 1
                    continue
                self.epoch = msg.epoch
                if not self.connected:
                    self.connected = True
                    self.cp_address = address
                    self.counters["cp_connects"] += 1
                    log.info(
                        "connected to cp", extra={"fields": {"cp": address, "epoch": msg.epoch}}
                    )
                self._handle(msg, out)

    def _lost(self) -> None:
        if self._out is not None:
            self._out.put_nowait(None)
        self._out = None
        if self.connected:
            log.warning(
                "lost the cp: forwarding headless", extra={"fields": {"cp": self.cp_address}}
            )
            self.disconnected_since = time.monotonic()
        self.connected = False

    def _handle(
        self,
        msg: session_control_pb2.CpMessage,
        out: asyncio.Queue[session_control_pb2.DpMessage | None],
    ) -> None:
        kind = msg.WhichOneof("body")
        if kind == "transmit":
            for frame in msg.transmit.frames:
                port = self.core if frame.port == common_pb2.PORT_CORE else self.access
                port.send(frame.data)
            self.counters["frames_transmitted_for_cp"] += len(msg.transmit.frames)
        elif kind == "rules":
            self.counters["rule_batches"] += 1
            rules = [convert.rule_from_pb(r) for r in msg.rules.rules]
            if msg.rules.replace_all:
                wanted = {r.session_key for r in rules}
                stale = [k for k in self.worker.session_keys() if k not in wanted]
                rules = [_removal(k) for k in stale] + rules
            results, final = self.worker.apply_rules(rules)
            out.put_nowait(
                session_control_pb2.DpMessage(
                    ack=session_control_pb2.RuleAck(
                        batch_id=msg.rules.batch_id,
                        results=[convert.result_to_pb(r) for r in results],
                        final_usage=[convert.usage_to_pb(u) for u in final],
                    )
                )
            )
        elif kind == "assign":
            a = msg.assign
            groups = [convert.group_from_pb(g, self.config.site) for g in a.groups]
            self.worker.assign_groups(groups)
            self.role = "active" if a.role == session_control_pb2.DP_ROLE_ACTIVE else "standby"
            if a.usage_interval_ms:
                self.usage_interval_s = a.usage_interval_ms / 1000.0
            if a.heartbeat_interval_ms:
                self.heartbeat_interval_s = a.heartbeat_interval_ms / 1000.0
            for claim in self.worker.claim_frames():
                self.access.send(claim)
            self.core.send(self.worker.announce_frame())
            log.info(
                "assignment",
                extra={"fields": {"role": self.role, "groups": [g.group_id for g in groups]}},
            )


def _removal(key: int) -> SessionRule:
    return SessionRule(RuleOp.REMOVE, key, 0, TrafficEndpoint(b"\x00" * 6, b"\x00" * 6))
