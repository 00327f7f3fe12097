"""The control plane's Prometheus metrics (``vnf_cp_*``), read from the core at scrape time."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import Metric

from control_plane.sessions import SessionState
from vnf.adapters.metrics_http import CallbackCollector, counter_families, gauge, gauges

if TYPE_CHECKING:
    from control_plane.adapters.runtime import CpRuntime

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
    "failovers": "kind",
    "group_moves": "outcome",
    "dp_failures_without_standby": "dp",
    "docsis_rx": "message",
    "docsis_tx": "message",
    "registrations": "result",
    "ranging_rejected": "reason",
    "modem_timeouts": "reason",
    "dhcp_rx": "message",
    "dhcp_tx": "message",
    "dsc": "outcome",
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
    "failovers": "Takeovers this CP made: cp (promotion), cp_switchover, dp (groups moved)",
    "group_moves": "Planned make-before-break group moves, by outcome",
    "dp_failures_without_standby": "DP failures that found no standby DP in their site",
    "orphaned_groups_expired": "Groups whose sessions ended after the headless timeout",
    "docsis_rx": "DOCSIS MAC management messages received from cable modems, by message",
    "docsis_tx": "DOCSIS MAC management messages sent to cable modems, by message",
    "registrations": "Cable modem registrations: result ok, or the reason they were rejected",
    "ranging_rejected": "Initial ranging answered with abort, by reason",
    "ranging_duplicates": "Identical initial RNG-REQs heard through several DPs, answered once",
    "modem_timeouts": "Cable modems dropped by a DOCSIS timer, by which",
    "modem_reinit": "Registered modems that ranged again from scratch (a reboot)",
    "reg_req_retransmits": "Retransmitted REG-REQs answered with the same REG-RSP",
    "dhcp_rx": "DHCP messages received from CPEs, by type",
    "dhcp_tx": "DHCP messages sent to CPEs, by type",
    "dhcp_release_ignored": "DHCPRELEASEs (a lease lives as long as its modem's registration)",
    "cpe_arp_replies": "ARP requests of CPEs for their gateway, answered",
    "dsc": "Dynamic service changes, by outcome",
}


class CpMetrics:
    def __init__(self, runtime: CpRuntime) -> None:
        self.runtime = runtime
        self.node = runtime.config.name
        self.takeovers: dict[str, int] = {}  # role changes of this process, by kind
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
        runtime = self.runtime
        core = runtime.core
        const = {"node": self.node}
        yield from counter_families("vnf_cp", dict(core.counters), LABELS, HELP, const)
        yield gauge("vnf_cp_epoch", "Epoch of this control plane", runtime.epoch, const)
        yield gauges(
            "vnf_cp_cable_modems",
            "Cable modems by state (show cable modem), recently rejected ones included",
            (({**const, "state": state}, n) for state, n in core.cable.counts().items()),
        )
        yield gauge(
            "vnf_cp_role_active",
            "1 when this control plane is active",
            runtime.role == "active",
            const,
        )
        yield gauge(
            "vnf_cp_peer_connected",
            "1 while the replication stream with the other CP of the pair is up",
            runtime.peer_connected,
            const,
        )
        yield gauge(
            "vnf_cp_replication_seq",
            "Replicated changes produced (active) or applied (standby)",
            core.replica.seq,
            const,
        )
        yield gauge(
            "vnf_cp_replication_lag",
            "Changes the standby has not acknowledged yet (active only)",
            runtime.replication_lag(),
            const,
        )
        yield from counter_families(
            "vnf_cp",
            {("role_changes", kind): n for kind, n in self.takeovers.items()},
            {"role_changes": "kind"},
            {
                "role_changes": "Role changes of this CP: cp_start, cp_failover, cp_switchover, "
                "demoted"
            },
            const,
        )
        done = [t for t in core.takeovers if t.done]
        if done:
            last = done[-1]
            labels = {**const, "kind": last.kind}
            yield gauges(
                "vnf_cp_last_takeover_detection_seconds",
                "Last takeover: last sign of life of the failed node to the decision",
                [(labels, last.detection_ms / 1000.0)],
            )
            yield gauges(
                "vnf_cp_last_takeover_seconds",
                "Last takeover: decision to every DP acknowledging its rules",
                [(labels, last.takeover_ms / 1000.0)],
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
