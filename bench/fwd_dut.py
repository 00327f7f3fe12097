"""Device under test of the forwarding benchmark: one DP worker, as the DP process runs it.

``python -m bench.fwd_dut --netns NS --access a0 --core c0 --sessions N --io ring --cpu 1 ...``

Enters the namespace, opens the ports there with the chosen I/O backend, installs N PPPoE
sessions in one subscriber group directly through the worker's rule API (the benchmark
measures forwarding, not setup; ``--qos-kbps`` gives every session that rate both ways, so
every frame goes through its token bucket), and runs the data-plane process's own runtime
(:class:`DpRuntime`: the forwarding thread pinned to ``--cpu``) until SIGTERM. Prints
``ready`` once it forwards, and its counters as JSON when it stops.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import signal
import sys

from data_plane.adapters.runtime import DpRuntime
from data_plane.io import open_port
from data_plane.worker import Worker, WorkerConfig
from vnf.adapters.process import enter_netns
from vnf.config import DP_IO_BACKENDS, DpConfig, Endpoint
from vnf.model.addresses import ip_to_int, parse_mac
from vnf.model.group import SubscriberGroup
from vnf.model.session import Qos, RuleOp, SessionRule, TrafficEndpoint

POOL = ipaddress.IPv4Network("100.64.0.0/12")
FIRST_ADDRESS = ip_to_int("100.64.0.2")
NO_QOS = Qos()


def client_mac(i: int) -> bytes:
    return bytes((0x02, 0x62, 0x00, (i >> 16) & 0xFF, (i >> 8) & 0xFF, i & 0xFF))


def sessions(
    count: int, group: SubscriberGroup, first_sid: int = 1, qos: Qos = NO_QOS
) -> list[SessionRule]:
    return [
        SessionRule(
            RuleOp.INSTALL,
            session_key=i + 1,
            group=group.group_id,
            endpoint=TrafficEndpoint(client_mac(i), group.virtual_mac, first_sid + i),
            ipv4=FIRST_ADDRESS + i,
            qos=qos,
        )
        for i in range(count)
    ]


async def run(args: argparse.Namespace) -> None:
    worker = Worker(
        WorkerConfig(
            name="bench-dut",
            core_mac=parse_mac(args.core_mac),
            core_ip=ip_to_int("198.18.101.1"),
            core_prefix_len=24,
            gateway_ip=ip_to_int("198.18.101.2"),
            gateway_mac=parse_mac(args.next_hop_mac),
            batch_size=args.batch,
        )
    )
    group = SubscriberGroup(1, "bench", parse_mac(args.group_mac), POOL)
    worker.assign_groups([group])
    qos = Qos(args.qos_kbps, args.qos_kbps)
    results, _ = worker.apply_rules(sessions(args.sessions, group, qos=qos))
    failed = [r for r in results if not r.ok]
    if failed:
        print(f"fwd_dut: {len(failed)} rules failed: {failed[0].error}", file=sys.stderr)
        raise SystemExit(1)
    config = DpConfig(
        name="bench-dut",
        lab="bench",
        site="bench",
        netns=args.netns,
        endpoint=Endpoint("127.0.0.1"),
        role="active",
        log_path="",
        access_ifname=args.access,
        core_ifname=args.core,
        access_mac=args.group_mac,
        core_mac=args.core_mac,
        core_ip="198.18.101.1",
        core_prefix_len=24,
        core_gateway="198.18.101.2",
        cp_addresses=(),
        batch_size=args.batch,
        io=args.io,
        cpu=args.cpu,
    )
    access = open_port(args.io, args.access)
    core = open_port(args.io, args.core)
    runtime = DpRuntime(config, worker, access, core)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    runtime.start_io()
    print("ready", flush=True)
    await stop.wait()
    runtime.stop_io()
    counters = worker.counters()
    report = {
        "forwarded_up": counters["forwarded_up"],
        "forwarded_down": counters["forwarded_down"],
        "rate_limited": counters["drop_up_rate_limited"] + counters["drop_down_rate_limited"],
        "worker_cpu_s": round(runtime.forwarder.cpu_seconds(), 3),
        "kernel_drops": sum(int(getattr(p, "kernel_drops", 0)) for p in (access, core)),
        "batches": runtime.forwarder.stats.access.batches + runtime.forwarder.stats.core.batches,
        "frames": runtime.forwarder.stats.access.frames + runtime.forwarder.stats.core.frames,
    }
    print(json.dumps(report), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--netns", required=True)
    parser.add_argument("--access", required=True)
    parser.add_argument("--core", required=True)
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--group-mac", required=True)
    parser.add_argument("--core-mac", required=True)
    parser.add_argument("--next-hop-mac", required=True)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--cpu", type=int, default=None, help="the forwarding thread's CPU")
    parser.add_argument("--io", choices=DP_IO_BACKENDS, default="ring")
    parser.add_argument("--qos-kbps", type=int, default=0, help="every session's rate, 0: none")
    args = parser.parse_args()
    enter_netns(args.netns)
    if args.cpu is not None:
        # The control side (idle here) keeps off the forwarding thread's CPU when it can.
        others = os.sched_getaffinity(0) - {args.cpu}
        if others:
            os.sched_setaffinity(0, others)
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
