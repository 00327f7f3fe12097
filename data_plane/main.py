"""Data-plane worker process: ``python -m data_plane.main --config dp-site1-1.json``.

Wiring only: enter the node's namespace, open the access and core ports there with the
configured I/O backend (``io``: recvmmsg/sendmmsg by default, or the TPACKET_V3 ring), run
the batch fast path on its own thread (pinned to ``cpu`` when set), keep a session-control
stream to every CP of the pair on the event loop (each with reconnect; following the active
one, headless forwarding while there is none), serve DataPlaneAdmin + health + reflection
and /metrics on the management address.
"""

from __future__ import annotations

import asyncio
import logging

from data_plane.adapters.runtime import DpRuntime
from data_plane.adapters.services import DataPlaneAdminServicer, DpMetrics
from data_plane.io import open_port
from data_plane.worker import Worker, WorkerConfig
from vnf import config as vnf_config
from vnf.adapters import grpc_server, metrics_http
from vnf.adapters.process import install_stop_signals, run_node
from vnf.api import dataplane_admin_pb2, dataplane_admin_pb2_grpc
from vnf.errors import ConfigError
from vnf.model.addresses import ip_to_int, parse_mac

log = logging.getLogger("dp")


async def serve(config: vnf_config.DpConfig) -> None:
    worker = Worker(
        WorkerConfig(
            name=config.name,
            core_mac=parse_mac(config.core_mac),
            core_ip=ip_to_int(config.core_ip),
            core_prefix_len=config.core_prefix_len,
            gateway_ip=ip_to_int(config.core_gateway),
            batch_size=config.batch_size,
        )
    )
    try:
        access = open_port(config.io, config.access_ifname)
        core = open_port(config.io, config.core_ifname)
    except ValueError as exc:
        raise ConfigError("io", str(exc)) from None
    runtime = DpRuntime(config, worker, access, core)
    metrics = DpMetrics(runtime)
    server = grpc_server.Server(
        config.endpoint.grpc,
        [
            (
                dataplane_admin_pb2_grpc.add_DataPlaneAdminServicer_to_server,
                DataPlaneAdminServicer(runtime),
                dataplane_admin_pb2.DESCRIPTOR.services_by_name["DataPlaneAdmin"].full_name,
            )
        ],
    )
    metrics_http.serve(metrics.registry, config.endpoint.host, config.endpoint.metrics_port)
    stop = install_stop_signals(asyncio.get_running_loop())
    runtime.start_io()
    await server.start()
    tasks = [
        asyncio.create_task(runtime.cp_loop(), name="cp-streams"),
        asyncio.create_task(runtime.periodic(), name="periodic"),
    ]
    log.info("data plane serving", extra={"fields": {"grpc": config.endpoint.grpc}})
    await stop.wait()
    runtime.stop_io()
    for task in tasks:
        task.cancel()
    await server.stop(grace=0.5)
    access.close()
    core.close()


def main(argv: list[str] | None = None) -> int:
    return run_node("data_plane", __doc__, vnf_config.DpConfig, serve, argv)


if __name__ == "__main__":
    raise SystemExit(main())
