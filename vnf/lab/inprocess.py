"""An in-process CUPS lab: emulated clients ⇄ a stand-in for the access segment and the DPs
⇄ the real :class:`ControlPlane`, on a fake clock, without sockets.

Used by the control plane's tests and by the CP memory benchmark. The stand-in behaves as the
real DPs do toward the CP: broadcast frames are punted by every active DP of the site, unicast
ones by the DP serving the destination's group; rule batches are acknowledged (final usage for
removals), and frames the CP transmits reach the clients.

With ``pair=True`` a second, standby core mirrors the active's replicated changes (each
delivery is one replication round trip) and :meth:`InProcessLab.fail_active` promotes it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace

from control_plane.aaa.local import SubscriberDirectory
from control_plane.replica import AccountingWritten
from control_plane.service import ControlPlane
from vnf.clock import FakeClock
from vnf.config import CpConfig
from vnf.emulator.fleet import Fleet, SubscriberSpec, SubscriberState
from vnf.engines.ppp_session import AuthMethod
from vnf.lab.plan import plan_lab
from vnf.lab.subscribers import lab_subscribers
from vnf.lab.topology import parse_topology
from vnf.model.accounting import AccountingRecord
from vnf.model.session import RuleOp, RuleResult, SessionRule, Usage
from vnf.model.subscriber import AuthType, Subscriber

BROADCAST = b"\xff" * 6


class InProcessLab:
    def __init__(
        self,
        subscribers: int = 10,
        topology: dict[str, object] | None = None,
        config_edit: Callable[[CpConfig], CpConfig] | None = None,
        seed_store: bool = True,
        pair: bool = False,
    ) -> None:
        data = topology or {"sites": [{"subscribers": {"pppoe": subscribers}}]}
        topo = parse_topology(data)
        plan = plan_lab(topo, 0, "/nonexistent", "ab" * 16)
        config = plan.node("cp-a").config
        assert isinstance(config, CpConfig)
        if config_edit is not None:
            config = config_edit(config)
        self.config = config
        self.clock = FakeClock()
        self.directory = SubscriberDirectory()
        site = topo.sites[0]
        self.site = site.name
        self.lab_subscribers = lab_subscribers(
            site.subscribers.pppoe,
            site.subscribers.chap_share,
            site.subscribers.username,
            site.subscribers.password,
            site.name,
            0,
            1,
        )
        if seed_store:
            for s in self.lab_subscribers:
                self.directory.put(Subscriber(s.username, s.password, AuthType(s.auth)))
        self.cp = ControlPlane(
            config, self.directory, os.urandom, acct_prefix="test", wall=self.clock
        )
        self.standby: ControlPlane | None = None
        self.mirrored: list[AccountingRecord] = []  # what the standby wrote to its store
        if pair:
            standby_directory = SubscriberDirectory()
            for sub in self.directory.all():
                standby_directory.put(sub)
            self.standby = ControlPlane(
                replace(config, name="cp-b", index=1),
                standby_directory,
                os.urandom,
                acct_prefix="tst2",
                wall=self.clock,
                active=False,
            )
            self.standby.mirror(self.cp.replica.snapshot(), snapshot=True)
            self.cp.changes.clear()
            self.cp.set_standby_sync(True)
        self.dps = [d.name for d in config.dps]
        self.connected: set[str] = set()
        for dp in self.dps:
            self.connect(dp)
        specs = [
            SubscriberSpec(
                s.number - 1,
                s.mac,
                s.username,
                s.password,
                (AuthMethod.CHAP_MD5,) if s.auth == "chap" else (AuthMethod.PAP,),
            )
            for s in self.lab_subscribers
        ]
        self.fleet = Fleet(specs, os.urandom)
        self.installed: dict[str, dict[int, SessionRule]] = {dp: {} for dp in self.dps}
        self.sent_to_clients: list[bytes] = []
        self.ack_rules = True

    def connect(self, dp: str) -> None:
        self.connected.add(dp)
        self.cp.dp_connected(dp, "site1", self.clock())
        if self.standby is not None:
            self.standby.dp_connected(dp, "site1", self.clock())

    def disconnect(self, dp: str) -> None:
        self.connected.discard(dp)
        self.cp.dp_disconnected(dp, self.clock())
        if self.standby is not None:
            self.standby.dp_disconnected(dp, self.clock())

    def replicate(self) -> None:
        """One replication round trip: the standby applies the changes and acknowledges."""
        if self.standby is None:
            return
        changes, self.cp.changes = self.cp.changes, []
        for change in self.standby.mirror(changes):
            if isinstance(change, AccountingWritten):
                self.mirrored.append(change.record)
        self.cp.replication_acked(self.cp.replica.seq)

    def fail_active(self) -> ControlPlane:
        """The active dies (nothing it had not replicated survives); the standby promotes
        with a newer epoch. Returns the dead core."""
        assert self.standby is not None
        dead, self.cp = self.cp, self.standby
        self.standby = None
        epoch = max(dead.epoch, self.cp.replica.epoch) + 1
        self.cp.promote(epoch, self.clock(), "cp_failover", dead.config.name, 0.0)
        self.deliver()
        return dead

    def serving_dp(self, frame: bytes) -> str | None:
        group = self.cp.placement.by_mac.get(frame[:6])
        return group.dp if group is not None else None

    def punt(self, frame: bytes) -> None:
        """What the access segment + DPs do with a frame a client sends."""
        now = self.clock()
        if frame[:6] == BROADCAST:  # the clients are on the first site's segment
            for dp in self.dps:
                info = self.cp.placement.dps[dp]
                if info.site != self.site:
                    continue
                if dp in self.connected and self.cp.placement.groups_of(dp):
                    self.cp.punt(dp, frame, now, now)
            return
        serving = self.serving_dp(frame)
        if serving is not None and serving in self.connected:
            self.cp.punt(serving, frame, now, now)

    def step(self) -> None:
        """One round trip: clients → CP → DP rules → clients."""
        out = self.fleet.outbox[:]
        self.fleet.outbox.clear()
        for frame in out:
            self.punt(frame)
        self.deliver()

    def deliver(self) -> None:
        now = self.clock()
        self.cp.settle()
        self.replicate()
        for dp, assignment in self.cp.assignments.items():
            wanted = {g.group_id for g in assignment.groups}
            table = self.installed.setdefault(dp, {})
            for key in [k for k, r in table.items() if r.group not in wanted]:
                del table[key]
        self.cp.assignments.clear()
        for dp, rules in list(self.cp.full_sync.items()):
            self.installed[dp] = {}
            self._apply(dp, rules)
        self.cp.full_sync.clear()
        for dp, rules in list(self.cp.rules.items()):
            if self.ack_rules and dp in self.connected:
                self._apply(dp, rules)
        if self.ack_rules:
            self.cp.rules.clear()
        for frames in self.cp.drain_tx().values():
            for frame in frames:
                self.sent_to_clients.append(frame)
                self.fleet.receive(frame, now)

    def _apply(self, dp: str, rules: list[SessionRule]) -> None:
        results, final = [], []
        table = self.installed[dp]
        for rule in rules:
            if rule.op is RuleOp.REMOVE:
                if table.pop(rule.session_key, None) is not None:
                    final.append(Usage(rule.session_key, 10, 1000, 20, 2000))
                    results.append(RuleResult(rule.session_key, True))
                else:
                    results.append(RuleResult(rule.session_key, False, "unknown session"))
            else:
                table[rule.session_key] = rule
                results.append(RuleResult(rule.session_key, True))
        self.cp.rule_ack(dp, results, final, self.clock())

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.cp.handle_timers(self.clock())
        self.fleet.tick(self.clock())
        self.deliver()

    def run(self, seconds: float = 5.0, tick: float = 0.01) -> None:
        end = self.clock() + seconds
        while self.clock() < end:
            self.step()
            self.advance(tick)

    def dial(self, count: int = 0, seconds: float = 5.0) -> None:
        self.fleet.dial(count, 0, 0, self.clock())
        self.run(seconds)

    def up(self) -> int:
        return self.fleet.counts[SubscriberState.UP]

    def count(self, name: str, label: str = "") -> int:
        return self.cp.counters[name, label]

    def drain_accounting(self) -> list[AccountingRecord]:
        records = list(self.cp.accounting)
        self.cp.accounting.clear()
        return records
