"""Session setup rate through the whole CUPS path, on a real lab.

PADI → PADO → PADR → PADS → LCP → PAP/CHAP → IPCP up → rule installed on the DP (acked) →
accounting start committed: the CP stamps the first PADI's receive time on the DP and the
start record's commit time. The emulator dials every subscriber as fast as the lab allows
(with BNG Blaster's default-like cap on sessions in setup). Each run hangs everything up and
dials again; the report gives, per run, the setup rate (sessions / (last established - first
PADI)), its min/avg/max over tenths of the dial, and the setup-time distribution — BNG
Blaster's "Setup Time" and "Setup Rate (MIN/AVG/MAX)" — then min/avg/max over runs.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from vnf.api import common_pb2
from vnf.emulator.traffic import distribution
from vnf.lab.adapters import lifecycle
from vnf.lab.adapters.clients import LabClient
from vnf.lab.adapters.operations import dial_and_wait
from vnf.lab.adapters.state import StateStore
from vnf.lab.topology import parse_topology


def run(subscribers: int = 2000, runs: int = 3, max_outstanding: int = 1000) -> dict[str, Any]:
    name = f"bench{secrets.token_hex(2)}"
    raw = {
        "name": name,
        "sites": [
            {
                "name": "site1",
                "subscribers": {"pppoe": subscribers},
                "modems": {"count": 0},
                "dial": {"autostart": False},
            }
        ],
    }
    lifecycle.up(parse_topology(raw), raw, "", timeout_s=120)
    results = []
    try:
        with LabClient(StateStore(), name) as client:
            seen = 0
            for _ in range(runs):
                outcome = dial_and_wait(client, max_outstanding=max_outstanding, timeout_s=180)
                setup = client.management().GetSetupReport(common_pb2.Empty(), timeout=30)
                established = list(setup.established_mono)[seen:]
                setup_ms = list(setup.setup_ms)[seen:]
                seen = len(setup.established_mono)
                first_padi = min(
                    (e - s / 1000.0 for e, s in zip(established, setup_ms, strict=True)),
                    default=0.0,
                )
                last = max(established, default=0.0)
                span = last - first_padi
                latency = distribution(setup_ms)
                results.append(
                    {
                        "sessions_established": len(established),
                        "sessions_up_client": outcome.up,
                        "sessions_failed": outcome.failed,
                        "failures": outcome.failures,
                        "setup_time_ms": round(span * 1000.0, 1),
                        "setup_rate": round(len(established) / span, 1) if span > 0 else 0.0,
                        "session_setup_ms": {
                            "min": round(latency.min, 1),
                            "avg": round(latency.avg, 1),
                            "p50": round(latency.p50, 1),
                            "p99": round(latency.p99, 1),
                            "max": round(latency.max, 1),
                        },
                    }
                )
                _hangup_all(client, subscribers)
    finally:
        lifecycle.down(name, cleanup=True)
    rates = [r["setup_rate"] for r in results]
    return {
        "benchmark": "session_setup_rate",
        "path": "PADI → IPCP up → rule acked by the DP → accounting start committed",
        "lab": "1 CP, 2 active DP workers + 1 standby, 1 emulator, 4 subscriber groups",
        "subscribers": subscribers,
        "max_outstanding": max_outstanding,
        "auth": "half CHAP-MD5, half PAP",
        "runs": results,
        "setup_rate_min": min(rates),
        "setup_rate_avg": round(sum(rates) / len(rates), 1),
        "setup_rate_max": max(rates),
    }


def _hangup_all(client: LabClient, subscribers: int) -> None:
    from vnf.api import emulator_pb2

    for node in client.nodes("emulator"):
        client.emulator(node).Hangup(emulator_pb2.HangupRequest(), timeout=10)
    end = time.monotonic() + 60
    while time.monotonic() < end:
        status = client.management().GetStatus(common_pb2.Empty(), timeout=10)
        if status.sessions == 0:
            return
        time.sleep(0.2)
    raise RuntimeError(f"sessions did not all end after hang-up ({subscribers} dialed)")


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
