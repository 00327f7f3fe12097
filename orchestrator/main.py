"""Orchestrator daemon of one lab: ``python -m orchestrator.main --lab NAME``.

Started by ``vnf lab up`` in the root namespace (it reaches every node over the management
bridge). It starts the nodes in order, health-checks them over gRPC, restarts a node that
dies (at once the first time, then with backoff), serves the Orchestrator API on a unix
socket in the lab's runtime directory, and on Shutdown stops the nodes in order (CPs first,
so sessions end cleanly and accounting is complete) before it exits itself.

Fail/Repair inject faults for real (``orchestrator.faults``): SIGKILL or SIGSTOP a node's
recorded process, or blackhole the management path between two nodes. Active faults are kept
here and written to the lab's ``faults.json`` for ``vnf lab status``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import time
from typing import Any

import grpc

from orchestrator.adapters.local import LocalBackend
from orchestrator.faults import ActiveFault, Fault, FaultBook, FaultKind
from orchestrator.model import Kind, NodeSpec, stop_sequence
from orchestrator.reconcile import reconcile
from vnf.adapters import grpc_server
from vnf.adapters.process import install_stop_signals, setup_logging
from vnf.api import common_pb2, orchestrator_pb2, orchestrator_pb2_grpc
from vnf.config import Endpoint
from vnf.errors import ConfigError, Conflict, NotFound
from vnf.lab.adapters import netlink
from vnf.lab.adapters.state import StateStore

log = logging.getLogger("orchestrator")
TICK_S = 0.5
KILL_EXIT_S = 5.0  # a SIGKILLed process is gone in milliseconds; this is only a bound
RESTART_WAIT_S = 5.0

_KINDS = {
    orchestrator_pb2.FAULT_KIND_KILL: FaultKind.KILL,
    orchestrator_pb2.FAULT_KIND_FREEZE: FaultKind.FREEZE,
    orchestrator_pb2.FAULT_KIND_LINK: FaultKind.LINK,
}


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
        self.faults = FaultBook(self.nodes)
        self.stopping = False
        self.done = asyncio.Event()
        self.wake = asyncio.Event()
        self.lock = asyncio.Lock()  # one Fail/Repair at a time
        self.store.save_faults(lab, [])

    async def run(self) -> None:
        """Reconcile every tick, and at once when a fault asks for it (a prompt restart).
        Health checks run on their own loop: a node that does not answer cannot delay this."""
        health = asyncio.create_task(self.check_health_loop())
        try:
            while not self.stopping:
                self.reconcile_now()
                self.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), TICK_S)
        finally:
            health.cancel()

    def reconcile_now(self) -> None:
        if self.stopping:
            return
        for name in self.backend.poll():
            # A frozen process that died (killed from outside) is frozen no more.
            if self.faults.forget_node(name, (FaultKind.FREEZE,)):
                self.save_faults()
        for action in reconcile(self.nodes, self.backend.observed, time.monotonic()):
            self.backend.start(action.node, action.restart)

    async def check_health_loop(self) -> None:
        while not self.stopping:
            await asyncio.gather(
                *(self.backend.check_health(n) for n in self.nodes if n.has_process)
            )
            await asyncio.sleep(TICK_S)

    def save_faults(self) -> None:
        self.store.save_faults(self.lab, self.faults.to_json())

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

    # -- faults ----------------------------------------------------------------------------

    async def Fail(  # noqa: N802
        self, request: orchestrator_pb2.Fault, context: grpc.aio.ServicerContext
    ) -> orchestrator_pb2.FaultReply:
        return await self._fault_call(self.fail, request, context)

    async def Repair(  # noqa: N802
        self, request: orchestrator_pb2.Fault, context: grpc.aio.ServicerContext
    ) -> orchestrator_pb2.FaultReply:
        return await self._fault_call(self.repair, request, context)

    async def _fault_call(
        self, handler: Any, request: orchestrator_pb2.Fault, context: grpc.aio.ServicerContext
    ) -> orchestrator_pb2.FaultReply:
        kind = _KINDS.get(request.kind)
        try:
            if kind is None:
                raise ConfigError("kind", "name the fault kind: KILL, FREEZE or LINK")
            fault = Fault(kind, request.node, request.peer, request.hold)
            if self.stopping:
                raise Conflict("the lab is shutting down")
            async with self.lock:
                reply: orchestrator_pb2.FaultReply = await handler(fault)
            return reply
        except NotFound as exc:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
        except ConfigError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, exc.message)
        except Conflict as exc:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        except OSError as exc:
            await context.abort(grpc.StatusCode.INTERNAL, f"{kind} {request.node}: {exc}")
        raise AssertionError("unreachable: abort raises")

    async def fail(self, fault: Fault) -> orchestrator_pb2.FaultReply:
        running = self.backend.pid(fault.node) != 0
        node, peer = self.faults.check_fail(fault, running)
        at_wall = time.time()
        if fault.kind is FaultKind.LINK:
            assert peer is not None
            await asyncio.to_thread(
                netlink.cut_path, node.netns, node.mgmt_ip, peer.netns, peer.mgmt_ip
            )
            detail = f"management path {node.name} <-> {peer.name} cut"
            active = ActiveFault(FaultKind.LINK, node.name, peer.name, 0, at_wall, detail)
            self.faults.add(active)
            self.save_faults()
            log.warning("fault: link cut", extra={"fields": {"node": node.name, "peer": peer.name}})
            return orchestrator_pb2.FaultReply(node=node.name, at_wall=at_wall, detail=detail)
        if fault.kind is FaultKind.FREEZE:
            pid = self.backend.freeze(node.name)
            detail = f"SIGSTOP to pid {pid}"
            self.faults.add(ActiveFault(FaultKind.FREEZE, node.name, "", pid, at_wall, detail))
            self.save_faults()
            return orchestrator_pb2.FaultReply(
                node=node.name, pid=pid, at_wall=at_wall, detail=detail
            )
        pid = self.backend.kill(node.name, fault.hold)
        if self.faults.forget_node(node.name, (FaultKind.FREEZE,)):
            self.backend.observed[node.name].frozen = False
        await self.backend.wait_exit(node.name, KILL_EXIT_S)
        if fault.hold:
            detail = f"SIGKILL to pid {pid}; held down until repair"
            self.faults.add(ActiveFault(FaultKind.KILL, node.name, "", pid, at_wall, detail))
        else:
            detail = f"SIGKILL to pid {pid}; restarting"
        self.save_faults()
        self.wake.set()
        return orchestrator_pb2.FaultReply(node=node.name, pid=pid, at_wall=at_wall, detail=detail)

    async def repair(self, fault: Fault) -> orchestrator_pb2.FaultReply:
        active = self.faults.check_repair(fault)
        at_wall = time.time()
        pid = 0
        if active.kind is FaultKind.LINK:
            node, peer = self.faults.node(active.node), self.faults.node(active.peer)
            await asyncio.to_thread(
                netlink.restore_path, node.netns, node.mgmt_ip, peer.netns, peer.mgmt_ip
            )
            detail = f"management path {node.name} <-> {peer.name} restored"
        elif active.kind is FaultKind.FREEZE:
            pid = self.backend.thaw(active.node)
            detail = f"SIGCONT to pid {pid}"
        else:
            self.backend.release(active.node)
            self.faults.remove(active)
            self.save_faults()
            self.wake.set()
            pid = await self._started(active.node, RESTART_WAIT_S)
            detail = f"restarted as pid {pid}" if pid else "restart pending"
            return orchestrator_pb2.FaultReply(
                node=active.node, pid=pid, at_wall=at_wall, detail=detail
            )
        self.faults.remove(active)
        self.save_faults()
        log.info("fault repaired", extra={"fields": {"node": active.node, "kind": active.kind}})
        return orchestrator_pb2.FaultReply(
            node=active.node, pid=pid, at_wall=at_wall, detail=detail
        )

    async def _started(self, name: str, timeout_s: float) -> int:
        end = time.monotonic() + timeout_s
        while self.backend.pid(name) == 0 and time.monotonic() < end:
            await asyncio.sleep(0.01)
        return self.backend.pid(name)

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
        self.wake.set()
        # Link cuts go with the namespaces; held nodes have no process; frozen ones are
        # resumed by the stop itself (SIGTERM, then SIGCONT).
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
