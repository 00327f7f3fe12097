"""The lab's state file: what a lab created, so that every command finds it and ``down``
removes exactly that, even after a crash (DESIGN.md §8).

Layout under the runtime directory (default ``/run/vnf``, ``VNF_RUNTIME_DIR`` overrides)::

    labs/.lock                 flock held while a lab is allocated or its state rewritten
    labs/<lab>/state.json      LabState: index, status, recorded namespaces and root links
    labs/<lab>/pids/<node>.json one file per process started for the lab (pid + start time)
    labs/<lab>/nodes/<node>.json the node's configuration
    labs/<lab>/orchestrator.sock the orchestrator's gRPC socket
    labs/<lab>/faults.json     active faults (held kills, freezes, link cuts), by the orchestrator

Resources are recorded *before* they are created, so a crash between the two leaves a record
of something that may not exist (``down`` tolerates that) and never the reverse.

The lab's data directory (default ``/var/lib/vnf/<lab>``, ``VNF_DATA_DIR`` overrides the
parent) holds logs and the SQLite store and outlives ``down`` unless ``--cleanup`` is given,
as containerlab keeps its lab directory.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import pathlib
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from vnf.errors import Conflict, NotFound

DEFAULT_RUNTIME_DIR = "/run/vnf"
DEFAULT_DATA_DIR = "/var/lib/vnf"


def runtime_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get("VNF_RUNTIME_DIR", DEFAULT_RUNTIME_DIR))


def data_root() -> pathlib.Path:
    return pathlib.Path(os.environ.get("VNF_DATA_DIR", DEFAULT_DATA_DIR))


@dataclass
class RootLink:
    ifname: str
    mac: str


@dataclass
class NodeRecord:
    name: str
    kind: str
    role: str
    site: str
    netns: str
    mgmt_ip: str


@dataclass
class Attachment:
    site: str
    netns: str
    ifname: str
    fabric_ifname: str
    created_netns: bool


@dataclass
class LabState:
    lab: str
    index: int
    status: str  # creating, up, stopping, failed
    created_at: float
    data_dir: str
    topology_file: str = ""
    topology: dict[str, Any] = field(default_factory=dict)
    namespaces: list[str] = field(default_factory=list)
    root_links: list[RootLink] = field(default_factory=list)
    nodes: list[NodeRecord] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    mgmt_subnet: str = ""
    root_mgmt_ip: str = ""
    fabric_ns: str = ""

    @staticmethod
    def from_json(data: dict[str, Any]) -> LabState:
        data = dict(data)
        data["root_links"] = [RootLink(**x) for x in data.get("root_links", [])]
        data["nodes"] = [NodeRecord(**x) for x in data.get("nodes", [])]
        data["attachments"] = [Attachment(**x) for x in data.get("attachments", [])]
        return LabState(**data)


@dataclass(frozen=True)
class ProcessRecord:
    name: str
    pid: int
    starttime: int
    argv: list[str]

    def alive(self) -> bool:
        """True only if this very process (pid *and* start time) still runs."""
        return process_starttime(self.pid) == self.starttime


def process_starttime(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (start time in clock ticks), None if no such process."""
    try:
        text = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    rest = text[text.rfind(")") + 2 :].split()
    try:
        if rest[0] == "Z":
            return None  # a zombie is dead; only its parent's wait() is missing
        return int(rest[19])
    except (IndexError, ValueError):
        return None


class StateStore:
    """All labs' state under one runtime directory."""

    def __init__(self, root: pathlib.Path | None = None) -> None:
        self.root = (root or runtime_dir()) / "labs"

    def lab_dir(self, lab: str) -> pathlib.Path:
        return self.root / lab

    def state_path(self, lab: str) -> pathlib.Path:
        return self.lab_dir(lab) / "state.json"

    def socket_path(self, lab: str) -> pathlib.Path:
        return self.lab_dir(lab) / "orchestrator.sock"

    def node_config_path(self, lab: str, node: str) -> pathlib.Path:
        return self.lab_dir(lab) / "nodes" / f"{node}.json"

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def labs(self) -> list[str]:
        if not self.root.exists():
            return []
        return sorted(p.parent.name for p in self.root.glob("*/state.json"))

    def allocate(
        self, lab: str, data_dir: str, topology_file: str, topology: dict[str, Any]
    ) -> LabState:
        """Create the state of a new lab with the lowest free index (0..255)."""
        with self.locked():
            if self.state_path(lab).exists():
                raise Conflict(f"lab {lab!r} already exists (vnf lab down --lab {lab} removes it)")
            used = set()
            for other in self.labs():
                with contextlib.suppress(NotFound, ValueError, KeyError):
                    used.add(self._read(other).index)
            free = [i for i in range(256) if i not in used and not _root_link_exists(i)]
            if not free:
                raise Conflict("256 labs exist on this machine; remove one first")
            state = LabState(
                lab=lab,
                index=free[0],
                status="creating",
                created_at=time.time(),
                data_dir=data_dir,
                topology_file=topology_file,
                topology=topology,
            )
            self._write(state)
            return state

    def load(self, lab: str) -> LabState:
        return self._read(lab)

    def save(self, state: LabState) -> None:
        with self.locked():
            self._write(state)

    def remove(self, lab: str) -> None:
        directory = self.lab_dir(lab)
        for sub in ("pids", "nodes"):
            for path in (directory / sub).glob("*.json"):
                path.unlink(missing_ok=True)
            with contextlib.suppress(FileNotFoundError, OSError):
                (directory / sub).rmdir()
        for name in ("state.json", "faults.json", "orchestrator.sock", "orchestrator.log"):
            (directory / name).unlink(missing_ok=True)
        with contextlib.suppress(FileNotFoundError, OSError):
            directory.rmdir()

    def _read(self, lab: str) -> LabState:
        path = self.state_path(lab)
        try:
            return LabState.from_json(json.loads(path.read_text()))
        except FileNotFoundError:
            raise NotFound(f"no lab named {lab!r} (vnf lab up starts one)") from None
        except (json.JSONDecodeError, TypeError) as exc:
            raise NotFound(f"state of lab {lab!r} is unreadable: {exc}") from None

    def _write(self, state: LabState) -> None:
        path = self.state_path(state.lab)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(dataclasses.asdict(state), indent=2))
        os.replace(tmp, path)

    # -- active faults (written by the orchestrator, read by `vnf lab status`) ---------------

    def faults_path(self, lab: str) -> pathlib.Path:
        return self.lab_dir(lab) / "faults.json"

    def save_faults(self, lab: str, faults: list[dict[str, Any]]) -> None:
        path = self.faults_path(lab)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(faults, indent=2))
        os.replace(tmp, path)

    def faults(self, lab: str) -> list[dict[str, Any]]:
        """The lab's active faults as the orchestrator last recorded them (none: [])."""
        try:
            data = json.loads(self.faults_path(lab).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return []
        return [f for f in data if isinstance(f, dict)] if isinstance(data, list) else []

    # -- processes -------------------------------------------------------------------------

    def record_process(self, lab: str, name: str, pid: int, argv: list[str]) -> ProcessRecord:
        start = process_starttime(pid)
        record = ProcessRecord(name, pid, start if start is not None else -1, argv)
        path = self.lab_dir(lab) / "pids" / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(dataclasses.asdict(record)))
        os.replace(tmp, path)
        return record

    def forget_process(self, lab: str, name: str) -> None:
        (self.lab_dir(lab) / "pids" / f"{name}.json").unlink(missing_ok=True)

    def processes(self, lab: str) -> list[ProcessRecord]:
        records = []
        for path in sorted((self.lab_dir(lab) / "pids").glob("*.json")):
            with contextlib.suppress(json.JSONDecodeError, TypeError, FileNotFoundError):
                records.append(ProcessRecord(**json.loads(path.read_text())))
        return records


def _root_link_exists(index: int) -> bool:
    return pathlib.Path(f"/sys/class/net/vnf{index}-mgmt").exists()


def stop_process(record: ProcessRecord, deadline_s: float = 5.0) -> bool:
    """SIGTERM, wait, then SIGKILL the recorded process — only if it is still that process."""
    if not record.alive():
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(record.pid, signal.SIGTERM)
        os.kill(record.pid, signal.SIGCONT)  # a frozen (FREEZE fault) process must see it now
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if not record.alive():
            return True
        time.sleep(0.05)
    if record.alive():
        with contextlib.suppress(ProcessLookupError):
            os.kill(record.pid, signal.SIGKILL)
        end = time.monotonic() + 2.0
        while record.alive() and time.monotonic() < end:
            time.sleep(0.02)
    return True
