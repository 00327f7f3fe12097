"""Control-plane process: ``python -m control_plane.main --config cp-a.json``.

Wiring only: enter the node's namespace, open the store, build the core, serve SessionControl
(for DPs), Management (for the CLI/orchestrator), Replication (for the other CP of the pair),
health and reflection on the management address, /metrics next to it, and stop cleanly on
SIGTERM (sessions terminated, accounting stops written and committed).
"""

from __future__ import annotations

import asyncio
import logging
import os
import pathlib
import time

from control_plane.aaa.local import SubscriberDirectory
from control_plane.aaa.provisioning import ModemDirectory
from control_plane.adapters.grpc_services import ManagementServicer, SessionControlServicer
from control_plane.adapters.replication import ReplicationServicer
from control_plane.adapters.runtime import CpRuntime
from control_plane.adapters.store import Store
from control_plane.service import ControlPlane
from vnf import config as vnf_config
from vnf.adapters import grpc_server, metrics_http
from vnf.adapters.process import install_stop_signals, run_node
from vnf.api import (
    management_pb2,
    management_pb2_grpc,
    replication_pb2,
    replication_pb2_grpc,
    session_control_pb2,
    session_control_pb2_grpc,
)
from vnf.model.subscriber import RateProfile

log = logging.getLogger("cp")


async def serve(config: vnf_config.CpConfig) -> None:
    pathlib.Path(config.db_path).parent.mkdir(parents=True, exist_ok=True)
    store = Store(config.db_path)
    profiles = {
        p.name: RateProfile(p.name, p.up_kbps, p.down_kbps, p.burst_bytes)
        for p in config.rate_profiles
    }

    def make_core(active: bool) -> ControlPlane:
        """A fresh core; the subscriber directory comes from the store (the standby's store
        holds what the active replicated to it)."""
        directory = SubscriberDirectory(profiles)
        for subscriber in store.subscribers():
            directory.put(subscriber)
        modems = ModemDirectory()
        for modem in store.modems():
            modems.put(modem)
        # Accounting session ids: this CP's index and a random part, then the session key
        # (never reused across the pair: the used keys are replicated).
        prefix = f"{config.index:02x}{os.urandom(3).hex()}"
        return ControlPlane(
            config,
            directory,
            os.urandom,
            acct_prefix=prefix,
            wall=time.time,
            active=active,
            modems=modems,
        )

    runtime = CpRuntime(make_core, store, config.db_path, config.router)
    server = grpc_server.Server(
        config.endpoint.grpc,
        [
            (
                session_control_pb2_grpc.add_SessionControlServicer_to_server,
                SessionControlServicer(runtime),
                session_control_pb2.DESCRIPTOR.services_by_name["SessionControl"].full_name,
            ),
            (
                management_pb2_grpc.add_ManagementServicer_to_server,
                ManagementServicer(runtime),
                management_pb2.DESCRIPTOR.services_by_name["Management"].full_name,
            ),
            (
                replication_pb2_grpc.add_ReplicationServicer_to_server,
                ReplicationServicer(runtime),
                replication_pb2.DESCRIPTOR.services_by_name["Replication"].full_name,
            ),
        ],
    )
    metrics_http.serve(runtime.metrics.registry, config.endpoint.host, config.endpoint.metrics_port)
    stop = install_stop_signals(asyncio.get_running_loop())
    await server.start()
    log.info(
        "control plane serving",
        extra={
            "fields": {
                "grpc": config.endpoint.grpc,
                "role": runtime.role,
                "peer": config.peer,
                "subscribers": len(runtime.core.directory),
            }
        },
    )
    await stop.wait()
    log.info("stopping")
    await runtime.shutdown()
    await server.stop(grace=1.0)
    store.close()


def main(argv: list[str] | None = None) -> int:
    return run_node("control_plane", __doc__, vnf_config.CpConfig, serve, argv)


if __name__ == "__main__":
    raise SystemExit(main())
