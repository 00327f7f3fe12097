"""ModemClient (one cable modem + its CPE) against the real CMTS: the control plane's service
core in-process (InProcessLab: fake clock, DPs that punt and acknowledge rules), with loss."""

from __future__ import annotations

import ipaddress
import os
import zlib
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from control_plane.cable import CmState
from control_plane.sessions import SessionState
from vnf.clock import FakeClock
from vnf.codec import dhcp
from vnf.codec.docsis import (
    ManagementFrame,
    PacketFrame,
    RequestEh,
    decode_carrier,
    decode_frame,
    encode_carrier,
    encode_frame,
)
from vnf.codec.docsis_mgmt import (
    RFC868_EPOCH_OFFSET,
    Confirmation,
    DscReq,
    DscRsp,
    MgmtMessage,
    RangingStatus,
    RegAck,
    RegReq,
    RegRsp,
    RngReq,
    RngRsp,
    mgmt_carrier,
    parse_mgmt_carrier,
    verify_mic,
)
from vnf.codec.ethernet import EtherType
from vnf.codec.ipv4 import build_udp_packet, decode_ipv4
from vnf.emulator.client import Connected, Disconnected
from vnf.emulator.modem import BROADCAST, ModemClient
from vnf.engines.ppp_fsm import Dropped
from vnf.errors import DecodeError, LocalProtocolError
from vnf.lab.inprocess import InProcessLab
from vnf.lab.subscribers import lab_modems
from vnf.model.cable import ProvisionedModem
from vnf.model.session import AccessType

SECRET = b"vnf-cable"
OTHER_MAC = b"\x02\x99\x99\x99\x99\x99"


def mgmt(frame: bytes) -> MgmtMessage | None:
    try:
        return parse_mgmt_carrier(frame)[3]
    except DecodeError:
        return None


def dhcp_of(frame: bytes) -> dhcp.DhcpMessage | None:
    try:
        mac_frame = decode_frame(frame, 14)
        if not isinstance(mac_frame, PacketFrame):
            return None
        return dhcp.decode_dhcp_udp(mac_frame.payload)[2]
    except DecodeError:
        return None


def is_broadcast_rng(frame: bytes) -> bool:
    message = mgmt(frame)
    return frame[:6] == BROADCAST and isinstance(message, RngReq) and message.sid == 0


def is_unicast_rng(frame: bytes) -> bool:
    message = mgmt(frame)
    return frame[:6] != BROADCAST and isinstance(message, RngReq) and message.sid != 0


def of_type(kind: type) -> Callable[[bytes], bool]:
    return lambda frame: isinstance(mgmt(frame), kind)


def dhcp_type(kind: dhcp.MessageType) -> Callable[[bytes], bool]:
    def match(frame: bytes) -> bool:
        message = dhcp_of(frame)
        return message is not None and message.message_type is kind

    return match


def first(n: int, match: Callable[[bytes], bool]) -> Callable[[bytes], bool]:
    """A loss predicate: the first ``n`` frames that ``match``."""
    lost = [0]

    def lose(frame: bytes) -> bool:
        if lost[0] < n and match(frame):
            lost[0] += 1
            return True
        return False

    return lose


class CableLink:
    """One ModemClient ⇄ the lab's access segment, DPs and CP (the CMTS)."""

    def __init__(
        self,
        provision: str | None = "default",
        secret: bytes = SECRET,
        **timers: float,
    ) -> None:
        self.lab = InProcessLab(subscribers=0)
        self.clock: FakeClock = self.lab.clock
        lab_modem = lab_modems(1, 0, 1)[0]
        self.mac, self.cpe_mac = lab_modem.mac, lab_modem.cpe_mac
        if provision is not None:
            self.lab.cp.put_modems([ProvisionedModem(self.mac, provision)], self.clock())
        self.modem = ModemClient(
            self.mac,
            self.cpe_mac,
            service_class="default",
            secret=secret,
            random_bytes=os.urandom,
            wall=self.clock,
            **timers,  # type: ignore[arg-type]
        )
        self.events: list[tuple[float, object]] = []
        self.upstream: list[tuple[float, bytes]] = []  # everything the modem sent
        self.downstream: list[bytes] = []  # everything the CMTS sent it
        self.lose_up: Callable[[bytes], bool] = lambda frame: False
        self.lose_down: Callable[[bytes], bool] = lambda frame: False
        self._delivered = 0

    def start(self) -> None:
        self.modem.start(self.clock())
        self.exchange()

    def exchange(self) -> None:
        """Move frames both ways until nothing moves."""
        lab = self.lab
        for _ in range(100):
            frames = self.modem.frames_to_send()
            for frame in frames:
                self.upstream.append((self.clock(), frame))
                if not self.lose_up(frame):
                    lab.punt(frame)
            lab.deliver()
            new = lab.sent_to_clients[self._delivered :]
            self._delivered = len(lab.sent_to_clients)
            for frame in new:
                self.downstream.append(frame)
                if not self.lose_down(frame):
                    self.modem.receive(frame, self.clock())
            self.collect()
            if not frames and not new:
                return
        raise AssertionError("the exchange does not settle")

    def collect(self) -> None:
        while (event := self.modem.next_event()) is not None:
            self.events.append((self.clock(), event))

    def run(self, seconds: float, tick: float = 0.05) -> None:
        """Let time pass in ticks, and to the modem's timer exactly when one falls in a tick."""
        end = self.clock() + seconds
        while self.clock() < end - 1e-9:
            at = self.modem.get_timer()
            step = min(self.clock() + tick, end)
            self.clock.set(step if at is None or at <= self.clock() else min(step, at))
            now = self.clock()
            self.lab.cp.handle_timers(now)
            at = self.modem.get_timer()
            if at is not None and at <= now:
                self.modem.handle_timer(now)
            self.exchange()

    def connect(self) -> Connected:
        self.start()
        self.run(0.5)
        return self.connected()

    def connected(self) -> Connected:
        ups = [e for _, e in self.events if isinstance(e, Connected)]
        assert ups, self.events
        return ups[-1]

    def sent(self, match: Callable[[bytes], bool]) -> list[tuple[float, bytes]]:
        return [(at, f) for at, f in self.upstream if match(f)]

    def disconnects(self) -> list[tuple[float, Disconnected]]:
        return [(at, e) for at, e in self.events if isinstance(e, Disconnected)]

    def cm(self) -> CmState | None:
        modem = self.lab.cp.cable.by_mac.get(self.mac)
        return modem.cm if modem is not None else None


# --- bring-up --------------------------------------------------------------------------------


def test_bring_up_gives_the_cpe_the_address_the_cmts_installed() -> None:
    link = CableLink()
    start = link.clock()
    link.start()
    event = link.connected()
    cp = link.lab.cp
    cm = cp.cable.by_mac[link.mac]
    group = cp.placement.by_id[cm.group]
    assert cm.cm is CmState.ONLINE and cm.state is SessionState.ACTIVE
    assert cm.cpe_mac == link.cpe_mac and cm.service_class == "default"
    assert event.addressing.local_ip == cm.ipv4
    assert ipaddress.IPv4Address(cm.ipv4) in group.group.pool
    assert event.addressing.peer_ip == int(group.group.gateway)
    dns = [int(ipaddress.IPv4Address(d)) for d in link.lab.config.dns]
    assert [event.addressing.dns1, event.addressing.dns2] == dns[:2]
    assert event.session_id == cm.sid == link.modem.sid
    assert event.ac_mac == group.mac == link.modem.cmts_mac == link.modem.gateway_mac
    assert link.modem.state == "up" and link.modem.addressing == event.addressing
    assert link.modem.started_at == start
    # The DP got the rule: CM MAC, SID, CPE MAC, the CPE's address.
    rule = link.lab.installed[group.dp][cm.key]
    assert rule.endpoint.access is AccessType.DOCSIS
    assert (rule.endpoint.client_mac, rule.endpoint.cm_sid) == (link.mac, cm.sid)
    assert rule.endpoint.cpe_mac == link.cpe_mac and rule.ipv4 == cm.ipv4
    assert not link.disconnects()


def test_the_upstream_messages_are_what_the_cmts_expects() -> None:
    link = CableLink()
    link.connect()
    sid, cmts = link.modem.sid, link.modem.cmts_mac
    kinds = []
    for _, frame in link.upstream:
        dst, src, raw = decode_carrier(frame)
        assert src == link.mac
        mac_frame = decode_frame(raw)
        message = mgmt(frame)
        if message is not None:
            kinds.append(type(message).__name__)
        else:
            request = dhcp_of(frame)
            assert request is not None and request.chaddr == link.cpe_mac
            assert isinstance(mac_frame, PacketFrame) and mac_frame.src == link.cpe_mac
            kinds.append(request.message_type.name)
        if dst == BROADCAST:  # initial ranging: timing header, no SID yet
            assert isinstance(mac_frame, ManagementFrame) and mac_frame.timing
            assert mac_frame.ehdr == ()
        else:  # everything else names the SID and goes to the CMTS
            assert isinstance(mac_frame, ManagementFrame | PacketFrame)
            assert dst == cmts and mac_frame.ehdr == (RequestEh(0, sid),)
    assert kinds == ["RngReq", "RngReq", "RegReq", "RegAck", "DISCOVER", "REQUEST"]
    (reg,) = [mgmt(f) for _, f in link.sent(of_type(RegReq))]
    assert isinstance(reg, RegReq) and verify_mic(SECRET, reg)
    assert reg.timestamp == int(link.clock()) + RFC868_EPOCH_OFFSET
    assert reg.network_access and reg.max_cpe == 1
    assert sorted(
        (f.upstream, f.reference, f.class_name, f.qos_set) for f in reg.service_flows
    ) == [
        (False, 2, "default", 1),
        (True, 1, "default", 1),
    ]


# --- loss ------------------------------------------------------------------------------------


def test_initial_ranging_is_retried_every_t3() -> None:
    link = CableLink()
    link.lose_up = first(2, is_broadcast_rng)
    start = link.clock()
    link.start()
    link.run(3)
    times = [round(at - start, 2) for at, _ in link.sent(is_broadcast_rng)]
    assert times == [0.0, 1.0, 2.0]
    assert link.connected() and not link.disconnects()


@pytest.mark.parametrize(
    ("side", "lose"),
    [
        ("down", of_type(RngRsp)),  # continue lost: ranging again from SID 0
        ("up", is_unicast_rng),
        ("down", of_type(RegRsp)),
        ("up", of_type(RegAck)),
        ("down", dhcp_type(dhcp.MessageType.OFFER)),
        ("up", dhcp_type(dhcp.MessageType.REQUEST)),
        ("down", dhcp_type(dhcp.MessageType.ACK)),
    ],
)
def test_one_lost_message_is_recovered_by_retransmission(
    side: str, lose: Callable[[bytes], bool]
) -> None:
    link = CableLink()
    if side == "up":
        link.lose_up = first(1, lose)
    else:
        link.lose_down = first(1, lose)
    link.start()
    link.run(20, tick=0.1)
    event = link.connected()
    assert link.modem.state == "up" and link.cm() is CmState.ONLINE
    assert link.lab.cp.cable.by_mac[link.mac].ipv4 == event.addressing.local_ip
    # A lost REG-ACK leaves the CMTS waiting; the DHCP retries then fail, the modem starts
    # over and gets through: the only case that reports a failure on the way.
    reasons = [e.reason for _, e in link.disconnects()]
    assert reasons in ([], ["dhcp_timeout"])


def test_reg_req_is_retransmitted_byte_for_byte_every_t6() -> None:
    link = CableLink()
    link.lose_down = first(1, of_type(RegRsp))
    link.start()
    link.run(5)
    sent = link.sent(of_type(RegReq))
    assert len(sent) == 2
    assert round(sent[1][0] - sent[0][0], 2) == 3.0
    assert sent[0][1] == sent[1][1]
    assert link.lab.count("reg_req_retransmits") == 1
    assert link.connected()


def test_lost_offer_repeats_the_same_discover() -> None:
    link = CableLink()
    link.lose_down = first(1, dhcp_type(dhcp.MessageType.OFFER))
    link.start()
    link.run(2)
    discovers = link.sent(dhcp_type(dhcp.MessageType.DISCOVER))
    assert len(discovers) == 2 and discovers[0][1] == discovers[1][1]
    assert link.connected()


def test_a_nak_restarts_dhcp_with_a_new_transaction() -> None:
    link = CableLink()
    link.lose_down = first(1, dhcp_type(dhcp.MessageType.ACK))
    link.start()
    (_, request_frame) = link.sent(dhcp_type(dhcp.MessageType.REQUEST))[0]
    request = dhcp_of(request_frame)
    assert request is not None
    cmts = link.modem.cmts_mac
    nak = dhcp.DhcpMessage(
        op=dhcp.BOOTREPLY,
        xid=request.xid,
        chaddr=link.cpe_mac,
        message_type=dhcp.MessageType.NAK,
        server_id=request.server_id,
    )
    packet = dhcp.encode_dhcp_udp(nak, request.server_id, 0xFFFF_FFFF)
    link.modem.receive(
        encode_carrier(
            link.mac,
            cmts,
            encode_frame(PacketFrame(BROADCAST, cmts, EtherType.IPV4, packet)),
        ),
        link.clock(),
    )
    link.exchange()
    discovers = [dhcp_of(f) for _, f in link.sent(dhcp_type(dhcp.MessageType.DISCOVER))]
    assert len(discovers) == 2
    assert discovers[0] is not None and discovers[1] is not None
    assert discovers[0].xid == request.xid != discovers[1].xid
    assert link.connected()


def test_no_cmts_is_a_ranging_timeout_then_a_new_attempt() -> None:
    link = CableLink()
    link.lose_up = lambda frame: True
    start = link.clock()
    link.start()
    link.run(7.5)
    ((at, event),) = link.disconnects()
    assert event == Disconnected("ranging_timeout", by_peer=False)
    assert round(at - start, 2) == 5.0  # five RNG-REQs, T3 after the last
    times = [round(t - start, 2) for t, _ in link.sent(is_broadcast_rng)]
    assert times == [0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 7.0]  # re-init after a 1 s backoff
    assert link.modem.started_at == start + 6.0
    link.lose_up = lambda frame: False
    link.run(1)
    assert link.connected()


def test_registration_without_answers_times_out() -> None:
    link = CableLink()
    link.lose_down = lambda frame: isinstance(mgmt(frame), RegRsp)
    link.start()
    link.run(9.5)
    assert len(link.sent(of_type(RegReq))) == 3
    assert [e for _, e in link.disconnects()] == [
        Disconnected("registration_timeout", by_peer=False)
    ]


# --- the CMTS says no, or resets ---------------------------------------------------------------


def test_abort_after_a_reset_reinitializes_and_reconnects() -> None:
    link = CableLink()
    before = link.connect()
    assert link.lab.cp.reset_modem(link.mac, link.clock())
    link.exchange()
    ((at, event),) = link.disconnects()
    assert event == Disconnected("ranging_aborted", by_peer=True)
    assert link.modem.state == "reinit" and link.modem.addressing is None
    with pytest.raises(LocalProtocolError):
        link.modem.data_frame(b"")
    link.run(1.5)
    after = link.connected()
    assert after is not before and link.modem.state == "up"
    assert link.modem.started_at == pytest.approx(at + 1.0, abs=0.06)
    assert link.cm() is CmState.ONLINE
    assert link.lab.count("registrations", "ok") == 2


@pytest.mark.parametrize(
    ("provision", "secret", "reason"),
    [
        (None, SECRET, "registration_rejected_reject_permanent"),
        ("default", b"not-the-secret", "registration_rejected_reject_authentication_failure"),
    ],
)
def test_a_refused_registration_is_a_failure_and_waits_longer(
    provision: str | None, secret: bytes, reason: str
) -> None:
    link = CableLink(provision=provision, secret=secret)
    link.start()
    ((_, event),) = link.disconnects()
    assert event == Disconnected(reason, by_peer=True)
    assert link.modem.state == "reinit"
    assert link.cm() is None  # the CMTS forgot it
    link.run(9.5)
    assert len(link.sent(is_broadcast_rng)) == 1  # ten backoffs before trying again
    link.run(1.0)
    assert len(link.sent(is_broadcast_rng)) == 2
    assert len(link.disconnects()) == 2


def test_a_reject_with_an_unknown_code_is_named_by_its_number() -> None:
    link = CableLink()
    link.lose_down = of_type(RegRsp)
    link.start()
    sid, cmts = link.modem.sid, link.modem.cmts_mac
    link.modem.receive(mgmt_carrier(link.mac, cmts, RegRsp(sid, 99)), link.clock())
    link.collect()
    assert [e for _, e in link.disconnects()] == [
        Disconnected("registration_rejected_99", by_peer=True)
    ]


# --- once registered -------------------------------------------------------------------------


def test_station_maintenance_keeps_the_modem_online() -> None:
    link = CableLink()
    link.connect()
    link.run(95, tick=0.25)
    assert not link.disconnects()
    assert link.cm() is CmState.ONLINE  # the CMTS's T4 (30 s) never ran out
    maintenance = link.sent(is_unicast_rng)
    assert len(maintenance) == 1 + 9  # the ranging one, then one every 10 s


def test_t4_when_the_cmts_stops_answering() -> None:
    link = CableLink()
    link.connect()
    up_at = next(at for at, e in link.events if isinstance(e, Connected))
    link.lose_down = lambda frame: True
    link.run(45, tick=0.25)
    ((at, event),) = link.disconnects()
    assert event == Disconnected("t4_timeout", by_peer=False)
    # Three unanswered RNG-REQs (at 10, 20 and 30 s), T4 one interval after the third.
    assert at - up_at == pytest.approx(40.0, abs=0.3)
    assert link.modem.state in ("reinit", "ranging")
    link.lose_down = lambda frame: False
    link.run(10, tick=0.1)
    assert link.modem.state == "up"
    assert link.lab.count("modem_reinit") >= 1  # the CMTS saw it range again (a reboot)


def test_dsc_changes_the_service_class() -> None:
    link = CableLink()
    link.connect()
    assert link.modem.service_class == "default"
    link.lab.cp.put_modems([ProvisionedModem(link.mac, "gold")], link.clock())
    link.exchange()
    (dsc_req,) = [mgmt(f) for f in link.downstream if isinstance(mgmt(f), DscReq)]
    (dsc_rsp,) = [mgmt(f) for _, f in link.sent(of_type(DscRsp))]
    assert isinstance(dsc_req, DscReq) and isinstance(dsc_rsp, DscRsp)
    assert dsc_rsp.transaction_id == dsc_req.transaction_id
    assert dsc_rsp.confirmation == Confirmation.OK
    assert dsc_rsp.service_flows == dsc_req.service_flows
    assert link.modem.service_class == "gold"
    assert link.lab.cp.cable.by_mac[link.mac].service_class == "gold"
    assert link.lab.count("dsc", "ok") == 1
    assert not [e for _, e in link.events if isinstance(e, Dropped)]  # DSC-ACK taken


def test_dsc_survives_a_lost_response() -> None:
    link = CableLink()
    link.connect()
    link.lose_up = first(1, of_type(DscRsp))
    link.lab.cp.put_modems([ProvisionedModem(link.mac, "gold")], link.clock())
    link.exchange()
    link.run(1)
    assert len(link.sent(of_type(DscRsp))) == 2
    assert link.lab.count("dsc", "ok") == 1
    assert link.lab.cp.cable.by_mac[link.mac].service_class == "gold"


# --- hangup ----------------------------------------------------------------------------------


def test_hangup_powers_the_modem_off() -> None:
    link = CableLink()
    link.connect()
    link.modem.hangup(link.clock())
    link.collect()
    assert [e for _, e in link.disconnects()] == [Disconnected("hangup", by_peer=False)]
    assert link.modem.frames_to_send() == []
    assert link.modem.get_timer() is None and link.modem.state == "off"
    sent = len(link.upstream)
    link.run(60, tick=0.5)
    assert len(link.upstream) == sent
    assert len(link.disconnects()) == 1
    with pytest.raises(LocalProtocolError):
        link.modem.start(link.clock())


def test_hangup_while_coming_up_and_while_waiting_to_reinit() -> None:
    link = CableLink()
    link.lose_up = lambda frame: True
    link.start()
    link.modem.hangup(link.clock())
    link.collect()
    assert [e for _, e in link.disconnects()] == [Disconnected("hangup", by_peer=False)]

    link = CableLink()
    link.lose_up = lambda frame: True
    link.start()
    link.run(5.5)
    assert link.modem.state == "reinit"
    link.modem.hangup(link.clock())
    link.collect()
    assert [e.reason for _, e in link.disconnects()] == ["ranging_timeout"]  # nothing new
    assert link.modem.get_timer() is None


# --- data frames -----------------------------------------------------------------------------


def test_data_frame_is_a_valid_upstream_packet_pdu() -> None:
    link = CableLink()
    event = link.connect()
    modem = link.modem
    for size in (0, 18, 1400, 18):  # the MAC header cache is per length
        packet = build_udp_packet(event.addressing.local_ip, 0xC612000A, 5001, 5001, b"x" * size)
        frame = modem.data_frame(packet)
        dst, src, raw = decode_carrier(frame)
        assert (dst, src) == (modem.cmts_mac, link.mac)
        mac_frame = decode_frame(raw)  # checks the HCS and the CRC-32
        assert isinstance(mac_frame, PacketFrame)
        assert mac_frame.ehdr == (RequestEh(0, modem.sid),)
        assert (mac_frame.dst, mac_frame.src) == (modem.gateway_mac, link.cpe_mac)
        assert mac_frame.ethertype == EtherType.IPV4 and mac_frame.payload == packet
        assert decode_ipv4(mac_frame.payload).src == event.addressing.local_ip
        expected = encode_frame(
            PacketFrame(modem.gateway_mac, link.cpe_mac, EtherType.IPV4, packet, mac_frame.ehdr)
        )
        assert frame == encode_carrier(modem.cmts_mac, link.mac, expected)
        assert frame[-4:] == zlib.crc32(frame[-4 - 14 - len(packet) : -4]).to_bytes(4, "little")


def test_no_data_frames_before_connected() -> None:
    link = CableLink()
    with pytest.raises(LocalProtocolError):
        link.modem.data_frame(b"\x45" + bytes(19))


# --- what the modem drops --------------------------------------------------------------------


def _dropped(link: CableLink) -> list[Dropped]:
    link.collect()
    return [e for _, e in link.events if isinstance(e, Dropped)]


def test_frames_not_for_the_modem_are_dropped_by_reason() -> None:
    link = CableLink()
    link.modem.receive(b"\x00" * 60, link.clock())
    assert _dropped(link) == [Dropped("docsis", "powered_off")]
    event = link.connect()
    sid, cmts = link.modem.sid, link.modem.cmts_mac
    now = link.clock()
    good = mgmt_carrier(link.mac, cmts, RngRsp(sid, 1, RangingStatus.SUCCESS))
    link.events.clear()
    link.modem.receive(good[:20], now)  # truncated
    link.modem.receive(good[:12] + b"\x08\x00" + good[14:], now)  # another EtherType
    link.modem.receive(good[:18] + bytes((good[18] ^ 1,)) + good[19:], now)  # bad HCS
    link.modem.receive(good[:20] + bytes((good[20] ^ 1,)) + good[21:], now)  # bad CRC
    link.modem.receive(mgmt_carrier(OTHER_MAC, cmts, RngRsp(sid, 1, 3)), now)
    link.modem.receive(mgmt_carrier(link.mac, OTHER_MAC, RngRsp(sid, 1, 3)), now)
    link.modem.receive(mgmt_carrier(link.mac, cmts, RngRsp(sid + 1, 1, 3)), now)
    link.modem.receive(mgmt_carrier(link.mac, cmts, RegReq(sid)), now)
    data = build_udp_packet(0xC612000A, event.addressing.local_ip, 5001, 5001, b"payload")
    pdu = encode_frame(PacketFrame(link.cpe_mac, cmts, EtherType.IPV4, data))
    link.modem.receive(encode_carrier(link.mac, cmts, pdu), now)
    assert _dropped(link) == [
        Dropped("docsis", "length_overrun"),
        Dropped("ethernet", "bad_ethertype"),
        Dropped("docsis", "bad_hcs"),
        Dropped("docsis", "bad_crc"),
        Dropped("docsis", "not_for_us"),
        Dropped("docsis", "wrong_cmts"),
        Dropped("docsis_mgmt", "wrong_sid"),
        Dropped("docsis_mgmt", "unexpected_message"),
        Dropped("cpe", "network_data"),
    ]
    assert link.modem.state == "up"


@settings(max_examples=200)
@given(st.binary(max_size=200), st.integers(0, 4))
def test_arbitrary_frames_never_raise(tail: bytes, cut: int) -> None:
    clock = FakeClock()
    mac, cpe = lab_modems(1, 0, 1)[0].mac, lab_modems(1, 0, 1)[0].cpe_mac
    modem = ModemClient(
        mac, cpe, service_class="x", secret=SECRET, random_bytes=os.urandom, wall=clock
    )
    modem.start(clock())
    modem.receive(mac + OTHER_MAC + b"\x88\xb6" + tail, clock())
    modem.receive((mac + OTHER_MAC + b"\x88\xb6" + tail)[: 14 + cut], clock())
    while (event := modem.next_event()) is not None:
        assert isinstance(event, Dropped | Disconnected)
    assert modem.state in ("ranging", "reinit")
