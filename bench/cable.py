"""Cable modem registration rate, and 10,000 modems on one DP worker, on a real lab.

One site with one active DP worker and no standby, so every modem's rule lands on that one
worker; no PPPoE subscribers. The emulator brings every modem up as fast as the lab allows
(at most ``max_outstanding`` in setup at once): RNG-REQ → RNG-RSP → RNG-REQ → RNG-RSP →
REG-REQ → REG-RSP → REG-ACK → CPE DHCP DISCOVER/OFFER/REQUEST/ACK → rule acked by the DP.

Reported per run: the registration rate (modems / (last online - first RNG-REQ), the
emulator's clock), the setup-time distribution, and the resident memory of the CP and the DP
processes before the modems and with all of them online, per modem. RSS growth is an upper
bound for what the state costs (it includes allocator slack); the DP's tables are numpy
arrays allocated at start, so its growth is the pages the modems' slots touched.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from bench.machine import rss_bytes
from vnf.api import common_pb2, emulator_pb2, management_pb2
from vnf.lab.adapters import lifecycle
from vnf.lab.adapters.clients import LabClient
from vnf.lab.adapters.state import StateStore
from vnf.lab.topology import parse_topology


def _pids(store: StateStore, lab: str) -> dict[str, int]:
    return {p.name: p.pid for p in store.processes(lab)}


def run(
    modems: int = 10_000, max_outstanding: int = 1000, timeout_s: float = 300.0
) -> dict[str, Any]:
    name = f"bench{secrets.token_hex(2)}"
    raw = {
        "name": name,
        "control_plane": {"nodes": 1},
        "sites": [
            {
                "name": "site1",
                "data_plane": {"active": 1, "standby": 0},
                "pool": "100.64.0.0/16",
                "subscribers": {"pppoe": 0},
                "modems": {"count": modems},
                "dial": {"autostart": False},
            }
        ],
    }
    store = StateStore()
    lifecycle.up(parse_topology(raw), raw, "", timeout_s=120)
    try:
        pids = _pids(store, name)
        cp_pid, dp_pid = pids["cp-a"], pids["dp-site1-1"]
        with LabClient(store, name) as client:
            (emulator,) = client.nodes("emulator")
            emu = client.emulator(emulator)
            time.sleep(1.0)  # let the processes settle before the baseline
            before = {"cp": rss_bytes(cp_pid), "dp": rss_bytes(dp_pid)}
            request = emulator_pb2.DialRequest(count=0, max_outstanding=max_outstanding)
            emu.Dial(request, timeout=10)
            end = time.monotonic() + timeout_s
            while True:
                status = emu.GetStatus(common_pb2.Empty(), timeout=10)
                if not (status.connecting or status.queued) or time.monotonic() > end:
                    break
                time.sleep(0.2)
            cp_status = client.management().GetStatus(common_pb2.Empty(), timeout=10)
            time.sleep(1.0)  # usage reports and accounting settle
            after = {"cp": rss_bytes(cp_pid), "dp": rss_bytes(dp_pid)}
            pages = client.management().ListModems(management_pb2.ModemQuery(), timeout=60)
            rows = [m for page in pages for m in page.modems]
    finally:
        lifecycle.down(name, cleanup=True)
    online = [m for m in rows if m.state == "online" and m.cpe_ipv4]
    span = status.last_up_mono - status.first_start_mono
    per = {k: round((after[k] - before[k]) / max(1, len(online)), 1) for k in ("cp", "dp")}
    return {
        "benchmark": "cable_modem_registration",
        "path": "RNG-REQ → ranging → REG-REQ/RSP/ACK → CPE DHCP → rule acked by the DP",
        "lab": "1 CP, 1 active DP worker (no standby), 1 emulator, 4 subscriber groups",
        "modems": modems,
        "max_outstanding": max_outstanding,
        "modems_online_with_cpe": len(online),
        "cp_sessions": cp_status.sessions,
        "emulator_up": status.up,
        "emulator_failed": status.failed,
        "failures": dict(status.failures),
        "registration_time_s": round(span, 3),
        "registration_rate_per_s": round(status.up / span, 1) if span > 0 else 0.0,
        "setup_ms": {
            "min": round(status.setup_ms.min, 1),
            "avg": round(status.setup_ms.avg, 1),
            "p50": round(status.setup_ms.p50, 1),
            "p99": round(status.setup_ms.p99, 1),
            "max": round(status.setup_ms.max, 1),
        },
        "rss_bytes_before": before,
        "rss_bytes_after": after,
        "rss_bytes_per_modem": per,
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
