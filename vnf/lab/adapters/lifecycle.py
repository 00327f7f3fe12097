"""``vnf lab up`` / ``vnf lab down``: realize a topology, start its orchestrator, wait until
every node serves; stop everything and remove exactly what was created.

Order of ``up``: allocate the lab (state file, index) → plan → record nodes → create
namespaces, bridges and links → write node configurations → provision the CPs' subscriber
stores → start the orchestrator daemon (which starts the nodes) → wait for health. Any
failure tears down what exists so far, unless the caller asks to keep it for inspection.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import grpc
import yaml

from control_plane.adapters.store import Store
from vnf import config as vnf_config
from vnf.adapters import grpc_server
from vnf.api import common_pb2, orchestrator_pb2, orchestrator_pb2_grpc
from vnf.errors import ConfigError, Conflict, NotFound, VnfError
from vnf.lab.adapters import netlink
from vnf.lab.adapters.state import (
    LabState,
    NodeRecord,
    StateStore,
    data_root,
    stop_process,
)
from vnf.lab.plan import LabPlan, NodeKind, plan_lab
from vnf.lab.subscribers import lab_modems, lab_subscribers
from vnf.lab.topology import Topology, default_topology, parse_topology
from vnf.model.cable import ProvisionedModem
from vnf.model.subscriber import AuthType, Subscriber

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


def load_topology(path: str | None) -> tuple[Topology, dict[str, Any]]:
    """Read and validate a topology file (None: the default lab)."""
    if not path:
        return default_topology(), {}
    try:
        text = pathlib.Path(path).read_text()
    except OSError as exc:
        raise ConfigError("", f"cannot read {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "yaml"
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(where, f"{path} is not valid YAML: {problem}") from None
    if data is None:
        data = {}
    return parse_topology(data), data


def require_root() -> None:
    if os.geteuid() != 0:
        raise VnfError("the lab creates network namespaces and links: run as root")


def up(
    topology: Topology,
    raw: dict[str, Any],
    topology_file: str = "",
    progress: Progress = _quiet,
    timeout_s: float = 90.0,
    keep_on_failure: bool = False,
    data_dir: str | None = None,
) -> LabState:
    require_root()
    store = StateStore()
    lab = topology.name
    directory = data_dir or str(data_root() / lab)
    state = store.allocate(lab, directory, topology_file, raw)
    try:
        plan = plan_lab(topology, state.index, directory, os.urandom(16).hex())
        state.nodes = [
            NodeRecord(n.name, str(n.kind), n.role, n.site, n.netns, n.mgmt_ip or "")
            for n in plan.nodes
        ]
        store.save(state)
        progress(f"lab {lab}: index {state.index}, management {plan.mgmt_subnet}")
        netlink.realize(plan, state, store, progress)
        _write_configs(plan, store)
        _provision(topology, plan)
        _start_orchestrator(store, state)
        progress("orchestrator started; waiting for every node to serve")
        wait_ready(store, lab, timeout_s, progress)
        state = store.load(lab)
        state.status = "up"
        store.save(state)
        return state
    except BaseException:
        state = _reload(store, lab, state)
        state.status = "failed"
        store.save(state)
        if not keep_on_failure:
            progress("bring-up failed: removing what was created")
            down(lab, progress=_quiet)
        raise


def _reload(store: StateStore, lab: str, fallback: LabState) -> LabState:
    try:
        return store.load(lab)
    except NotFound:
        return fallback


def _write_configs(plan: LabPlan, store: StateStore) -> None:
    pathlib.Path(plan.data_dir, "logs").mkdir(parents=True, exist_ok=True)
    for node in plan.nodes:
        if node.config is None:
            continue
        path = store.node_config_path(plan.lab, node.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Node configs hold the cookie secret: readable by root only.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(vnf_config.dumps(node.config))


def _provision(topology: Topology, plan: LabPlan) -> None:
    """Put the lab's subscribers and cable modems in every CP's store before the CPs start."""
    subscribers: list[Subscriber] = []
    for site_index, site in enumerate(topology.sites, start=1):
        spec = site.subscribers
        for s in lab_subscribers(
            spec.pppoe,
            spec.chap_share,
            spec.username,
            spec.password,
            site.name,
            plan.index,
            site_index,
        ):
            subscribers.append(
                Subscriber(s.username, s.password, AuthType(s.auth), spec.rate_profile)
            )
    modems = [
        ProvisionedModem(m.mac, site.modems.service_class)
        for site_index, site in enumerate(topology.sites, start=1)
        for m in lab_modems(site.modems.count, plan.index, site_index)
    ]
    for node in plan.nodes_of(NodeKind.CP):
        assert isinstance(node.config, vnf_config.CpConfig)
        store = Store(node.config.db_path)
        try:
            store.put_subscribers(subscribers)
            store.put_modems(modems)
        finally:
            store.close()


def _start_orchestrator(store: StateStore, state: LabState) -> None:
    logs = pathlib.Path(state.data_dir) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    argv = [
        sys.executable,
        "-m",
        "orchestrator.main",
        "--lab",
        state.lab,
        "--log",
        str(logs / "orchestrator.log"),
    ]
    env = dict(os.environ)
    env["VNF_RUNTIME_DIR"] = str(store.root.parent)
    with open(logs / "orchestrator.out", "ab") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            env=env,
        )
    store.record_process(state.lab, "orchestrator", proc.pid, argv)


def orchestrator_stub(store: StateStore, lab: str) -> tuple[grpc.Channel, Any]:
    channel = grpc_server.sync_channel(f"unix:{store.socket_path(lab)}")
    return channel, orchestrator_pb2_grpc.OrchestratorStub(channel)


def lab_status(store: StateStore, lab: str, timeout_s: float = 2.0) -> orchestrator_pb2.LabStatus:
    channel, stub = orchestrator_stub(store, lab)
    with channel:
        status: orchestrator_pb2.LabStatus = stub.GetStatus(common_pb2.Empty(), timeout=timeout_s)
        return status


def wait_ready(store: StateStore, lab: str, timeout_s: float, progress: Progress) -> None:
    end = time.monotonic() + timeout_s
    last = ""
    while True:
        try:
            status = lab_status(store, lab)
        except grpc.RpcError:
            status = None
        if status is not None:
            serving = sum(1 for n in status.nodes if n.health == "SERVING")
            total = sum(1 for n in status.nodes if n.grpc_address)
            line = f"nodes serving {serving}/{total}"
            if line != last:
                progress(line)
                last = line
            if status.ready:
                return
            failing = [n.name for n in status.nodes if n.restarts >= 2]
            if failing:
                logs = pathlib.Path(store.load(lab).data_dir) / "logs"
                raise VnfError(f"{', '.join(failing)} keep failing to start (see {logs})")
        if time.monotonic() > end:
            raise VnfError(f"lab {lab} not ready after {timeout_s:.0f} s (see its logs)")
        time.sleep(0.2)


def down(lab: str, progress: Progress = _quiet, cleanup: bool = False) -> list[str]:
    """Stop the lab's processes and remove what it recorded. Works after a crash."""
    require_root()
    store = StateStore()
    state = store.load(lab)
    state.status = "stopping"
    store.save(state)
    records = {r.name: r for r in store.processes(lab)}
    orchestrator = records.pop("orchestrator", None)
    if orchestrator is not None and orchestrator.alive():
        channel, stub = orchestrator_stub(store, lab)
        with channel, contextlib.suppress(grpc.RpcError):
            reply = stub.Shutdown(orchestrator_pb2.ShutdownRequest(deadline_s=10.0), timeout=60.0)
            progress(f"stopped {reply.stopped} processes")
        stop_process(orchestrator, deadline_s=10.0)
    for record in store.processes(lab):
        if record.name != "orchestrator" and stop_process(record):
            progress(f"stopped {record.name} (pid {record.pid})")
    removed = netlink.teardown(state, progress)
    progress(f"removed {len(removed)} namespaces and links")
    store.remove(lab)
    if cleanup:
        _remove_data_dir(state)
    return removed


def _remove_data_dir(state: LabState) -> None:
    path = pathlib.Path(state.data_dir)
    # Only what the lab wrote there: logs and the CP stores.
    if path.exists() and (path / "logs").exists():
        shutil.rmtree(path)


def attach(lab: str, site: str, netns_name: str, ifname: str) -> str:
    require_root()
    store = StateStore()
    state = store.load(lab)
    if len(ifname) > 15 or not ifname:
        raise ConfigError("--ifname", "interface names are 1..15 characters")
    record = netlink.attach(state, store, site, netns_name, ifname)
    return f"{record.ifname} in {record.netns} is on site {site}'s access segment"


def find_lab(store: StateStore, lab: str | None) -> str:
    labs = store.labs()
    if lab:
        if lab not in labs:
            raise NotFound(f"no lab named {lab!r} (running: {', '.join(labs) or 'none'})")
        return lab
    if not labs:
        raise NotFound("no lab is running (vnf lab up starts one)")
    if len(labs) > 1:
        raise Conflict(f"several labs are running ({', '.join(labs)}): name one with --lab")
    return labs[0]


def node_configs(store: StateStore, lab: str) -> dict[str, dict[str, Any]]:
    out = {}
    for path in sorted((store.lab_dir(lab) / "nodes").glob("*.json")):
        out[path.stem] = json.loads(path.read_text())
    return out
