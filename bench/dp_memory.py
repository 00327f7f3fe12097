"""Data-plane memory per session: 64,000 PPPoE sessions, and as many DOCSIS modems, on one
worker.

Each point runs in a fresh interpreter (``python -m bench.dp_memory --child pppoe 64000``),
so nothing the parent allocated counts. The child builds a :class:`~data_plane.worker.Worker`
as ``data_plane/main.py`` does (WorkerConfig defaults: 16 groups at most, 256-frame batches,
pools up to 2^20 addresses), assigns the lab's default 4 subscriber groups (one /16 pool
each) and measures its resident memory (``/proc/self/statm``) with no session; then it
installs the sessions through :meth:`~data_plane.worker.Worker.apply_rules` in the DP
runtime's chunks (``RULE_CHUNK`` rules a call), every one with a realistic QoS profile (100
Mbit/s down, 20 Mbit/s up), drops its own references to the rules, collects garbage and
measures again:

    bytes/session = (RSS with N sessions - RSS with none) / N

A third measurement follows one downstream packet per session (the counters' pages are
touched by traffic, not by the install). Next to the RSS figures, the two parts the state is
made of:

* the tables' numpy arrays: their allocated size (``.nbytes``; allocated once at start with
  ``np.zeros``, so only the pages the slots in use touch become resident) and the pages the
  N sessions' slots occupy in every per-slot array (what they cost once each has carried
  traffic both ways);
* the Python objects the session table keeps per session (the rule, its endpoint and QoS,
  the key → slot and key → address-index dicts): their deep ``sys.getsizeof``.

What RSS shows beyond the two is allocator slack, and huge pages: numpy advises
``MADV_HUGEPAGE`` for its allocations of 4 MiB and more, so with the kernel's transparent
huge pages in ``madvise`` or ``always`` mode a table page the sessions touch commits 2 MiB,
not 4 KiB. The report gives the process's ``AnonHugePages`` at each reading, and a third
point repeats the PPPoE one with ``NUMPY_MADVISE_HUGEPAGE=0`` to show what that costs.
DOCSIS uses 14-bit SIDs per group (16,383 at most), so its point uses as many groups as
needed (4 for 64,000 modems).
"""

from __future__ import annotations

import argparse
import enum
import gc
import ipaddress
import json
import os
import pathlib
import subprocess
import sys
from collections.abc import Iterable
from typing import Any

import numpy as np

from bench.machine import rss_bytes
from bench.qos import CORE_MAC, ETHERTYPE_IPV4, GW_MAC, SERVER, ipv4_packet, session_rule
from data_plane.adapters.forwarder import RULE_CHUNK
from data_plane.tables import MAX_SESSION_ID, MAX_SID
from data_plane.worker import Worker, WorkerConfig
from vnf.model.addresses import ip_to_int
from vnf.model.group import SubscriberGroup
from vnf.model.session import AccessType, Qos

GROUPS = 4
"""The lab's default subscriber groups per site."""
POOL = ipaddress.IPv4Network("100.64.0.0/12")
GROUP_PREFIX = 16
PROFILE = (20_000, 100_000)
"""kbit/s up, down: every session's QoS."""
PAGE = os.sysconf("SC_PAGE_SIZE")
KINDS = {"pppoe": AccessType.PPPOE, "docsis": AccessType.DOCSIS}
POINTS = (
    ("pppoe", "pppoe", None),
    ("docsis", "docsis", None),
    ("pppoe_numpy_hugepage_off", "pppoe", "0"),
)
"""(name, access, NUMPY_MADVISE_HUGEPAGE): the last point without numpy's huge page advice."""


def groups_for(access: AccessType, sessions: int) -> list[SubscriberGroup]:
    """GROUPS groups, or as many as ``sessions`` need (SIDs: 14 bits; pools: a /16 each)."""
    pool_room = (1 << (32 - GROUP_PREFIX)) - 3  # network, gateway, broadcast
    per_group = min(MAX_SID if access is AccessType.DOCSIS else MAX_SESSION_ID, pool_room)
    count = max(GROUPS, -(-sessions // per_group))
    pools = POOL.subnets(new_prefix=GROUP_PREFIX)
    return [
        SubscriberGroup(g + 1, "bench", bytes.fromhex(f"0200000001{g + 1:02x}"), next(pools))
        for g in range(count)
    ]


def dp_worker() -> Worker:
    """As ``data_plane/main.py`` builds it: everything but the addresses defaulted."""
    return Worker(
        WorkerConfig(
            name="dp-bench",
            core_mac=CORE_MAC,
            core_ip=ip_to_int("198.18.0.2"),
            core_prefix_len=24,
            gateway_ip=ip_to_int("198.18.0.1"),
        )
    )


def deep_size(roots: Iterable[object]) -> int:
    """``sys.getsizeof`` of everything reachable from ``roots``, each object once (classes
    and enum members are shared by every session: not counted)."""
    seen: set[int] = set()
    total = 0
    stack = list(roots)
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, type | enum.Enum):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        stack.extend(gc.get_referents(obj))
    return total


def table_arrays(worker: Worker) -> dict[str, np.ndarray]:
    tables = worker.sessions
    owners = {
        "sessions": tables,
        "sessions.qos_up": tables.qos_up,
        "sessions.qos_down": tables.qos_down,
        "groups": worker.groups,
    }
    return {
        f"{prefix}.{name}": value
        for prefix, owner in owners.items()
        for name, value in vars(owner).items()
        if isinstance(value, np.ndarray)
    }


def touched_bytes(array: np.ndarray, rows: np.ndarray) -> int:
    """The pages (``SC_PAGE_SIZE``) that ``rows`` of ``array`` occupy."""
    if not len(rows):
        return 0
    start = array.ctypes.data + rows * array.strides[0]
    end = start + array[0].nbytes - 1
    return len(np.union1d(start // PAGE, end // PAGE)) * PAGE


def anon_huge_bytes() -> int:
    """This process's memory in transparent huge pages (/proc/self/smaps_rollup)."""
    for line in pathlib.Path("/proc/self/smaps_rollup").read_text().splitlines():
        if line.startswith("AnonHugePages:"):
            return int(line.split()[1]) * 1024
    return 0


def thp_mode() -> str:
    """The kernel's transparent huge page mode (the bracketed word), or "" without THP."""
    try:
        text = pathlib.Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
    except OSError:
        return ""
    return text[text.find("[") + 1 : text.find("]")]


def _downstream_packets(worker: Worker, ips: np.ndarray) -> int:
    """One core packet to every address in ``ips``, a batch at a time: how many forwarded."""
    batch = worker.new_batch()
    frame = CORE_MAC + GW_MAC + ETHERTYPE_IPV4.to_bytes(2, "big") + ipv4_packet(SERVER, 0, 46)
    template = np.frombuffer(frame, dtype=np.uint8)
    h, forwarded = batch.headroom, 0
    for first in range(0, len(ips), batch.capacity):
        chunk = ips[first : first + batch.capacity]
        n = len(chunk)
        batch.buf[:n, h : h + len(template)] = template
        # The destination address (the fast path does not verify the header checksum).
        batch.buf[:n, h + 30 : h + 34] = chunk.astype(">u4").view(np.uint8).reshape(n, 4)
        batch.lengths[:n] = len(template)
        batch.count, batch.rx_ns = n, 1_000_000_000 + first
        forwarded += worker.process_core(batch).to_access.count
    return forwarded


def measure(kind: str, sessions: int) -> dict[str, Any]:
    """The child's measurement (see the module docstring)."""
    access = KINDS[kind]
    gc.collect()
    rss_start = rss_bytes()
    worker = dp_worker()
    groups = groups_for(access, sessions)
    worker.assign_groups(groups)
    gc.collect()
    rss = {"worker_no_sessions": (rss_bytes(), anon_huge_bytes())}
    per_group = -(-sessions // len(groups))
    for first in range(0, sessions, RULE_CHUNK):
        rules = [
            session_rule(access, i + 1, i % per_group + 1, groups[i // per_group], Qos(*PROFILE))
            for i in range(first, min(first + RULE_CHUNK, sessions))
        ]
        results, _ = worker.apply_rules(rules)
        if not all(r.ok for r in results):
            raise RuntimeError(f"rules refused: {[r for r in results if not r.ok][:3]}")
        del rules, results
    gc.collect()
    rss["installed"] = (rss_bytes(), anon_huge_bytes())
    tables = worker.sessions
    slots = np.array([tables.slot_of(k) for k in tables.session_keys()], dtype=np.int64)
    forwarded = _downstream_packets(worker, tables.ipv4[slots])
    gc.collect()
    rss["after_one_packet_each"] = (rss_bytes(), anon_huge_bytes())
    empty = rss["worker_no_sessions"][0]
    arrays = _array_costs(worker, slots)
    python = deep_size([tables._slot_of_key, tables._rules, tables._pool_index])
    touched = sum(a["touched_by_sessions"] for a in arrays.values())
    return {
        "access": kind,
        "sessions": worker.session_count,
        "groups": len(groups),
        "qos_kbps": {"up": PROFILE[0], "down": PROFILE[1]},
        "numpy_madvise_hugepage": os.environ.get("NUMPY_MADVISE_HUGEPAGE", "default (on)"),
        "transparent_hugepage": thp_mode(),
        "rss_bytes": {"interpreter_and_imports": rss_start, **{k: v[0] for k, v in rss.items()}},
        "anon_huge_bytes": {k: v[1] for k, v in rss.items()},
        "bytes_per_session": round((rss["installed"][0] - empty) / sessions, 1),
        "bytes_per_session_after_traffic": round(
            (rss["after_one_packet_each"][0] - empty) / sessions, 1
        ),
        "downstream_forwarded": forwarded,
        "arrays_allocated_bytes": sum(a["nbytes"] for a in arrays.values()),
        "arrays_touched_bytes": touched,
        "arrays_touched_bytes_per_session": round(touched / sessions, 1),
        "python_objects_bytes": python,
        "python_objects_bytes_per_session": round(python / sessions, 1),
        "arrays": arrays,
    }


def _array_costs(worker: Worker, slots: np.ndarray) -> dict[str, dict[str, int]]:
    """Per table array: allocated bytes, and the (base) pages the sessions' ``slots`` occupy
    in it (arrays not indexed by slot count nothing: small or made with np.full, they are
    resident from the start)."""
    tables = worker.sessions
    size = len(tables.valid)
    costs = {}
    for name, array in table_arrays(worker).items():
        if array.ndim and array.shape[0] == size:
            touched = touched_bytes(array, slots)
        elif name == "sessions.docsis_encap":
            touched = touched_bytes(array, slots[slots >= tables.docsis_base] - tables.docsis_base)
        else:
            touched = 0
        costs[name] = {"nbytes": int(array.nbytes), "touched_by_sessions": touched}
    return costs


def run(sessions: int = 64_000) -> dict[str, Any]:
    root = pathlib.Path(__file__).resolve().parent.parent
    points = {}
    for name, kind, hugepage in POINTS:
        env = dict(os.environ)
        if hugepage is not None:
            env["NUMPY_MADVISE_HUGEPAGE"] = hugepage
        child = subprocess.run(
            [sys.executable, "-m", "bench.dp_memory", "--child", kind, str(sessions)],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        points[name] = json.loads(child.stdout)
    return {
        "benchmark": "dp_memory_per_session",
        "method": (
            "fresh interpreter per point; RSS (/proc/self/statm) of a default Worker with its "
            "groups assigned, before and after installing N sessions via apply_rules "
            "(gc.collect() before each reading); bytes/session = delta / N"
        ),
        "sessions": sessions,
        "bytes_per_session": {name: p["bytes_per_session"] for name, p in points.items()},
        "points": points,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", choices=sorted(KINDS), help="measure one point here")
    parser.add_argument("sessions", type=int, nargs="?", default=64_000)
    args = parser.parse_args(argv)
    report = measure(args.child, args.sessions) if args.child else run(args.sessions)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
