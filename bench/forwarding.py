"""Forwarding benchmark: one DP worker next to Linux kernel IPv4 forwarding, same path, same run.

    gen ns [g0] ══veth══ [a0] dut ns [c0] ══veth══ [s0] sink ns

* kernel: the DUT namespace forwards IPv4 (gen → a0 → c0 → sink) with ip_forward=1, a static
  route and a permanent neighbour for the next hop.
* dp upstream: the generator sends PPPoE session frames for N installed sessions to the
  group's virtual MAC; the worker decapsulates and sends IPv4 out c0.
* dp downstream: the generator (in the sink namespace) sends IPv4 to the worker's core MAC
  for the sessions' addresses; the worker encapsulates and sends PPPoE out a0.

The generator (``bench/gen/pktgen``, C, sendmmsg) is pinned to CPU 0, the worker to CPU 1.
Placement of the DUT's receive work ("rx"), recorded in the report:

* ``napi`` (default, the fair one): GRO on the DUT's ingress veths, TSO off on their peers,
  threaded NAPI with the ``napi/<dev>`` kthreads pinned to CPU 1 — everything the DUT does,
  kernel forwarding or worker plus its receive softirq, runs on CPU 1, and the generator
  has CPU 0 to itself (the prototype's "router work on its own core" reference).
* ``inline`` (veth's default): a frame's receive work runs on the sender's CPU, so the kernel
  figure becomes "generator + forwarding on CPU 0" while the worker's receive softirq runs
  on the generator's CPU too.
Delivered pps is the sink interface's rx_packets (netlink) over the steady part of each run;
every case runs ``repeat`` times, interleaved, and the median is reported. Only 198.18.0.0/15
and 100.64.0.0/10 addresses and 02:62:… MACs are used; nothing connects to the root namespace.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pyroute2 import NetNS, netns

from vnf.adapters.process import in_netns, write_sysctl

ROOT = pathlib.Path(__file__).resolve().parent.parent
PKTGEN = ROOT / "bench" / "gen" / "pktgen"

MAC = {
    "g0": "02:62:01:00:00:01",
    "a0": "02:62:01:00:00:02",
    "c0": "02:62:01:00:00:03",
    "s0": "02:62:01:00:00:04",
    "next_hop": "02:62:01:00:00:99",  # not s0's: the sink drops it at once (otherhost)
    "group": "02:62:01:00:00:10",
}
SERVER = "198.18.100.2"
POOL_FIRST = "100.64.0.2"


@dataclass
class Net:
    gen: str
    dut: str
    sink: str


@contextlib.contextmanager
def bench_net() -> Iterator[Net]:
    """The three namespaces and two veth pairs; removed on exit whatever happens."""
    tag = f"vnfb{os.getpid()}"
    net = Net(f"{tag}-gen", f"{tag}-dut", f"{tag}-sink")
    created: list[str] = []
    try:
        for ns in (net.gen, net.dut, net.sink):
            created.append(ns)
            netns.create(ns)
            for key in ("net/ipv6/conf/all/disable_ipv6", "net/ipv6/conf/default/disable_ipv6"):
                write_sysctl(ns, key, "1")
        with NetNS(net.dut) as dut:
            dut.link("add", ifname="a0", kind="veth", peer={"ifname": "g0", "net_ns_fd": net.gen})
            dut.link("add", ifname="c0", kind="veth", peer={"ifname": "s0", "net_ns_fd": net.sink})
        for ns, ifname in ((net.gen, "g0"), (net.dut, "a0"), (net.dut, "c0"), (net.sink, "s0")):
            with NetNS(ns) as ipr:
                index = ipr.link_lookup(ifname=ifname)[0]
                ipr.link("set", index=index, address=MAC[ifname], state="up")
                ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")
        yield net
    finally:
        for ns in reversed(created):
            with contextlib.suppress(OSError):
                netns.remove(ns)


def kernel_mode(net: Net, on: bool) -> None:
    """Addresses, forwarding, the route and the next hop for the kernel reference (or none)."""
    with NetNS(net.dut) as ipr:
        a0 = ipr.link_lookup(ifname="a0")[0]
        c0 = ipr.link_lookup(ifname="c0")[0]
        if on:
            ipr.addr("add", index=a0, address="198.18.100.1", prefixlen=24)
            ipr.addr("add", index=c0, address="198.18.101.1", prefixlen=24)
            ipr.neigh(
                "replace", dst="198.18.101.2", lladdr=MAC["next_hop"], ifindex=c0, state="permanent"
            )
            ipr.route("add", dst="100.64.0.0/12", gateway="198.18.101.2")
        else:
            with contextlib.suppress(Exception):
                ipr.route("del", dst="100.64.0.0/12", gateway="198.18.101.2")
            ipr.flush_addr(index=a0)
            ipr.flush_addr(index=c0)
    write_sysctl(net.dut, "net/ipv4/ip_forward", "1" if on else "0")
    write_sysctl(net.dut, "net/ipv4/conf/all/rp_filter", "0")


_THREADED = """
import ctypes, os, sys
from pyroute2 import netns
ns, ifname, value = sys.argv[1:4]
libc = ctypes.CDLL(None, use_errno=True)
netns.setns(ns, flags=0)
# A private mount namespace with this network namespace's sysfs (what `ip netns exec` does).
if libc.unshare(0x00020000) or libc.mount(b"none", b"/", None, 0x4000 | (1 << 18), None):
    raise OSError(ctypes.get_errno(), "unshare/mount")
if libc.mount(b"sysfs", b"/sys", b"sysfs", 0, None):
    raise OSError(ctypes.get_errno(), "mount sysfs")
with open(f"/sys/class/net/{ifname}/threaded", "w") as handle:
    handle.write(value)
"""


def _set_offloads(ns: str, ifname: str, wanted: dict[str, bool]) -> None:
    """Set ethtool features by name; a name ending in ``*`` is a prefix."""
    from pyroute2.ethtool import Ethtool

    def apply() -> None:
        with Ethtool() as ethtool:
            features = ethtool.get_features(ifname)
            for name, feature in features.features.items():
                for pattern, enable in wanted.items():
                    if name == pattern or (pattern.endswith("*") and name.startswith(pattern[:-1])):
                        feature.enable = enable
            ethtool.set_features(ifname, features)

    in_netns(ns, apply)


def _napi_threads() -> dict[int, str]:
    threads = {}
    for proc in pathlib.Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError):
                comm = (proc / "comm").read_text().strip()
                if comm.startswith("napi/"):
                    threads[int(proc.name)] = comm
    return threads


def napi_on_cpu(net: Net, cpu: int) -> list[int]:
    """Threaded NAPI on the DUT's ingress veths (a0, c0), kthreads pinned to ``cpu``.

    NAPI kthreads live in the initial namespace; only the ones that appear when we switch our
    own devices to threaded mode are ours to pin."""
    before = _napi_threads()
    for dut_if, peer_ns, peer_if in (("a0", net.gen, "g0"), ("c0", net.sink, "s0")):
        # veth takes the NAPI path only if the sender has no TSO of any kind (NETIF_F_ALL_TSO)
        # and the receiver has GRO on.
        _set_offloads(peer_ns, peer_if, {"tx-tcp*": False})
        _set_offloads(net.dut, dut_if, {"rx-gro": True})
        subprocess.run([sys.executable, "-c", _THREADED, net.dut, dut_if, "1"], check=True)
    ours = {
        pid: comm
        for pid, comm in _napi_threads().items()
        if pid not in before and comm.startswith(("napi/a0-", "napi/c0-"))
    }
    if not ours:
        raise RuntimeError("no napi/a0 or napi/c0 kthread appeared with threaded NAPI")
    for pid in ours:
        os.sched_setaffinity(pid, {cpu})
    return sorted(ours)


def rx_packets(ns: str, ifname: str) -> int:
    with NetNS(ns) as ipr:
        link = ipr.get_links(ipr.link_lookup(ifname=ifname)[0])[0]
        return int(link.get("IFLA_STATS64")["rx_packets"])


def _in_ns(ns: str, cpu: int | None) -> Any:
    def enter() -> None:
        netns.setns(ns, flags=0)
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})

    return enter


def generate(ns: str, args: list[str], seconds: float, cpu: int | None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(PKTGEN), *args, "-t", f"{seconds:g}"],
        preexec_fn=_in_ns(ns, cpu),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def cpu_times(cpu: int) -> tuple[int, int]:
    """(busy, total) jiffies of one CPU from /proc/stat."""
    for line in pathlib.Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{cpu} "):
            values = [int(v) for v in line.split()[1:]]
            idle = values[3] + values[4]  # idle + iowait
            return sum(values) - idle, sum(values)
    raise RuntimeError(f"no cpu{cpu} in /proc/stat")


def measure(
    net: Net,
    gen_ns: str,
    gen_args: list[str],
    sink: tuple[str, str],
    seconds: float,
    cpu: int | None,
    dut_cpu: int | None = None,
) -> dict[str, float]:
    """Run the generator; delivered pps over the steady window (skip 1 s, stop 0.5 s early),
    and how busy the DUT's core was meanwhile."""
    proc = generate(gen_ns, gen_args, seconds, cpu)
    try:
        time.sleep(1.0)
        busy0, total0 = cpu_times(dut_cpu) if dut_cpu is not None else (0, 0)
        start_count, start = rx_packets(*sink), time.monotonic()
        time.sleep(max(0.5, seconds - 1.5))
        end_count, end = rx_packets(*sink), time.monotonic()
        busy1, total1 = cpu_times(dut_cpu) if dut_cpu is not None else (0, 0)
        out, err = proc.communicate(timeout=seconds + 10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if proc.returncode != 0:
        raise RuntimeError(f"pktgen failed: {err.strip()}")
    offered = json.loads(out)
    pps = (end_count - start_count) / (end - start)
    result = {"pps": pps, "offered_pps": offered["pps"], "window_s": end - start}
    if dut_cpu is not None and total1 > total0:
        busy = (busy1 - busy0) / (total1 - total0)
        result["dut_core_busy_pct"] = 100.0 * busy
        result["pps_per_busy_core"] = pps / busy if busy > 0 else 0.0
    return result


class Dut:
    """The worker process (bench.fwd_dut) in the DUT namespace, pinned to a CPU."""

    def __init__(self, net: Net, sessions: int, cpu: int | None) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.fwd_dut",
                "--netns",
                net.dut,
                "--access",
                "a0",
                "--core",
                "c0",
                "--sessions",
                str(sessions),
                "--group-mac",
                MAC["group"],
                "--core-mac",
                MAC["c0"],
                "--next-hop-mac",
                MAC["next_hop"],
                *(["--cpu", str(cpu)] if cpu is not None else []),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if line != "ready":
            self.stop()
            detail = self.proc.stderr.read() if self.proc.stderr else ""
            raise RuntimeError(f"worker did not start: {line} {detail}")

    def cpu_seconds(self) -> float:
        fields = pathlib.Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            out, _ = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        return out


def run(
    sizes: tuple[int, ...] = (64, 512),
    sessions: int = 1000,
    seconds: float = 4.0,
    repeat: int = 3,
    gen_cpu: int | None = 0,
    dut_cpu: int | None = 1,
    rx: str = "napi",
) -> dict[str, Any]:
    if not PKTGEN.exists():
        raise SystemExit(f"{PKTGEN} is missing: make bench builds it")
    cases: dict[tuple[str, int], list[dict[str, float]]] = {}
    with bench_net() as net:
        if rx == "napi" and dut_cpu is not None:
            napi_on_cpu(net, dut_cpu)
        common = ["-n", str(sessions), "-p", POOL_FIRST, "-a", SERVER]
        up_args = ["-i", "g0", "-d", MAC["group"], "-m", "pppoe", *common]
        down_args = ["-i", "s0", "-d", MAC["c0"], "-s", MAC["s0"], "-m", "ipv4", *common]
        kernel_args = ["-i", "g0", "-d", MAC["a0"], "-s", MAC["g0"], "-m", "ipv4", *common]
        for _ in range(repeat):
            for size in sizes:
                kernel_mode(net, True)
                result = measure(
                    net,
                    net.gen,
                    [*kernel_args, "-l", str(size)],
                    (net.sink, "s0"),
                    seconds,
                    gen_cpu,
                    dut_cpu,
                )
                cases.setdefault(("kernel_ipv4_forwarding", size), []).append(result)
                kernel_mode(net, False)
                dut = Dut(net, sessions, dut_cpu)
                try:
                    for name, ns, args, sink in (
                        ("dp_upstream_pppoe_to_ipv4", net.gen, up_args, (net.sink, "s0")),
                        ("dp_downstream_ipv4_to_pppoe", net.sink, down_args, (net.gen, "g0")),
                    ):
                        cpu_before, wall_before = dut.cpu_seconds(), time.monotonic()
                        result = measure(
                            net, ns, [*args, "-l", str(size)], sink, seconds, gen_cpu, dut_cpu
                        )
                        result["dut_cpu_pct"] = (
                            100.0
                            * (dut.cpu_seconds() - cpu_before)
                            / (time.monotonic() - wall_before)
                        )
                        cases.setdefault((name, size), []).append(result)
                finally:
                    dut.stop()
    report_cases = []
    for (name, size), runs in sorted(cases.items()):
        pps = [r["pps"] for r in runs]
        report_cases.append(
            {
                "case": name,
                "frame_size": size,
                "sessions": sessions,
                "pps_median": round(statistics.median(pps)),
                "pps_min": round(min(pps)),
                "pps_max": round(max(pps)),
                "offered_pps_median": round(statistics.median(r["offered_pps"] for r in runs)),
                "dut_core_busy_pct_median": round(
                    statistics.median(r.get("dut_core_busy_pct", 0.0) for r in runs), 1
                ),
                "pps_per_busy_core_median": round(
                    statistics.median(r.get("pps_per_busy_core", 0.0) for r in runs)
                ),
                "runs": [{k: round(v, 1) for k, v in r.items()} for r in runs],
            }
        )
    by = {(c["case"], c["frame_size"]): c for c in report_cases}
    ratios: dict[str, float] = {}
    per_core_ratios: dict[str, float] = {}
    for size in sizes:
        kernel = by.get(("kernel_ipv4_forwarding", size))
        for case in ("dp_upstream_pppoe_to_ipv4", "dp_downstream_ipv4_to_pppoe"):
            dp = by.get((case, size))
            if kernel is None or dp is None:
                continue
            key = f"{case}_{size}B"
            if kernel["pps_median"]:
                ratios[key] = round(dp["pps_median"] / kernel["pps_median"], 3)
            if kernel["pps_per_busy_core_median"]:
                per_core_ratios[key] = round(
                    dp["pps_per_busy_core_median"] / kernel["pps_per_busy_core_median"], 3
                )
    return {
        "benchmark": "forwarding",
        "placement": {
            "generator_cpu": gen_cpu,
            "worker_cpu": dut_cpu,
            "dut_rx": {
                "napi": "threaded NAPI on the DUT's ingress veths, kthreads on the worker's CPU",
                "inline": "veth default: receive work on the sender's CPU",
            }[rx],
        },
        "seconds_per_run": seconds,
        "repeat": repeat,
        "cases": report_cases,
        # measured: the worker's delivered pps / the kernel's, same path, same run. When the
        # generator cannot saturate the kernel (its delivered ≈ offered), this understates the
        # kernel: then read the next figure.
        "ratio_to_kernel": ratios,
        # derived: the same ratio per fully busy DUT core (delivered pps / the DUT core's busy
        # share in the same window), i.e. each side's forwarding capacity of one core.
        "ratio_to_kernel_per_busy_core": per_core_ratios,
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
