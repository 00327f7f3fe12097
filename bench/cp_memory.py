"""Control-plane memory per session at 100,000 sessions, created in-process.

The real ControlPlane negotiates every session with real client engines (PADI … IPCP, half
CHAP, half PAP) through the in-process lab (no sockets), in batches; clients are dropped as
soon as their session is up so that only the CP's state remains. Memory is what tracemalloc
sees allocated by the time all sessions are ACTIVE, minus what it saw before the first dial,
divided by the number of sessions; the process's RSS growth is reported next to it.
"""

from __future__ import annotations

import dataclasses
import gc
import time
import tracemalloc
from typing import Any

from bench.machine import rss_bytes
from control_plane.sessions import SessionState
from vnf.config import CpConfig
from vnf.emulator.fleet import SubscriberState
from vnf.lab.inprocess import InProcessLab


def run(sessions: int = 100_000, batch: int = 2000) -> dict[str, Any]:
    def quiet(config: CpConfig) -> CpConfig:
        # No keepalives or interims during the measurement: only the sessions' state counts.
        return dataclasses.replace(config, echo_interval_s=3600.0, interim_interval_s=86400.0)

    lab = InProcessLab(
        topology={
            "sites": [
                {
                    "name": "site1",
                    "pool": "100.64.0.0/13",
                    "groups": 8,
                    "subscribers": {"pppoe": sessions},
                    "modems": {"count": 0},
                }
            ],
        },
        config_edit=quiet,
    )
    gc.collect()
    tracemalloc.start()
    base_traced, _ = tracemalloc.get_traced_memory()
    base_rss = rss_bytes()
    started = time.perf_counter()
    done = 0
    subscribers = lab.fleet.subscribers
    while done < sessions:
        first = done
        lab.fleet.dial(min(batch, sessions - done), 0, batch, lab.clock())
        for _ in range(200):
            lab.step()
            lab.advance(0.005)
            if lab.fleet.counts[SubscriberState.CONNECTING] == 0 and not lab.fleet.outbox:
                break
        lab.drain_accounting()
        for sub in subscribers[first : first + batch]:
            sub.client = None  # the client's memory is not the CP's
        done = lab.fleet.counts[SubscriberState.UP] + lab.fleet.counts[SubscriberState.FAILED]
    elapsed = time.perf_counter() - started
    lab.cp.accounting.clear()
    lab.cp.starts.clear()
    gc.collect()
    traced, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    active = lab.cp.sessions.counts[SessionState.ACTIVE]
    return {
        "benchmark": "cp_memory_per_session",
        "method": "tracemalloc (and RSS) delta of the CP holding N ACTIVE sessions in-process",
        "sessions": sessions,
        "active": active,
        "failed": lab.fleet.counts[SubscriberState.FAILED],
        "bytes_per_session": round((traced - base_traced) / max(1, active)),
        "rss_bytes_per_session": round((rss_bytes() - base_rss) / max(1, active)),
        "cp_and_clients_sessions_per_s": round(active / elapsed, 1),
        "elapsed_s": round(elapsed, 1),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
