"""The fleet with PPPoE subscribers and cable modems together, against the real control plane
core in-process (InProcessLab, fake clock); and the runner telling their downstream test
traffic from their control frames."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections import Counter

import pytest

from control_plane.cable import CmState
from control_plane.sessions import SessionState
from vnf.api import common_pb2, emulator_pb2
from vnf.codec.docsis import PacketFrame, encode_carrier, encode_frame
from vnf.codec.docsis_mgmt import RangingStatus, RngRsp, mgmt_carrier
from vnf.codec.ethernet import EtherType
from vnf.codec.ipv4 import build_udp_packet
from vnf.codec.ppp import PppProtocol
from vnf.codec.pppoe import encode_session_frame
from vnf.config import EmulatorConfig, Endpoint
from vnf.emulator.adapters.runner import EmulatorRuntime
from vnf.emulator.client import SubscriberClient
from vnf.emulator.fleet import Fleet, SubscriberSpec, SubscriberState
from vnf.emulator.main import EmulatorServicer, _collect, build_fleet
from vnf.emulator.modem import ModemClient
from vnf.emulator.traffic import TrafficPlan, TrafficRun, payload
from vnf.lab.inprocess import InProcessLab
from vnf.lab.subscribers import lab_modems
from vnf.model.addresses import mac_to_str
from vnf.model.cable import ProvisionedModem

SECRET = b"vnf-cable"
UP = SubscriberState.UP


def mixed_lab(pppoe: int, modems: int, provision: bool = True) -> InProcessLab:
    """A lab whose fleet holds ``pppoe`` subscribers, then ``modems`` cable modems."""
    lab = InProcessLab(subscribers=pppoe)
    specs = [s.spec for s in lab.fleet.subscribers]
    cms = lab_modems(modems, 0, 1)
    specs += [
        SubscriberSpec(
            len(specs) + i,
            m.mac,
            mac_to_str(m.mac),
            "",
            (),
            kind="docsis",
            cpe_mac=m.cpe_mac,
            service_class="default",
        )
        for i, m in enumerate(cms)
    ]
    if provision:
        lab.cp.put_modems([ProvisionedModem(m.mac) for m in cms], lab.clock())
    lab.fleet = Fleet(specs, os.urandom, secret=SECRET, wall=lab.clock)
    return lab


def check_counts(fleet: Fleet) -> None:
    """Every subscriber is counted once, in its state, overall and by kind."""
    by_state = Counter(s.state for s in fleet.subscribers)
    assert {k: v for k, v in fleet.counts.items() if v} == dict(by_state)
    for kind, counts in fleet.counts_by_kind.items():
        mine = Counter(s.state for s in fleet.subscribers if s.spec.kind == kind)
        assert {k: v for k, v in counts.items() if v} == dict(mine)
        assert sum(counts.values()) == fleet.totals_by_kind[kind]


def modems_of(lab: InProcessLab) -> list[int]:
    return [i for i, s in enumerate(lab.fleet.subscribers) if s.spec.kind == "docsis"]


def test_pppoe_subscribers_and_modems_come_up_together() -> None:
    lab = mixed_lab(50, 50)
    assert lab.fleet.totals_by_kind == {"pppoe": 50, "docsis": 50}
    assert lab.fleet.dial(0, 0, 0, lab.clock()) == 100
    lab.run(5)
    fleet = lab.fleet
    assert fleet.counts[UP] == 100
    assert fleet.counts_by_kind["pppoe"][UP] == fleet.counts_by_kind["docsis"][UP] == 50
    check_counts(fleet)
    addresses = [s.addressing.local_ip for s in fleet.subscribers if s.addressing is not None]
    assert len(set(addresses)) == 100
    for i in modems_of(lab):
        sub = fleet.subscribers[i]
        assert isinstance(sub.client, ModemClient)
        cm = lab.cp.cable.by_mac[sub.spec.mac]
        assert cm.cm is CmState.ONLINE and cm.state is SessionState.ACTIVE
        assert sub.addressing is not None and sub.addressing.local_ip == cm.ipv4
        assert sub.session_id == cm.sid and cm.cpe_mac == sub.spec.cpe_mac
    assert all(isinstance(s.client, SubscriberClient) for s in fleet.subscribers[:50])
    assert len(fleet.setup_s) == 100 and not fleet.failures
    assert lab.cp.sessions.counts[SessionState.ACTIVE] == 100


def test_dial_by_kind() -> None:
    lab = mixed_lab(50, 50)
    fleet = lab.fleet
    assert fleet.dial(0, 0, 0, lab.clock(), kind="docsis") == 50
    lab.run(3)
    assert fleet.counts_by_kind["docsis"][UP] == 50
    assert fleet.counts_by_kind["pppoe"][SubscriberState.IDLE] == 50
    assert fleet.counts[UP] == 50
    check_counts(fleet)
    assert fleet.dial(10, 0, 0, lab.clock(), kind="pppoe") == 10
    lab.run(3)
    assert fleet.counts_by_kind["pppoe"][UP] == 10
    assert fleet.dial(0, 0, 0, lab.clock()) == 40  # only what is not up yet
    lab.run(3)
    assert fleet.counts[UP] == 100
    check_counts(fleet)


def test_kinds_are_checked() -> None:
    lab = mixed_lab(1, 1)
    with pytest.raises(ValueError, match="kind"):
        lab.fleet.dial(0, 0, 0, lab.clock(), kind="cable")
    spec = lab.fleet.subscribers[1].spec
    with pytest.raises(ValueError, match="wall clock"):
        Fleet([spec], os.urandom)
    with pytest.raises(ValueError, match="kind"):
        Fleet([SubscriberSpec(0, spec.mac, "x", "", (), kind="cable")], os.urandom)


def test_hangup_powers_modems_off_by_name_and_all() -> None:
    lab = mixed_lab(2, 3)
    fleet = lab.fleet
    fleet.dial(0, 0, 0, lab.clock())
    lab.run(2)
    assert fleet.counts[UP] == 5
    first_modem = fleet.subscribers[2]
    assert fleet.hangup(0, mac_to_str(first_modem.spec.mac), lab.clock()) == 1
    assert first_modem.state is SubscriberState.DOWN
    assert fleet.counts_by_kind["docsis"][UP] == 2
    assert fleet.hangup(0, "", lab.clock()) == 4
    lab.run(2)
    assert fleet.counts[SubscriberState.DOWN] == 5 and fleet.terminated_by_peer == 0
    check_counts(fleet)
    # Powered off: silent, so the CMTS declares them offline after its T4.
    sent = len(fleet.outbox)
    lab.run(40, tick=0.5)
    assert len(fleet.outbox) == sent
    assert fleet.counts[SubscriberState.DOWN] == 5
    assert not lab.cp.cable.by_mac
    assert lab.count("modem_timeouts", "t4_timeout") == 3


def test_a_reset_modem_comes_back_up_by_itself() -> None:
    lab = mixed_lab(2, 2)
    fleet = lab.fleet
    ups: list[int] = []
    downs: list[int] = []
    fleet.on_up, fleet.on_down = ups.append, downs.append
    fleet.dial(0, 0, 0, lab.clock())
    lab.run(20, tick=0.1)  # long after the dial: setup times must not count from it
    index = modems_of(lab)[0]
    sub = fleet.subscribers[index]
    client = sub.client
    assert lab.cp.reset_modem(sub.spec.mac, lab.clock())
    lab.deliver()
    assert sub.state is SubscriberState.DOWN and fleet.terminated_by_peer == 1
    assert downs == [index]
    check_counts(fleet)
    lab.run(2)
    assert sub.state is UP and sub.client is client  # no dial: the modem did it
    assert ups.count(index) == 2
    assert fleet.setup_s[-1] < 0.1  # from its own restart, after the backoff
    assert fleet.counts[UP] == 4 and not fleet.failures
    check_counts(fleet)


def test_a_refused_modem_keeps_trying_and_a_queued_dial_does_not_restart_it() -> None:
    lab = mixed_lab(0, 2, provision=False)
    fleet = lab.fleet
    fleet.dial(0, 0, 0, lab.clock())
    lab.run(1)
    assert fleet.counts[SubscriberState.FAILED] == 2
    assert fleet.failures == {"registration_rejected_reject_permanent": 2}
    check_counts(fleet)
    macs = [s.spec.mac for s in fleet.subscribers]
    lab.cp.put_modems([ProvisionedModem(mac) for mac in macs], lab.clock())
    # A slow dial: the first modem restarts now, the second waits its turn (20 s) and comes
    # back on its own first (10 s backoff after a refusal).
    second = fleet.subscribers[1]
    client = second.client
    assert fleet.dial(0, 0.05, 0, lab.clock()) == 2
    assert list(fleet.pending) == [1]
    lab.run(12, tick=0.1)
    assert fleet.counts[UP] == 2 and second.client is client
    lab.run(10, tick=0.1)
    assert not fleet.pending and second.client is client and second.state is UP
    check_counts(fleet)


def test_the_runner_hands_downstream_test_traffic_of_both_kinds_to_the_verifier() -> None:
    group_mac, client_mac, cpe_mac = b"\x16" + bytes(5), b"\x02" + bytes(5), b"\x04" + bytes(5)
    server_ip, port = 0xC612000A, 5001

    def packet(flow: int) -> bytes:
        return build_udp_packet(server_ip, 0x64400002, port, port, payload(flow, 0, 1, 100))

    pppoe = encode_session_frame(client_mac, group_mac, 7, PppProtocol.IPV4, packet(0))
    pdu = encode_frame(PacketFrame(cpe_mac, group_mac, EtherType.IPV4, packet(1)))
    docsis = encode_carrier(client_mac, group_mac, pdu)
    control = mgmt_carrier(client_mac, group_mac, RngRsp(1, 1, RangingStatus.SUCCESS))

    async def scenario() -> tuple[TrafficRun, dict[str, int]]:
        access, segment = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        server, far = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            access.setblocking(False)
            runtime = EmulatorRuntime(Fleet([], os.urandom), access, server, server_ip, port)
            run = runtime.traffic = TrafficRun(TrafficPlan(1.0, 10, 128), [0, 1], time.monotonic())
            run.downstream.record_sent(0, 0)
            run.downstream.record_sent(1, 0)
            for frame in (pppoe, docsis, control):
                segment.send(frame)
            runtime.on_access()
            return run, runtime.counters
        finally:
            for sock in (access, segment, server, far):
                sock.close()

    run, counters = asyncio.run(scenario())
    assert [run.downstream.flows[f].received for f in (0, 1)] == [1, 1]
    assert counters["rx_frames"] == 3
    assert counters["rx_foreign"] == 1  # the RNG-RSP: for none of the fleet's modems


def test_the_emulator_process_dials_modems_by_kind_and_reports_them() -> None:
    config = EmulatorConfig(
        name="emu-site1",
        lab="lab",
        site="site1",
        netns="ns",
        endpoint=Endpoint("127.0.0.1"),
        log_path="/dev/null",
        access_ifname="access",
        lab_index=0,
        site_index=1,
        subscribers=3,
        chap_share=0.5,
        username="user{n}",
        password="pw{n}",
        server_netns="server",
        server_ip="198.18.2.10",
        modems=2,
        modem_service_class="gold",
        cable_secret="s3cret",
    )
    fleet = build_fleet(config)
    assert [s.spec.kind for s in fleet.subscribers] == ["pppoe"] * 3 + ["docsis"] * 2
    cms = lab_modems(2, 0, 1)
    for sub, cm in zip(fleet.subscribers[3:], cms, strict=True):
        spec = sub.spec
        assert (spec.mac, spec.cpe_mac, spec.service_class) == (cm.mac, cm.cpe_mac, "gold")
        assert fleet.by_name[mac_to_str(cm.mac)] == spec.index
    assert fleet.secret == b"s3cret" and fleet.wall is not None

    async def scenario() -> tuple[emulator_pb2.EmulatorStatus, dict[tuple[str, str], float]]:
        access, segment = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        server, far = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            runtime = EmulatorRuntime(fleet, access, server, 0xC612020A, 5001)
            servicer = EmulatorServicer(runtime)
            request = emulator_pb2.DialRequest(kind="docsis")
            reply = await servicer.Dial(request, None)
            assert reply.started == 2
            status = await servicer.GetStatus(common_pb2.Empty(), None)
            samples = {
                (sample.labels["kind"], sample.labels["state"]): sample.value
                for family in _collect(runtime, "emu-site1")
                if family.name == "vnf_emulator_subscribers"
                for sample in family.samples
            }
            return status, samples
        finally:
            for sock in (access, segment, server, far):
                sock.close()

    status, samples = asyncio.run(scenario())
    assert (status.subscribers, status.modems, status.modems_up) == (5, 2, 0)
    assert (status.connecting, status.idle) == (2, 3)
    assert samples[("docsis", "connecting")] == 2 and samples[("pppoe", "idle")] == 3
    assert samples[("docsis", "up")] == samples[("pppoe", "up")] == 0
