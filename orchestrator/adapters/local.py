"""Local process backend: each node is an OS process in its own network namespace.

Processes are started with ``python -m <module> --config <node.json>``; the node enters its
namespace itself before it starts any thread. Every PID is recorded (with its start time) in
the lab's state directory the moment it exists, so ``vnf lab down`` can stop exactly these
processes even if the orchestrator is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pathlib
import signal
import subprocess
import sys
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from orchestrator.model import NodeSpec
from orchestrator.reconcile import Observed
from vnf.adapters import grpc_server
from vnf.config import GRPC_PORT
from vnf.lab.adapters.state import StateStore

log = logging.getLogger("orchestrator")


class LocalBackend:
    def __init__(self, store: StateStore, lab: str, data_dir: str) -> None:
        self.store = store
        self.lab = lab
        self.logs = pathlib.Path(data_dir) / "logs"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.observed: dict[str, Observed] = {}
        self.health: dict[str, str] = {}
        self._channels: dict[str, grpc.aio.Channel] = {}

    def start(self, node: NodeSpec, restart: bool) -> None:
        config = self.store.node_config_path(self.lab, node.name)
        argv = [sys.executable, "-m", node.module, "--config", str(config)]
        self.logs.mkdir(parents=True, exist_ok=True)
        out = open(self.logs / f"{node.name}.out", "ab")  # noqa: SIM115 (owned by the child)
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C on the CLI must not reach the lab
                close_fds=True,
            )
        finally:
            out.close()
        self.store.record_process(self.lab, node.name, proc.pid, argv)
        self.procs[node.name] = proc
        seen = self.observed.setdefault(node.name, Observed())
        seen.running = True
        seen.started_at = time.monotonic()
        seen.exit_code = None
        seen.stopped_on_purpose = False
        seen.killed_on_purpose = False
        seen.held = False
        seen.frozen = False
        if restart:
            seen.restarts += 1
        self.health[node.name] = "UNKNOWN"
        log.info(
            "started",
            extra={"fields": {"node": node.name, "pid": proc.pid, "restart": restart}},
        )

    def poll(self) -> list[str]:
        """Reap exited children; returns the names that exited since the last poll."""
        exited = []
        now = time.monotonic()
        for name, proc in list(self.procs.items()):
            code = proc.poll()
            if code is None:
                continue
            del self.procs[name]
            seen = self.observed[name]
            seen.running = False
            seen.exit_code = code
            seen.exited_at = now
            self.health[name] = "NOT_SERVING"
            seen.frozen = False
            if seen.killed_on_purpose:
                log.info("killed", extra={"fields": {"node": name, "held": seen.held}})
            elif not seen.stopped_on_purpose:
                seen.recent_failures.append(now)
                log.warning("exited", extra={"fields": {"node": name, "code": code}})
            exited.append(name)
        return exited

    # -- faults: signals to the recorded process (the Popen handle never signals a reaped pid)

    def kill(self, name: str, hold: bool) -> int:
        """SIGKILL the node's process (a KILL fault). Returns its pid."""
        proc = self.procs[name]
        seen = self.observed[name]
        seen.killed_on_purpose = True
        seen.held = hold
        log.warning("fault: kill", extra={"fields": {"node": name, "pid": proc.pid, "hold": hold}})
        proc.send_signal(signal.SIGKILL)
        return proc.pid

    async def wait_exit(self, name: str, timeout_s: float) -> bool:
        """Wait until the node's process has exited (and reap it), up to ``timeout_s``."""
        proc = self.procs.get(name)
        end = time.monotonic() + timeout_s
        while proc is not None and proc.poll() is None:
            if time.monotonic() > end:
                return False
            await asyncio.sleep(0.005)
        self.poll()
        return True

    def release(self, name: str) -> None:
        """Repair of a held kill: the node may start again, at once."""
        seen = self.observed[name]
        seen.held = False
        seen.killed_on_purpose = True

    def freeze(self, name: str) -> int:
        proc = self.procs[name]
        self.observed[name].frozen = True
        self.health[name] = "UNKNOWN"
        log.warning("fault: freeze", extra={"fields": {"node": name, "pid": proc.pid}})
        proc.send_signal(signal.SIGSTOP)
        return proc.pid

    def thaw(self, name: str) -> int:
        proc = self.procs.get(name)
        self.observed[name].frozen = False
        if proc is None:
            return 0
        log.info("fault repaired: thaw", extra={"fields": {"node": name, "pid": proc.pid}})
        proc.send_signal(signal.SIGCONT)
        return proc.pid

    def pid(self, name: str) -> int:
        proc = self.procs.get(name)
        return proc.pid if proc is not None else 0

    async def check_health(self, node: NodeSpec) -> str:
        seen = self.observed.get(node.name)
        if node.name not in self.procs or (seen is not None and seen.frozen):
            # A frozen node cannot answer: its last known health stands, nothing acts on it.
            return self.health.get(node.name, "UNKNOWN")
        channel = self._channels.get(node.name)
        if channel is None:
            channel = grpc_server.channel(f"{node.mgmt_ip}:{GRPC_PORT}")
            self._channels[node.name] = channel
        try:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=1.0
            )
            status = str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))
        except grpc.aio.AioRpcError:
            status = "UNKNOWN"
        self.health[node.name] = status
        return status

    async def stop(self, nodes: list[NodeSpec], deadline_s: float) -> int:
        """SIGTERM the nodes, wait up to the deadline, SIGKILL what is left. Returns count."""
        targets = [(n, self.procs[n.name]) for n in nodes if n.name in self.procs]
        for node, proc in targets:
            seen = self.observed[node.name]
            seen.stopped_on_purpose = True
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
                if seen.frozen:  # let a frozen node see the SIGTERM now
                    proc.send_signal(signal.SIGCONT)
                    seen.frozen = False
        end = time.monotonic() + deadline_s
        while any(p.poll() is None for _, p in targets) and time.monotonic() < end:
            await asyncio.sleep(0.05)
        for node, proc in targets:
            if proc.poll() is None:
                log.warning("killing", extra={"fields": {"node": node.name, "pid": proc.pid}})
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait()
            self.store.forget_process(self.lab, node.name)
        self.poll()
        return len(targets)

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
