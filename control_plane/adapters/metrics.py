"""The control plane's Prometheus metrics (``vnf_cp_*``), read from the core at scrape time."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import Metric

from control_plane.service import ControlPlane
from control_plane.sessions import SessionState
from vnf.adapters.metrics_http import CallbackCollector, counter_families, gauge, gauges

LABELS = {
    "punts_rx": "dp",
    "discovery_rx": "code",
    "discovery_tx": "code",
    "ppp_rx": "protocol",
    "ppp_tx": "protocol",
    "auth_ok": "method",
    "auth_fail": "reason",
    "drops": "reason",
    "link_down": "reason",
    "sessions_closed": "cause",
    "dp_connects": "dp",
    "dp_disconnects": "dp",
    "rule_failures": "dp",
    "dp_rejected": "reason",
}
HELP = {
    "punts_rx": "Control frames punted by data-plane workers",
    "discovery_rx": "PPPoE discovery packets received, by code",
    "discovery_tx": "PPPoE discovery packets sent, by code",
    "ppp_rx": "PPP control packets received, by protocol",
    "ppp_tx": "PPP control packets sent, by protocol",
    "auth_ok": "Successful authentications, by method",
    "auth_fail": "Failed authentications, by reason",
    "drops": "Frames or requests dropped, by reason",
    "lcp_up": "LCP links opened",
    "ipcp_up": "IPCP opened (address assigned and acknowledged)",
    "link_down": "PPP links taken down, by reason",
    "sessions_established": "Sessions established (rule on the DP, accounting start)",
    "sessions_closed": "Sessions closed, by RFC 2866 terminate cause",
    "padi_duplicates": "Identical PADIs heard through several DPs, answered once",
    "padr_retransmits": "Retransmitted PADRs answered with the existing session",
}


class CpMetrics:
    def __init__(self, core: ControlPlane, node: str, role: str, epoch: int) -> None:
        self.core = core
        self.node = node
        self.role = role
        self.epoch = epoch
        self.accounting_written: dict[str, int] = {}
        self.registry = CollectorRegistry()
        self.setup_seconds = Histogram(
            "vnf_cp_session_setup_seconds",
            "Session setup time: first PADI seen to accounting start committed",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            registry=self.registry,
        )
        self.registry.register(CallbackCollector(self.collect))

    def collect(self) -> Iterable[Metric]:
        core = self.core
        const = {"node": self.node}
        yield from counter_families("vnf_cp", dict(core.counters), LABELS, HELP, const)
        yield gauge("vnf_cp_epoch", "Epoch of this control plane", self.epoch, const)
        yield gauge(
            "vnf_cp_role_active",
            "1 when this control plane is active",
            self.role == "active",
            const,
        )
        yield gauges(
            "vnf_cp_sessions",
            "Sessions by state",
            (
                ({**const, "state": state.value}, core.sessions.counts[state])
                for state in SessionState
                if state is not SessionState.CLOSED
            ),
        )
        yield gauges(
            "vnf_cp_dp_connected",
            "1 when the data-plane worker's session-control stream is up",
            (({**const, "dp": dp.name}, dp.connected) for dp in core.placement.dps.values()),
        )
        groups = list(core.placement.by_id.values())
        yield gauges(
            "vnf_cp_group_sessions",
            "Sessions per subscriber group",
            (({**const, "group": str(g.group_id), "dp": g.dp}, g.sessions) for g in groups),
        )
        yield gauges(
            "vnf_cp_pool_free_addresses",
            "Free addresses in the group's pool",
            (({**const, "group": str(g.group_id), "dp": g.dp}, g.pool.free) for g in groups),
        )
        yield from counter_families(
            "vnf_cp",
            {("accounting_records", kind): n for kind, n in self.accounting_written.items()},
            {"accounting_records": "type"},
            {"accounting_records": "Accounting records committed to the store"},
            const,
        )
