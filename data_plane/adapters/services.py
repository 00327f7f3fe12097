"""The DP worker's own gRPC service (status, counters) and its Prometheus metrics."""

from __future__ import annotations

import time
from collections.abc import Iterable

import grpc
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

from data_plane.adapters.forwarder import BATCH_BUCKETS, Forwarder, PortStats
from data_plane.adapters.runtime import DpRuntime
from vnf.adapters.metrics_http import CallbackCollector, counter_families, gauge, gauges
from vnf.api import common_pb2, dataplane_admin_pb2, dataplane_admin_pb2_grpc, management_pb2


def counters(runtime: DpRuntime) -> dict[tuple[str, str], int]:
    """Every DP counter as (name, label value); drops carry their reason as the label."""
    out: dict[tuple[str, str], int] = {}
    for name, value in runtime.worker.counters().items():
        if name.startswith("drop_up_"):
            out["dropped", f"up_{name[8:]}"] = value
        elif name.startswith("drop_down_"):
            out["dropped", f"down_{name[10:]}"] = value
        else:
            out[name, ""] = value
    for name, value in runtime.counters.items():
        out[name, ""] = value
    return out


LABELS = {"dropped": "reason"}
HELP = {
    "rx_access": "Frames received on the access port",
    "rx_core": "Frames received on the core port",
    "forwarded_up": "Frames decapsulated and forwarded to the core",
    "forwarded_down": "Frames encapsulated and forwarded to subscribers",
    "punted": "Control frames punted to the control plane",
    "dropped": "Frames dropped, by direction and reason",
    "punts_sent": "Punted frames sent to the CP",
    "punts_dropped_headless": "Control frames dropped while no CP was reachable",
    "stale_epoch_messages": "CP messages refused because their epoch was older (fencing)",
    "not_from_active": "CP rules and transmit frames refused: not from the active CP stream",
    "cp_connects": "CP streams established (a first message received)",
    "cp_silent": "CP streams cancelled after hearing nothing for the detection time",
    "active_cp_changes": "Times the DP started following a different active CP",
    "headless_flushes": "Sessions and groups flushed after the headless timeout",
    "assignments_refused": "CP assignments the worker could not apply",
    "frames_transmitted_for_cp": "Frames sent out of a port for the CP",
    "rule_batches": "Session rule batches applied",
}


class DpMetrics:
    def __init__(self, runtime: DpRuntime) -> None:
        self.runtime = runtime
        self.registry = CollectorRegistry()
        self.registry.register(CallbackCollector(self.collect))

    def collect(self) -> Iterable[Metric]:
        rt = self.runtime
        const = {"worker": rt.config.name, "site": rt.config.site}
        yield from counter_families("vnf_dp", counters(rt), LABELS, HELP, const)
        yield gauge("vnf_dp_sessions", "Installed sessions", rt.worker.session_count, const)
        now = time.monotonic()
        yield gauge("vnf_dp_cp_connected", "1 while an active CP stream is up", rt.connected, const)
        yield gauge("vnf_dp_epoch", "Newest CP epoch accepted", rt.epoch, const)
        yield gauge("vnf_dp_headless", "1 while no active CP stream is up", not rt.connected, const)
        yield gauge(
            "vnf_dp_headless_seconds",
            "Seconds without an active CP stream",
            rt.headless_s(now),
            const,
        )
        yield gauge(
            "vnf_dp_active_cp",
            "1 with the name of the CP this worker follows; 0 with an empty name while headless",
            rt.connected,
            {**const, "cp": rt.active_cp},
        )
        yield gauges(
            "vnf_dp_cp_stream_up",
            "1 while the stream to this CP address has delivered a message",
            (({**const, "address": link.address}, link.up) for link in rt.links),
        )
        yield gauge("vnf_dp_groups", "Subscriber groups served", rt.worker.groups.serving, const)
        yield gauge(
            "vnf_dp_groups_prepared",
            "Subscriber groups held ready but not served (hot standby, a move's target)",
            len(rt.worker.groups.prepared),
            const,
        )
        yield gauge(
            "vnf_dp_role_active", "1 when the worker serves groups", rt.role == "active", const
        )
        yield from forwarding_metrics(rt.forwarder, const)


PORT_COUNTERS = {
    "rx_packets": "Frames the port's backend received",
    "tx_packets": "Frames the port's backend sent",
    "tx_dropped": "Frames the kernel refused to send (queue full, link down)",
    "rx_truncated": "Frames longer than a batch row, truncated on receive",
    "kernel_drops": "Frames the kernel dropped before the worker read them (buffer or ring full)",
}


def forwarding_metrics(fwd: Forwarder, const: dict[str, str]) -> Iterable[Metric]:
    """The forwarding thread's own figures: CPU, pinning, batch sizes, port I/O, commands."""
    keys = sorted(const)
    values = [const[k] for k in keys]
    cpu = CounterMetricFamily(
        "vnf_dp_worker_cpu_seconds", "CPU time of the forwarding thread", labels=keys
    )
    cpu.add_metric(values, fwd.cpu_seconds())
    yield cpu
    yield gauge(
        "vnf_dp_worker_pinned_cpu",
        "The CPU the forwarding thread is pinned to (-1: not pinned)",
        -1 if fwd.cpu is None else fwd.cpu,
        const,
    )
    stats = fwd.stats
    hist = HistogramMetricFamily(
        "vnf_dp_batch_frames", "Frames per received batch, by port", labels=[*keys, "port"]
    )
    for name, port_stats in (("access", stats.access), ("core", stats.core)):
        hist.add_metric([*values, name], _buckets(port_stats), port_stats.frames)
    yield hist
    ports = {"access": fwd.access, "core": fwd.core}
    for counter, help_text in PORT_COUNTERS.items():
        family = CounterMetricFamily(f"vnf_dp_port_{counter}", help_text, labels=[*keys, "port"])
        for name, port in ports.items():
            family.add_metric([*values, name], int(getattr(port, counter, 0)))
        yield family
    yield from counter_families(
        "vnf_dp_forwarder",
        {
            ("rounds", ""): stats.rounds,
            ("idle_waits", ""): stats.idle_waits,
            ("commands", ""): stats.commands,
            ("command_errors", ""): stats.command_errors,
        },
        {},
        FORWARDER_HELP,
        const,
    )
    yield gauge(
        "vnf_dp_forwarder_command_wait_max_seconds",
        "Longest time a control command waited for the forwarding loop",
        stats.command_wait_max_s,
        const,
    )


FORWARDER_HELP = {
    "rounds": "Rounds of the forwarding loop (one batch per port each)",
    "idle_waits": "Times the forwarding loop found nothing to do and waited",
    "commands": "Control commands (rules, assignments, frames) run between batches",
    "command_errors": "Control commands that raised",
}


def _buckets(port: PortStats) -> list[tuple[str, float]]:
    """Cumulative ``le`` buckets 1, 2, 4, ..., 4096, +Inf from the loop's counts."""
    out: list[tuple[str, float]] = []
    running = 0
    for k in range(BATCH_BUCKETS):
        running += port.sizes[k]
        out.append((str(1 << k), running))
    out.append(("+Inf", running + port.sizes[BATCH_BUCKETS]))
    return out


class DataPlaneAdminServicer(dataplane_admin_pb2_grpc.DataPlaneAdminServicer):
    def __init__(self, runtime: DpRuntime) -> None:
        self.runtime = runtime

    async def GetStatus(  # noqa: N802
        self, request: common_pb2.Empty, context: grpc.aio.ServicerContext
    ) -> dataplane_admin_pb2.DpStatus:
        rt = self.runtime
        return dataplane_admin_pb2.DpStatus(
            dp_id=rt.config.name,
            site=rt.config.site,
            role=rt.role,
            cp_connected=rt.connected,
            cp_address=rt.cp_address,
            epoch=rt.epoch,
            groups=rt.claimed_groups(),
            prepared_groups=sorted(rt.worker.groups.prepared),
            sessions=rt.worker.session_count,
            headless_s=rt.headless_s(time.monotonic()),
            access_ifname=rt.config.access_ifname,
            core_ifname=rt.config.core_ifname,
        )

    async def GetStats(  # noqa: N802
        self, request: common_pb2.Empty, context: grpc.aio.ServicerContext
    ) -> management_pb2.Stats:
        items = []
        for (name, value), n in sorted(counters(self.runtime).items()):
            label = LABELS.get(name)
            items.append(
                common_pb2.Counter(name=name, labels={label: value} if label else {}, value=n)
            )
        return management_pb2.Stats(node=self.runtime.config.name, counters=items)
