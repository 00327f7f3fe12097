"""Core router agent: ``python -m vnf.router.main --config core.json``.

Runs in the core router's namespace (IPv4 forwarding on). Serves CoreRouting: the active
CP pushes its aggregates (subscriber group pools → serving DP's core address) and the agent
installs them in the kernel FIB with its own routing protocol number, touching no other
route.
"""

from __future__ import annotations

import asyncio
import logging

import grpc
from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric
from pyroute2 import AsyncIPRoute

from vnf import config as vnf_config
from vnf.adapters import grpc_server, metrics_http
from vnf.adapters.metrics_http import CallbackCollector, counter_families, gauge
from vnf.adapters.process import install_stop_signals, run_node
from vnf.api import routing_pb2, routing_pb2_grpc
from vnf.errors import ConfigError
from vnf.router.rib import Rib

RTPROT_VNF = 188  # our own rtm_protocol: only these routes are ours to change
log = logging.getLogger("router")


class CoreRoutingServicer(routing_pb2_grpc.CoreRoutingServicer):
    def __init__(self, rib: Rib, ipr: AsyncIPRoute) -> None:
        self.rib = rib
        self.ipr = ipr
        self.lock = asyncio.Lock()
        self.updates: dict[tuple[str, str], int] = {}

    def collect(self, node: str) -> list[Metric]:
        const = {"node": node}
        return [
            gauge(
                "vnf_router_routes",
                "Aggregates installed from the control plane",
                len(self.rib.routes),
                const,
            ),
            gauge("vnf_router_epoch", "Epoch of the accepted advertisement", self.rib.epoch, const),
            *counter_families(
                "vnf_router",
                self.updates,
                {"route_updates": "result"},
                {"route_updates": "Route sets received, by result"},
                const,
            ),
        ]

    async def SetRoutes(  # noqa: N802
        self, request: routing_pb2.RouteSet, context: grpc.aio.ServicerContext
    ) -> routing_pb2.RouteReply:
        try:
            routes = {self.rib.validate(r.prefix, r.next_hop) for r in request.routes}
        except ConfigError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        async with self.lock:
            accepted, to_add, to_remove = self.rib.offer(request.speaker, request.epoch, routes)
            result = ("route_updates", "accepted" if accepted else "stale_epoch")
            self.updates[result] = self.updates.get(result, 0) + 1
            for route in sorted(to_remove):
                await self.ipr.route("del", dst=str(route.prefix), proto=RTPROT_VNF)
            for route in sorted(to_add):
                await self.ipr.route(
                    "replace", dst=str(route.prefix), gateway=str(route.next_hop), proto=RTPROT_VNF
                )
        log.info(
            "routes set",
            extra={
                "fields": {
                    "speaker": request.speaker,
                    "epoch": request.epoch,
                    "accepted": accepted,
                    "added": len(to_add),
                    "removed": len(to_remove),
                }
            },
        )
        return routing_pb2.RouteReply(
            installed=len(to_add), removed=len(to_remove), accepted=accepted
        )

    async def ListRoutes(  # noqa: N802
        self, request: routing_pb2.RouteQuery, context: grpc.aio.ServicerContext
    ) -> routing_pb2.RouteSet:
        routes = []
        async for msg in await self.ipr.get_routes(family=2, proto=RTPROT_VNF):
            prefix = f"{msg.get('RTA_DST')}/{msg['dst_len']}"
            routes.append(routing_pb2.Route(prefix=prefix, next_hop=str(msg.get("RTA_GATEWAY"))))
        return routing_pb2.RouteSet(speaker=self.rib.speaker, epoch=self.rib.epoch, routes=routes)


async def _flush_stale(ipr: AsyncIPRoute) -> None:
    """Routes of ours left by a previous agent in this namespace are no one's any more."""
    stale = [
        f"{msg.get('RTA_DST')}/{msg['dst_len']}"
        async for msg in await ipr.get_routes(family=2, proto=RTPROT_VNF)
    ]
    for prefix in stale:
        await ipr.route("del", dst=prefix, proto=RTPROT_VNF)


async def serve(config: vnf_config.RouterConfig) -> None:
    ipr = AsyncIPRoute()
    await _flush_stale(ipr)
    rib = Rib(config.subscriber_space, config.next_hop_space)
    servicer = CoreRoutingServicer(rib, ipr)
    registry = CollectorRegistry()
    registry.register(CallbackCollector(lambda: servicer.collect(config.name)))
    metrics_http.serve(registry, config.endpoint.host, config.endpoint.metrics_port)
    server = grpc_server.Server(
        config.endpoint.grpc,
        [
            (
                routing_pb2_grpc.add_CoreRoutingServicer_to_server,
                servicer,
                routing_pb2.DESCRIPTOR.services_by_name["CoreRouting"].full_name,
            )
        ],
    )
    stop = install_stop_signals(asyncio.get_running_loop())
    await server.start()
    log.info("core router agent serving", extra={"fields": {"grpc": config.endpoint.grpc}})
    await stop.wait()
    await server.stop(grace=0.5)
    ipr.close()


def main(argv: list[str] | None = None) -> int:
    return run_node("vnf.router", __doc__, vnf_config.RouterConfig, serve, argv)


if __name__ == "__main__":
    raise SystemExit(main())
