"""Orchestrator daemon of one lab: ``python -m orchestrator.main --lab NAME``.

Started by ``vnf lab up`` in the root namespace (it reaches every node over the management
bridge). It starts the nodes in order, health-checks them over gRPC, restarts a node that
dies (with backoff), serves the Orchestrator API on a unix socket in the lab's runtime
directory, and on Shutdown stops the nodes in order (CPs first, so sessions end cleanly and
accounting is complete) before it exits itself.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time

import grpc

from orchestrator.adapters.local import LocalBackend
from orchestrator.model import Kind, NodeSpec, stop_sequence
from orchestrator.reconcile import reconcile
from vnf.adapters import grpc_server
from vnf.adapters.process import install_stop_signals, setup_logging
from vnf.api import common_pb2, orchestrator_pb2, orchestrator_pb2_grpc
from vnf.config import Endpoint
from vnf.errors import NotFound
from vnf.lab.adapters.state import StateStore

log = logging.getLogger("orchestrator")
TICK_S = 0.5


class Orchestrator(orchestrator_pb2_grpc.OrchestratorServicer):
    def __init__(self, lab: str, store: StateStore) -> None:
        state = store.load(lab)
        self.lab = lab
        self.store = store
        self.started = time.monotonic()
        self.nodes = [
            NodeSpec(n.name, Kind(n.kind), n.role, n.site, n.netns, n.mgmt_ip) for n in state.nodes
        ]
        self.backend = LocalBackend(store, lab, state.data_dir)
        self.stopping = False
        self.done = asyncio.Event()

    async def run(self) -> None:
        while not self.stopping:
            self.backend.poll()
            for action in reconcile(self.nodes, self.backend.observed, time.monotonic()):
                self.backend.start(action.node, action.restart)
            await asyncio.gather(
                *(self.backend.check_health(n) for n in self.nodes if n.has_process)
            )
            await asyncio.sleep(TICK_S)

    def ready(self) -> bool:
        return all(
            self.backend.health.get(n.name) == "SERVING" for n in self.nodes if n.has_process
        )

    async def GetStatus(  # noqa: N802
        self, request: common_pb2.Empty, context: grpc.aio.ServicerContext
    ) -> orchestrator_pb2.LabStatus:
        out = []
        for n in self.nodes:
            seen = self.backend.observed.get(n.name)
            endpoint = Endpoint(n.mgmt_ip) if n.mgmt_ip else None
            out.append(
                orchestrator_pb2.NodeStatus(
                    name=n.name,
                    kind=str(n.kind),
                    role=n.role,
                    site=n.site,
                    pid=self.backend.pid(n.name),
                    state=(seen.state if seen else "pending") if n.has_process else "n/a",
                    health=self.backend.health.get(n.name, "UNKNOWN") if n.has_process else "",
                    grpc_address=endpoint.grpc if endpoint and n.has_process else "",
                    metrics_url=endpoint.metrics_url if endpoint and n.has_process else "",
                    netns=n.netns,
                    mgmt_ip=n.mgmt_ip,
                    exit_code=seen.exit_code if seen and seen.exit_code is not None else 0,
                    restarts=seen.restarts if seen else 0,
                )
            )
        return orchestrator_pb2.LabStatus(
            lab=self.lab, nodes=out, ready=self.ready(), uptime_s=time.monotonic() - self.started
        )

    async def Shutdown(  # noqa: N802
        self, request: orchestrator_pb2.ShutdownRequest, context: grpc.aio.ServicerContext
    ) -> orchestrator_pb2.ShutdownReply:
        stopped = await self.shutdown(request.deadline_s or 10.0)
        return orchestrator_pb2.ShutdownReply(stopped=stopped)

    async def shutdown(self, deadline_s: float) -> int:
        if self.stopping:
            await self.done.wait()
            return 0
        self.stopping = True
        stopped = 0
        for stage in stop_sequence(self.nodes):
            stopped += await self.backend.stop(stage, deadline_s)
        await self.backend.close()
        self.done.set()
        log.info("all nodes stopped", extra={"fields": {"stopped": stopped}})
        return stopped


async def serve(lab: str) -> int:
    store = StateStore()
    try:
        orchestrator = Orchestrator(lab, store)
    except NotFound as exc:
        log.error("%s", exc)
        return 2
    socket = store.socket_path(lab)
    socket.unlink(missing_ok=True)
    server = grpc_server.Server(
        f"unix:{socket}",
        [
            (
                orchestrator_pb2_grpc.add_OrchestratorServicer_to_server,
                orchestrator,
                orchestrator_pb2.DESCRIPTOR.services_by_name["Orchestrator"].full_name,
            )
        ],
    )
    await server.start()
    stop = install_stop_signals(asyncio.get_running_loop())
    runner = asyncio.create_task(orchestrator.run())
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait(
        [runner, stopper, asyncio.create_task(orchestrator.done.wait())],
        return_when=asyncio.FIRST_COMPLETED,
    )
    if not orchestrator.done.is_set():
        await orchestrator.shutdown(10.0)
    runner.cancel()
    # Let the Shutdown reply reach the caller before the server goes.
    await server.stop(grace=2.0)
    socket.unlink(missing_ok=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="orchestrator", description=__doc__)
    parser.add_argument("--lab", required=True)
    parser.add_argument("--log", default="")
    args = parser.parse_args(argv)
    setup_logging("orchestrator", args.log)
    try:
        return asyncio.run(serve(args.lab))
    except KeyboardInterrupt:
        return 1


if __name__ == "__main__":
    sys.exit(main())
