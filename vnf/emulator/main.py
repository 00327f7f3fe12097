"""Subscriber emulator process: ``python -m vnf.emulator.main --config emu-site1.json``.

One packet socket on the site's access segment (in the emulator's namespace) carries every
emulated PPPoE subscriber and cable modem; one UDP socket in the server host's namespace is
the far end of the test traffic. Serves the Emulator API (dial, hang up, status, traffic)
with health and reflection, and /metrics.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Iterable

import grpc
from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric

from vnf import config as vnf_config
from vnf.adapters import grpc_server, metrics_http
from vnf.adapters.metrics_http import CallbackCollector, counter_families, gauges
from vnf.adapters.packet import open_packet_socket
from vnf.adapters.process import enter_netns, install_stop_signals, run_node
from vnf.api import common_pb2, emulator_pb2, emulator_pb2_grpc
from vnf.emulator.adapters.runner import EmulatorRuntime
from vnf.emulator.fleet import KINDS, Fleet, SubscriberSpec, SubscriberState
from vnf.emulator.traffic import Distribution, TrafficPlan, distribution
from vnf.engines.ppp_session import AuthMethod, PppConfig
from vnf.lab.subscribers import lab_modems, lab_subscribers
from vnf.model.addresses import ip_to_int, mac_to_str

log = logging.getLogger("emulator")


def _dist(d: Distribution) -> emulator_pb2.Distribution:
    return emulator_pb2.Distribution(
        count=d.count, min=d.min, avg=d.avg, p50=d.p50, p99=d.p99, max=d.max
    )


class EmulatorServicer(emulator_pb2_grpc.EmulatorServicer):
    def __init__(self, runtime: EmulatorRuntime) -> None:
        self.runtime = runtime

    async def Dial(  # noqa: N802
        self, request: emulator_pb2.DialRequest, context: grpc.aio.ServicerContext
    ) -> emulator_pb2.DialReply:
        if request.rate < 0:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "rate must be >= 0")
        if request.kind and request.kind not in KINDS:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"kind must be one of {', '.join(KINDS)}"
            )
        started = self.runtime.dial(
            request.count, request.rate, request.max_outstanding, request.kind
        )
        return emulator_pb2.DialReply(started=started)

    async def Hangup(  # noqa: N802
        self, request: emulator_pb2.HangupRequest, context: grpc.aio.ServicerContext
    ) -> emulator_pb2.HangupReply:
        return emulator_pb2.HangupReply(
            hung_up=self.runtime.hangup(request.count, request.username)
        )

    async def GetStatus(  # noqa: N802
        self, request: common_pb2.Empty, context: grpc.aio.ServicerContext
    ) -> emulator_pb2.EmulatorStatus:
        fleet = self.runtime.fleet
        counts = fleet.counts
        return emulator_pb2.EmulatorStatus(
            subscribers=len(fleet.subscribers),
            idle=counts[SubscriberState.IDLE],
            connecting=counts[SubscriberState.CONNECTING],
            queued=len(fleet.pending),
            up=counts[SubscriberState.UP],
            down=counts[SubscriberState.DOWN],
            failed=counts[SubscriberState.FAILED],
            terminated_by_peer=fleet.terminated_by_peer,
            setup_ms=_dist(distribution([s * 1000.0 for s in fleet.setup_s])),
            first_start_mono=fleet.first_start,
            last_up_mono=fleet.last_up,
            failures=dict(fleet.failures),
            up_mono=list(fleet.up_times),
            modems=fleet.totals_by_kind["docsis"],
            modems_up=fleet.counts_by_kind["docsis"][SubscriberState.UP],
        )

    async def StartTraffic(  # noqa: N802
        self, request: emulator_pb2.TrafficRequest, context: grpc.aio.ServicerContext
    ) -> emulator_pb2.TrafficReply:
        try:
            plan = TrafficPlan(
                request.duration_s or 5.0, request.pps_per_session or 10, request.frame_size or 128
            )
            if request.kind not in ("", *KINDS):
                raise ValueError(f"unknown kind {request.kind!r} (pppoe or docsis)")
            flows = self.runtime.start_traffic(plan, request.max_sessions, request.kind)
        except ValueError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except LookupError as exc:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        except RuntimeError as exc:
            await context.abort(grpc.StatusCode.ALREADY_EXISTS, str(exc))
        return emulator_pb2.TrafficReply(flows=flows)

    async def GetTrafficReport(  # noqa: N802
        self, request: common_pb2.Empty, context: grpc.aio.ServicerContext
    ) -> emulator_pb2.TrafficReport:
        run = self.runtime.traffic
        if run is None:
            return emulator_pb2.TrafficReport(running=False)
        directions = []
        for direction in (run.upstream, run.downstream):
            r = direction.report()
            directions.append(
                emulator_pb2.DirectionReport(
                    direction=r.direction,
                    sent=r.sent,
                    received=r.received,
                    lost=r.lost,
                    reordered=r.reordered,
                    duplicates=r.duplicates,
                    latency_ms=_dist(r.latency_ms),
                    flows=r.flows,
                    max_gap_ms=r.max_gap_ms,
                    flow_gap_ms=_dist(r.flow_gap_ms),
                    max_arrival_gap_ms=r.max_arrival_gap_ms,
                )
            )
        return emulator_pb2.TrafficReport(
            running=self.runtime.traffic_running,
            duration_s=run.plan.duration_s,
            directions=directions,
        )


def _collect(runtime: EmulatorRuntime, node: str) -> Iterable[Metric]:
    const = {"node": node}
    fleet = runtime.fleet
    yield gauges(
        "vnf_emulator_subscribers",
        "Emulated subscribers (PPPoE clients, cable modems) by kind and state",
        (
            ({**const, "kind": kind, "state": s.value}, counts[s])
            for kind, counts in fleet.counts_by_kind.items()
            for s in SubscriberState
        ),
    )
    run = runtime.traffic
    if run is not None:  # the last (or current) traffic run, as the verifier sees it
        directions = (run.upstream, run.downstream)
        yield gauges(
            "vnf_emulator_traffic_max_gap_seconds",
            "Longest forwarding gap of any flow in the last traffic run (sequence numbers)",
            (({**const, "direction": d.name}, d.max_gap_ns() / 1e9) for d in directions),
        )
        yield gauges(
            "vnf_emulator_traffic_lost_packets",
            "Packets of the last traffic run that did not arrive (yet)",
            (({**const, "direction": d.name}, d.lost()) for d in directions),
        )
    counts = {(k, ""): v for k, v in runtime.counters.items()}
    counts.update({("failures", reason): n for reason, n in fleet.failures.items()})
    yield from counter_families(
        "vnf_emulator",
        counts,
        {"failures": "reason"},
        {"failures": "Dial failures by reason"},
        const,
    )


def _server_socket(config: vnf_config.EmulatorConfig) -> socket.socket:
    """The UDP socket of the server host, created inside the server's namespace."""
    enter_netns(config.server_netns)
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        sock.bind((config.server_ip, config.server_port))
        sock.setblocking(False)
    finally:
        enter_netns(config.netns)
    return sock


def build_fleet(config: vnf_config.EmulatorConfig) -> Fleet:
    specs = [
        SubscriberSpec(
            index=s.number - 1,
            mac=s.mac,
            username=s.username,
            password=s.password,
            auth_methods=(AuthMethod.CHAP_MD5,) if s.auth == "chap" else (AuthMethod.PAP,),
        )
        for s in lab_subscribers(
            config.subscribers,
            config.chap_share,
            config.username,
            config.password,
            config.site,
            config.lab_index,
            config.site_index,
        )
    ]
    # Cable modems after the PPPoE subscribers; a modem's name is its MAC.
    first = len(specs)
    specs += [
        SubscriberSpec(
            index=first + m.number - 1,
            mac=m.mac,
            username=mac_to_str(m.mac),
            password="",
            auth_methods=(),
            kind="docsis",
            cpe_mac=m.cpe_mac,
            service_class=config.modem_service_class,
        )
        for m in lab_modems(config.modems, config.lab_index, config.site_index)
    ]
    ppp = PppConfig(
        mru=config.mru, echo_interval_s=config.echo_interval_s, echo_failures=config.echo_failures
    )
    return Fleet(
        specs,
        os.urandom,
        ppp,
        secret=config.cable_secret.encode(),
        wall=time.time,
        modem_ranging_interval_s=config.modem_ranging_interval_s,
    )


async def serve(config: vnf_config.EmulatorConfig, server_sock: socket.socket) -> None:
    access = open_packet_socket(config.access_ifname)
    runtime = EmulatorRuntime(
        build_fleet(config), access, server_sock, ip_to_int(config.server_ip), config.server_port
    )
    registry = CollectorRegistry()
    registry.register(CallbackCollector(lambda: _collect(runtime, config.name)))
    server = grpc_server.Server(
        config.endpoint.grpc,
        [
            (
                emulator_pb2_grpc.add_EmulatorServicer_to_server,
                EmulatorServicer(runtime),
                emulator_pb2.DESCRIPTOR.services_by_name["Emulator"].full_name,
            )
        ],
    )
    metrics_http.serve(registry, config.endpoint.host, config.endpoint.metrics_port)
    stop = install_stop_signals(asyncio.get_running_loop())
    runtime.start()
    await server.start()
    log.info(
        "emulator serving",
        extra={"fields": {"subscribers": config.subscribers, "modems": config.modems}},
    )
    await stop.wait()
    # Hang up cleanly (LCP Terminate-Request + PADT leave in this call's flush).
    runtime.hangup(0, "")
    runtime.stop()
    await server.stop(grace=0.5)
    access.close()
    server_sock.close()


def main(argv: list[str] | None = None) -> int:
    sockets: list[socket.socket] = []

    async def serve_with_server_socket(config: vnf_config.EmulatorConfig) -> None:
        await serve(config, sockets[0])

    return run_node(
        "vnf.emulator",
        __doc__,
        vnf_config.EmulatorConfig,
        serve_with_server_socket,
        argv,
        before_loop=lambda config: sockets.append(_server_socket(config)),
    )


if __name__ == "__main__":
    raise SystemExit(main())
