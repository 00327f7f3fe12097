"""Forwarding benchmark: the DP worker's I/O backends next to Linux kernel IPv4 forwarding.

    gen ns [g0] ══veth══ [a0] dut ns [c0] ══veth══ [s0] sink ns

* source alone: the generator sends to a0 and nobody forwards (the DUT namespace drops the
  frames at once): what the source can offer, measured first.
* kernel: the DUT namespace forwards IPv4 (gen → a0 → c0 → sink) with ip_forward=1, a static
  route and a permanent neighbour for the next hop; the generator spreads the destinations
  over the sessions' addresses.
* dp upstream: the generator sends PPPoE session frames for N installed sessions to the
  group's virtual MAC; the worker decapsulates and sends IPv4 out c0.
* dp downstream: the generator (in the sink namespace) sends IPv4 to the worker's core MAC
  for the sessions' addresses; the worker encapsulates and sends PPPoE out a0.

The worker is the DP process's own runtime (bench/fwd_dut.py: ``DpRuntime``, its forwarding
thread, the chosen I/O backend), every session with a rate both ways (QoS on: every frame
goes through its token bucket; the rate is far above what one session gets here, so the
figure is forwarding capacity, not policing).

The generator (``bench/gen/pktgen``, C, sendmmsg) is pinned to CPU 0, the worker's
forwarding thread to CPU 1. Two copies of the namespaces differ in where the DUT's receive
work ("placement") runs:

* ``napi``: GRO on the DUT's ingress veths, TSO off on their peers, threaded NAPI with the
  ``napi/<dev>`` kthreads pinned to CPU 1 — everything the DUT does, kernel forwarding or
  worker plus its receive softirq, runs on CPU 1, and the generator has CPU 0 to itself.
  The kernel reference is measured here: "one core moves X pps with kernel forwarding".
* ``inline`` (veth's default): a frame's receive work (for a packet socket: the copy into its
  ring or queue) runs on the sender's CPU, so the worker's core does only the worker's work.
  This is where a worker runs in the lab, and the placement of the prototype's 0.64x figure
  (``shared/reference/dataplane-io``).

The ratio of a DP case is its pps over the kernel reference's (napi placement, same frame
size and session count, same run). Delivered pps is the sink interface's rx_packets
(netlink) over the steady part of each run; every case runs ``repeat`` times, interleaved,
and the median is reported. Only 198.18.0.0/15 and 100.64.0.0/10 addresses and 02:62:… MACs
are used; nothing connects to the root namespace.
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


BACKENDS = ("ring", "mmsg", "packet")
PLACEMENTS = ("inline", "napi")
QOS_KBPS = 1_000_000
"""Every session's rate in the DP cases (1 Gbit/s each way: policed, never exceeded)."""


@contextlib.contextmanager
def bench_net(suffix: str = "") -> Iterator[Net]:
    """The three namespaces and two veth pairs; removed on exit whatever happens."""
    tag = f"vnfb{os.getpid()}{suffix}"
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

    def __init__(
        self, net: Net, sessions: int, cpu: int | None, io: str = "ring", qos_kbps: int = 0
    ) -> None:
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
                "--io",
                io,
                "--qos-kbps",
                str(qos_kbps),
                *(["--cpu", str(cpu)] if cpu is not None else []),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()  # after installing every session
        if line != "ready":
            self.stop()
            detail = self.proc.stderr.read() if self.proc.stderr else ""
            raise RuntimeError(f"worker did not start: {line} {detail}")

    def cpu_seconds(self) -> float:
        fields = pathlib.Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> dict[str, Any]:
        """Stop the worker; its closing counters (empty when it died without them)."""
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            out, _ = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        for line in reversed(out.splitlines()):
            with contextlib.suppress(ValueError):
                report: dict[str, Any] = json.loads(line)
                return report
        return {}


def source_alone(
    net: Net, size: int, sessions: int, seconds: float, gen_cpu: int | None
) -> dict[str, float]:
    """The generator into a0 with nobody forwarding: frames to an unknown MAC, dropped at
    once in the DUT namespace; delivered = a0's rx_packets."""
    args = ["-i", "g0", "-d", MAC["next_hop"], "-s", MAC["g0"], "-m", "ipv4"]
    args += ["-n", str(sessions), "-p", POOL_FIRST, "-a", SERVER, "-l", str(size)]
    return measure(net, net.gen, args, (net.dut, "a0"), seconds, gen_cpu)


CaseKey = tuple[str, str, str, int, int]
"""case, placement, backend, frame size, sessions."""


def run(
    sizes: tuple[int, ...] = (64, 512),
    sessions: tuple[int, ...] = (1000, 64000),
    backends: tuple[str, ...] = BACKENDS,
    placements: tuple[str, ...] = PLACEMENTS,
    seconds: float = 5.0,
    repeat: int = 3,
    gen_cpu: int | None = 0,
    dut_cpu: int | None = 1,
    qos_kbps: int = QOS_KBPS,
) -> dict[str, Any]:
    if not PKTGEN.exists():
        raise SystemExit(f"{PKTGEN} is missing: make bench builds it")
    cases: dict[CaseKey, list[dict[str, float]]] = {}
    workers: dict[CaseKey, list[dict[str, Any]]] = {}
    with contextlib.ExitStack() as stack:
        wanted = dict.fromkeys(("napi", *placements))  # the kernel reference needs napi
        nets = {p: stack.enter_context(bench_net(p[0])) for p in wanted}
        if dut_cpu is not None:
            napi_on_cpu(nets["napi"], dut_cpu)
        for _ in range(repeat):
            for size in sizes:
                for count in sessions:
                    source = nets.get("inline", nets["napi"])
                    key: CaseKey = ("source_alone", "inline", "-", size, count)
                    cases.setdefault(key, []).append(
                        source_alone(source, size, count, seconds, gen_cpu)
                    )
                    key = ("kernel_ipv4_forwarding", "napi", "-", size, count)
                    cases.setdefault(key, []).append(
                        kernel(nets["napi"], size, count, seconds, gen_cpu, dut_cpu)
                    )
                    for placement in placements:
                        for backend in backends:
                            dut = Dut(nets[placement], count, dut_cpu, backend, qos_kbps)
                            try:
                                for name, result in worker_cases(
                                    dut, nets[placement], size, count, seconds, gen_cpu, dut_cpu
                                ):
                                    key = (name, placement, backend, size, count)
                                    cases.setdefault(key, []).append(result)
                            finally:
                                report = dut.stop()
                            key = ("dp", placement, backend, size, count)
                            workers.setdefault(key, []).append(report)
    return _report(cases, workers, seconds, repeat, gen_cpu, dut_cpu, qos_kbps)


def _common(size: int, sessions: int) -> list[str]:
    return ["-n", str(sessions), "-p", POOL_FIRST, "-a", SERVER, "-l", str(size)]


def kernel(
    net: Net, size: int, sessions: int, seconds: float, gen_cpu: int | None, dut_cpu: int | None
) -> dict[str, float]:
    """Kernel IPv4 forwarding through the DUT namespace, to every session's address."""
    args = ["-i", "g0", "-d", MAC["a0"], "-s", MAC["g0"], "-m", "ipv4", *_common(size, sessions)]
    kernel_mode(net, True)
    try:
        return measure(net, net.gen, args, (net.sink, "s0"), seconds, gen_cpu, dut_cpu)
    finally:
        kernel_mode(net, False)


def worker_cases(
    dut: Dut,
    net: Net,
    size: int,
    sessions: int,
    seconds: float,
    gen_cpu: int | None,
    dut_cpu: int | None,
) -> Iterator[tuple[str, dict[str, float]]]:
    """Upstream then downstream through a running worker."""
    common = _common(size, sessions)
    up = ["-i", "g0", "-d", MAC["group"], "-m", "pppoe", *common]
    down = ["-i", "s0", "-d", MAC["c0"], "-s", MAC["s0"], "-m", "ipv4", *common]
    for name, ns, args, sink in (
        ("dp_upstream_pppoe_to_ipv4", net.gen, up, (net.sink, "s0")),
        ("dp_downstream_ipv4_to_pppoe", net.sink, down, (net.gen, "g0")),
    ):
        cpu_before, wall_before = dut.cpu_seconds(), time.monotonic()
        result = measure(net, ns, args, sink, seconds, gen_cpu, dut_cpu)
        wall = time.monotonic() - wall_before
        result["dut_cpu_pct"] = 100.0 * (dut.cpu_seconds() - cpu_before) / wall
        yield name, result


def _report(
    cases: dict[CaseKey, list[dict[str, float]]],
    dut_reports: dict[CaseKey, list[dict[str, Any]]],
    seconds: float,
    repeat: int,
    gen_cpu: int | None,
    dut_cpu: int | None,
    qos_kbps: int,
) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for (name, placement, backend, size, count), runs in sorted(cases.items()):
        pps = [r["pps"] for r in runs]
        rows.append(
            {
                "case": name,
                "placement": placement,
                "backend": backend,
                "frame_size": size,
                "sessions": count,
                "pps_median": round(statistics.median(pps)),
                "pps_min": round(min(pps)),
                "pps_max": round(max(pps)),
                "offered_pps_median": round(statistics.median(r["offered_pps"] for r in runs)),
                "dut_core_busy_pct_median": round(
                    statistics.median(r.get("dut_core_busy_pct", 0.0) for r in runs), 1
                ),
                "runs": [{k: round(v, 1) for k, v in r.items()} for r in runs],
            }
        )
    kernel = {
        (r["frame_size"], r["sessions"]): r["pps_median"]
        for r in rows
        if r["case"] == "kernel_ipv4_forwarding"
    }
    for r in rows:
        ref = kernel.get((r["frame_size"], r["sessions"]))
        if r["case"].startswith("dp_") and ref:
            r["ratio_to_kernel"] = round(r["pps_median"] / ref, 3)
    workers = [
        {"placement": p, "backend": b, "frame_size": size, "sessions": n, "runs": reports}
        for (_, p, b, size, n), reports in sorted(dut_reports.items())
    ]
    return {
        "benchmark": "forwarding",
        "placement": {
            "generator_cpu": gen_cpu,
            "worker_cpu": dut_cpu,
            "napi": "threaded NAPI on the DUT's ingress veths, kthreads on the worker's CPU",
            "inline": "veth default: the DUT's receive work on the sender's CPU",
        },
        "kernel_reference": "kernel IPv4 forwarding, napi placement (all of it on one core)",
        "qos_kbps_per_session": qos_kbps,
        "seconds_per_run": seconds,
        "repeat": repeat,
        "cases": rows,
        "workers": workers,
    }


def table(report: dict[str, Any]) -> list[str]:
    """The report as aligned lines: one per case, the ratio to the kernel where it has one."""
    lines = []
    for r in report["cases"]:
        ratio = f"{r['ratio_to_kernel']:.3f}x" if "ratio_to_kernel" in r else ""
        lines.append(
            f"  {r['case']:28s} {r['placement']:6s} {r['backend']:6s} {r['frame_size']:4d} B "
            f"{r['sessions']:6d} sess {r['pps_median']:>10,} pps {ratio:>7s}"
            f"  (DUT core {r['dut_core_busy_pct_median']}% busy)"
        )
    return lines


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
