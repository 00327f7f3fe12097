"""The emulator's event loop: one packet socket on the access segment for every subscriber
and cable modem, one UDP socket on the server host, the fleet and the traffic verifier in
between.

Upstream test packets leave as PPPoE session frames from each subscriber's MAC and address
(or as DOCSIS Packet PDUs from each modem's CPE, in carrier frames from the modem's MAC) and
arrive at the server's UDP socket; downstream ones leave the server's UDP socket toward each
subscriber's (CPE's) address, cross the core router and the serving DP, and come back to the
access socket as PPPoE frames (or DOCSIS carrier frames).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time

from vnf.adapters.process import DeadlineTimer
from vnf.codec.ipv4 import build_udp_packet
from vnf.emulator.fleet import Fleet, SubscriberState
from vnf.emulator.traffic import TrafficPlan, TrafficRun, payload

log = logging.getLogger("emulator")

FRAMES_PER_WAKEUP = 1024
TRAFFIC_TICK_S = 0.002
DRAIN_S = 1.0
_SESSION = b"\x88\x64"
_PPP_IPV4 = b"\x00\x21"
_CARRIER = b"\x88\xb6"
_ETH_IPV4 = b"\x08\x00"
# A downstream DOCSIS data frame (vnf.codec.docsis): carrier (14) | MAC header without EHDR,
# FC 0x00 (6) | PDU Ethernet header (14) | IPv4 at 34 | CRC-32.
_DOCSIS_IPV4 = 34
_PPPOE_IPV4 = 22  # Ethernet (14) | PPPoE (6) | PPP protocol (2)


class EmulatorRuntime:
    def __init__(
        self,
        fleet: Fleet,
        access: socket.socket,
        server: socket.socket,
        server_ip: int,
        server_port: int,
    ) -> None:
        self.fleet = fleet
        self.access = access
        self.server = server
        self.server_ip = server_ip
        self.server_port = server_port
        self.loop = asyncio.get_running_loop()
        self.traffic: TrafficRun | None = None
        self.traffic_task: asyncio.Task[None] | None = None
        self.traffic_running = False
        self.timer = DeadlineTimer(self.loop, self._on_timer)
        self.counters = {"rx_frames": 0, "rx_foreign": 0, "tx_frames": 0, "tx_errors": 0}

    def start(self) -> None:
        self.loop.add_reader(self.access.fileno(), self.on_access)
        self.loop.add_reader(self.server.fileno(), self.on_server)

    def stop(self) -> None:
        self.loop.remove_reader(self.access.fileno())
        self.loop.remove_reader(self.server.fileno())

    # ------------------------------------------------------------------ control frames

    def on_access(self) -> None:
        now = time.monotonic()
        fleet = self.fleet
        traffic = self.traffic
        recv = self.access.recv
        for _ in range(FRAMES_PER_WAKEUP):
            try:
                frame = recv(2048)
            except BlockingIOError:
                break
            self.counters["rx_frames"] += 1
            # Test traffic: PPPoE session, PPP IPv4, UDP to our port → the verifier.
            if traffic is not None and (ip := _udp_ipv4_at(frame)):
                start = ip + (frame[ip] & 0x0F) * 4 + 8
                if traffic.downstream.record_received(frame[start:], time.monotonic_ns()):
                    continue
            if not fleet.receive(frame, now):
                self.counters["rx_foreign"] += 1
        self.flush()

    def flush(self) -> None:
        outbox = self.fleet.outbox
        if outbox:
            send = self.access.send
            for frame in outbox:
                try:
                    send(frame)
                    self.counters["tx_frames"] += 1
                except OSError:
                    self.counters["tx_errors"] += 1
            outbox.clear()
        self.timer.arm(self.fleet.next_deadline())

    def _on_timer(self) -> None:
        self.fleet.tick(time.monotonic())
        self.flush()

    def dial(self, count: int, rate: float, max_outstanding: int, kind: str = "") -> int:
        started = self.fleet.dial(count, rate, max_outstanding, time.monotonic(), kind)
        self.flush()
        return started

    def hangup(self, count: int, username: str) -> int:
        done = self.fleet.hangup(count, username, time.monotonic())
        self.flush()
        return done

    # ------------------------------------------------------------------ traffic

    def on_server(self) -> None:
        traffic = self.traffic
        for _ in range(FRAMES_PER_WAKEUP):
            try:
                data = self.server.recv(2048)
            except BlockingIOError:
                break
            if traffic is not None:
                traffic.upstream.record_received(data, time.monotonic_ns())

    def start_traffic(self, plan: TrafficPlan, max_sessions: int, kind: str = "") -> int:
        """One flow per subscriber that is up, PPPoE sessions and modems alike (a modem's
        address is its CPE's), or only those of ``kind``."""
        if self.traffic_running:
            raise RuntimeError("traffic is already running")
        flows = [
            i
            for i, s in enumerate(self.fleet.subscribers)
            if s.state is SubscriberState.UP
            and s.addressing is not None
            and (not kind or s.spec.kind == kind)
        ]
        if max_sessions:
            flows = flows[:max_sessions]
        if not flows:
            raise LookupError("no session is up")
        self.traffic = TrafficRun(plan, flows, time.monotonic())
        self.traffic_running = True
        self.traffic_task = asyncio.create_task(self._send_traffic(self.traffic), name="traffic")
        return len(flows)

    async def _send_traffic(self, run: TrafficRun) -> None:
        subs = self.fleet.subscribers
        size = run.plan.payload_size
        port = self.server_port
        server_ip = self.server_ip
        try:
            while not run.finished:
                due = run.due(time.monotonic())
                for flow, seq in due:
                    sub = subs[flow]
                    client = sub.client
                    addressing = sub.addressing
                    if client is None or addressing is None or sub.state is not SubscriberState.UP:
                        continue
                    now_ns = time.monotonic_ns()
                    ip = build_udp_packet(
                        addressing.local_ip, server_ip, port, port, payload(flow, seq, now_ns, size)
                    )
                    run.upstream.record_sent(flow, seq)
                    try:
                        self.access.send(client.data_frame(ip))
                    except OSError:
                        self.counters["tx_errors"] += 1
                    run.downstream.record_sent(flow, seq)
                    try:
                        self.server.sendto(
                            payload(flow, seq, time.monotonic_ns(), size),
                            (_ip_text(addressing.local_ip), port),
                        )
                    except OSError:
                        self.counters["tx_errors"] += 1
                await asyncio.sleep(TRAFFIC_TICK_S)
            await asyncio.sleep(DRAIN_S)  # let in-flight packets arrive before counting loss
        finally:
            self.traffic_running = False


def _udp_ipv4_at(frame: bytes) -> int:
    """Where the IPv4 header of a downstream UDP data frame starts — a PPPoE session frame
    with PPP IPv4, or a DOCSIS Packet PDU without EHDR (FC 0x00) with IPv4 — else 0."""
    if frame[12:14] == _SESSION:
        return (
            _PPPOE_IPV4 if frame[20:22] == _PPP_IPV4 and len(frame) >= 50 and frame[31] == 17 else 0
        )
    if frame[12:14] == _CARRIER and frame[14] == 0 and frame[32:34] == _ETH_IPV4:
        return _DOCSIS_IPV4 if len(frame) >= 62 and frame[43] == 17 else 0
    return 0


def _ip_text(value: int) -> str:
    return socket.inet_ntoa(value.to_bytes(4, "big"))
