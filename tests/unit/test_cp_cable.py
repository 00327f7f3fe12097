"""The CMTS side of the control plane (control_plane/cable.py), driven frame by frame by a
scripted cable modem built from the codecs, through the in-process CUPS stand-in."""

from __future__ import annotations

import dataclasses

import pytest

from control_plane.cable import CmState
from control_plane.replica import ModemRecord, SessionUpsert
from control_plane.sessions import SessionState
from vnf.codec import dhcp
from vnf.codec.docsis import PacketFrame, RequestEh, encode_carrier, encode_frame
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
    ServiceFlow,
    mgmt_carrier,
    parse_mgmt_carrier,
    with_mic,
)
from vnf.codec.ethernet import EtherType
from vnf.lab.inprocess import InProcessLab
from vnf.model.accounting import RecordType
from vnf.model.cable import ProvisionedModem
from vnf.model.session import AccessType, RuleOp
from vnf.model.subscriber import RateProfile

BROADCAST = b"\xff" * 6
SECRET = b"vnf-cable"
CM = bytes.fromhex("020000aa0001")
CPE = bytes.fromhex("020000bb0001")


class ScriptedModem:
    """A cable modem whose every step the test makes by hand."""

    def __init__(self, h: InProcessLab, mac: bytes = CM, cpe: bytes = CPE) -> None:
        self.h = h
        self.mac = mac
        self.cpe = cpe
        self.sid = 0
        self.cmts = b""
        self.address = 0

    def send(self, frame: bytes) -> list[MgmtMessage]:
        """Send one frame through the access segment; the management messages back to us."""
        self.h.sent_to_clients.clear()
        self.h.punt(frame)
        self.h.deliver()
        out = []
        for f in self.h.sent_to_clients:
            if f[:6] == self.mac and f[12:14] == b"\x88\xb6" and f[14] & 0xC0 == 0xC0:
                out.append(parse_mgmt_carrier(f)[3])
        return out

    def packets(self) -> list[bytes]:
        """Data PDUs (DHCP replies) the last send brought back, as IPv4 packets."""
        from vnf.codec.docsis import PacketFrame, decode_carrier, decode_frame

        out = []
        for f in self.h.sent_to_clients:
            if f[:6] == self.mac and f[12:14] == b"\x88\xb6" and f[14] == 0:
                pdu = decode_frame(decode_carrier(f)[2])
                assert isinstance(pdu, PacketFrame)
                out.append(pdu.payload)
        return out

    def range(self) -> None:
        (rsp,) = self.send(mgmt_carrier(BROADCAST, self.mac, RngReq(0)))
        assert isinstance(rsp, RngRsp) and rsp.status == RangingStatus.CONTINUE
        self.sid = rsp.sid
        self.cmts = self.h.sent_to_clients[-1][6:12]
        (rsp,) = self.send(self.unicast(RngReq(self.sid)))
        assert isinstance(rsp, RngRsp) and rsp.status == RangingStatus.SUCCESS

    def unicast(self, msg: MgmtMessage) -> bytes:
        return mgmt_carrier(self.cmts, self.mac, msg, upstream_sid=self.sid)

    def reg_req(self, **changes: object) -> RegReq:
        flows = (
            ServiceFlow(upstream=True, reference=1, class_name="default", qos_set=1),
            ServiceFlow(upstream=False, reference=2, class_name="default", qos_set=1),
        )
        wall = int(self.h.clock()) + RFC868_EPOCH_OFFSET
        mic = changes.pop("cmts_mic", None)
        req = RegReq(self.sid, flows, timestamp=wall)
        req = with_mic(SECRET, dataclasses.replace(req, **changes))  # type: ignore[arg-type]
        return req if mic is None else dataclasses.replace(req, cmts_mic=mic)  # type: ignore[arg-type]

    def register(self, req: RegReq | None = None) -> RegRsp:
        (rsp,) = self.send(self.unicast(req or self.reg_req()))
        assert isinstance(rsp, RegRsp)
        if rsp.response == Confirmation.OK:
            assert self.send(self.unicast(RegAck(self.sid, Confirmation.OK))) == []
        return rsp

    def dhcp(self) -> int:
        discover = dhcp.DhcpMessage(
            dhcp.BOOTREQUEST, 0x1234, self.cpe, dhcp.MessageType.DISCOVER, flags=0x8000
        )
        self.send(self._pdu(discover, BROADCAST))
        (offer_packet,) = self.packets()
        _, _, offer = dhcp.decode_dhcp_udp(offer_packet)
        assert offer.message_type is dhcp.MessageType.OFFER
        request = dhcp.DhcpMessage(
            dhcp.BOOTREQUEST,
            0x1234,
            self.cpe,
            dhcp.MessageType.REQUEST,
            flags=0x8000,
            requested_ip=offer.yiaddr,
            server_id=offer.server_id,
        )
        self.send(self._pdu(request, BROADCAST))
        (ack_packet,) = self.packets()
        _, _, ack = dhcp.decode_dhcp_udp(ack_packet)
        assert ack.message_type is dhcp.MessageType.ACK
        self.address = ack.yiaddr
        return ack.yiaddr

    def _pdu(self, message: dhcp.DhcpMessage, dst: bytes) -> bytes:
        packet = dhcp.encode_dhcp_udp(message, 0, 0xFFFFFFFF)
        pdu = PacketFrame(dst, self.cpe, EtherType.IPV4, packet, (RequestEh(0, self.sid),))
        return encode_carrier(self.cmts, self.mac, encode_frame(pdu))


def _lab(**kwargs: object) -> InProcessLab:
    h = InProcessLab(subscribers=0, **kwargs)  # type: ignore[arg-type]
    h.directory.profiles["gold"] = RateProfile("gold", up_kbps=10_000, down_kbps=50_000)
    h.cp.put_modems([ProvisionedModem(CM, "default")], h.clock())
    return h


def _docsis_rules(h: InProcessLab, dp: str) -> list[object]:
    return [r for r in h.installed[dp].values() if r.endpoint.access is AccessType.DOCSIS]


def test_bring_up_registers_the_modem_addresses_its_cpe_and_installs_the_docsis_rule() -> None:
    h = _lab()
    cm = ScriptedModem(h)
    cm.range()
    modem = h.cp.cable.by_mac[CM]
    assert modem.cm is CmState.RANGED
    rsp = cm.register()
    assert rsp.response == Confirmation.OK
    up, down = sorted(rsp.service_flows, key=lambda f: not f.upstream)
    assert (up.sid, up.sfid, down.sfid) == (cm.sid, modem.sfid_up, modem.sfid_down)
    assert modem.cm is CmState.ONLINE
    assert h.count("registrations", "ok") == 1
    address = cm.dhcp()
    pool = h.cp.placement.by_id[modem.group].group.pool
    assert address and address in [int(a) for a in pool.hosts()]
    assert modem.state is SessionState.ACTIVE
    serving = h.cp.placement.by_id[modem.group].dp
    (rule,) = _docsis_rules(h, serving)
    assert rule.endpoint.cm_sid == cm.sid  # type: ignore[attr-defined]
    assert rule.endpoint.cpe_mac == CPE  # type: ignore[attr-defined]
    assert rule.endpoint.client_mac == CM  # type: ignore[attr-defined]
    assert rule.ipv4 == address  # type: ignore[attr-defined]
    starts = [r for r in h.drain_accounting() if r.record_type is RecordType.START]
    assert [r.pppoe_session_id for r in starts] == [cm.sid]
    assert h.cp.cable.counts()["online"] == 1


def test_a_broadcast_rng_req_heard_through_every_active_dp_is_answered_once() -> None:
    h = _lab()
    cm = ScriptedModem(h)
    replies = cm.send(mgmt_carrier(BROADCAST, CM, RngReq(0)))
    assert len(replies) == 1
    assert h.count("ranging_duplicates") == 1  # the default site has two active DPs


@pytest.mark.parametrize(
    ("tamper", "reason", "code", "state"),
    [
        (lambda cm: cm.reg_req(cmts_mic=b"\x00" * 16), "bad_mic", 11, CmState.REJECT_MIC),
        (lambda cm: cm.reg_req(timestamp=1000), "stale_timestamp", 11, CmState.REJECT_MIC),
        (
            lambda cm: cm.reg_req(service_flows=cm.reg_req().service_flows[:1]),
            "missing_service_flow",
            8,
            CmState.REJECT_CLASS,
        ),
    ],
)
def test_bad_registrations_are_rejected_with_the_right_response(  # type: ignore[no-untyped-def]
    tamper, reason: str, code: int, state: CmState
) -> None:
    h = _lab()
    cm = ScriptedModem(h)
    cm.range()
    rsp = cm.register(tamper(cm))
    assert rsp.response == code
    assert h.count("registrations", reason) == 1
    assert CM not in h.cp.cable.by_mac  # the SID and the reserved address went back
    (row,) = h.cp.cable.rows(CM, "", False, h.clock())
    assert (row.state, row.reason) == (state.value, reason)
    group = h.cp.placement.by_id[row.group]
    assert group.sids.free == group.sids.size and group.reserved == 0


def test_an_unknown_modem_is_rejected_at_registration() -> None:
    h = _lab()
    stranger = ScriptedModem(h, mac=bytes.fromhex("020000aa0099"))
    stranger.range()
    assert stranger.register().response == Confirmation.REJECT_PERMANENT
    assert h.count("registrations", "unknown_modem") == 1


def test_a_replayed_registration_is_rejected() -> None:
    h = _lab()
    cm = ScriptedModem(h)
    cm.range()
    old = cm.reg_req()
    h.clock.advance(5.0)
    cm.register()
    cm.h.cp.reset_modem(CM, h.clock())
    h.deliver()
    cm.range()
    # The old REG-REQ, MIC and all, under the new SID's header: its timestamp is older
    # than the one the CMTS accepted last.
    rsp = cm.register(with_mic(SECRET, dataclasses.replace(old, sid=cm.sid)))
    assert rsp.response == Confirmation.REJECT_AUTHENTICATION_FAILURE
    assert h.count("registrations", "replayed") == 1


def test_a_retransmitted_reg_req_gets_the_same_reg_rsp_and_no_second_registration() -> None:
    h = _lab()
    cm = ScriptedModem(h)
    cm.range()
    req = cm.unicast(cm.reg_req())
    (first,) = cm.send(req)
    (second,) = cm.send(req)
    assert first == second
    assert h.count("reg_req_retransmits") == 1


def test_a_mac_online_in_another_site_is_refused_at_ranging() -> None:
    topology = {
        "sites": [
            {"name": "east", "subscribers": {"pppoe": 0}, "pool": "100.64.0.0/16"},
            {"name": "west", "subscribers": {"pppoe": 0}, "pool": "100.65.0.0/16"},
        ]
    }
    h = _lab(topology=topology)
    cm = ScriptedModem(h)
    cm.range()
    cm.register()
    # The same MAC appears on the other site's segment: a clone.
    west_dp = next(d.name for d in h.config.dps if d.site == "west" and d.role == "active")
    h.cp.dp_connected(west_dp, "west", h.clock())
    h.cp.punt(west_dp, mgmt_carrier(BROADCAST, CM, RngReq(0)), h.clock(), h.clock())
    tx = h.cp.drain_tx()
    (frame,) = tx[west_dp]
    rsp = parse_mgmt_carrier(frame)[3]
    assert isinstance(rsp, RngRsp) and rsp.status == RangingStatus.ABORT
    assert h.count("ranging_rejected", "online_elsewhere") == 1
    assert h.cp.cable.by_mac[CM].cm is CmState.ONLINE  # the registered one is untouched


def test_a_new_initial_ranging_in_the_same_site_is_a_reboot() -> None:
    h = _lab()
    cm = ScriptedModem(h)
    cm.range()
    cm.register()
    cm.dhcp()
    key = h.cp.cable.by_mac[CM].key
    h.advance(1.0)  # past the window in which an identical broadcast is a DP's extra copy
    cm.range()
    assert h.count("modem_reinit") == 1
    assert h.cp.cable.by_mac[CM].key != key
    stops = [r for r in h.drain_accounting() if r.record_type is RecordType.STOP]
    assert [r.terminate_cause for r in stops] == ["lost-carrier"]


def test_service_class_change_is_a_dsc_and_modifies_the_rule_without_reregistration() -> None:
    h = _lab()
    cm = ScriptedModem(h)
    cm.range()
    cm.register()
    cm.dhcp()
    modem = h.cp.cable.by_mac[CM]
    key = modem.key
    h.cp.put_modems([ProvisionedModem(CM, "gold")], h.clock())
    h.sent_to_clients.clear()
    h.deliver()
    (frame,) = [f for f in h.sent_to_clients if f[:6] == CM]
    req = parse_mgmt_carrier(frame)[3]
    assert isinstance(req, DscReq)
    assert {f.max_rate_bps for f in req.service_flows} == {10_000_000, 50_000_000}
    (ack,) = cm.send(cm.unicast(DscRsp(req.transaction_id, Confirmation.OK, req.service_flows)))
    assert ack.confirmation == Confirmation.OK  # type: ignore[union-attr]
    serving = h.cp.placement.by_id[modem.group].dp
    (rule,) = _docsis_rules(h, serving)
    assert (rule.qos.up_kbps, rule.qos.down_kbps) == (10_000, 50_000)  # type: ignore[attr-defined]
    assert h.cp.cable.by_mac[CM].key == key and modem.service_class == "gold"
    assert h.count("dsc", "ok") == 1


def test_an_unanswered_dsc_keeps_the_old_class() -> None:
    h = _lab()
    cm = ScriptedModem(h)
    cm.range()
    cm.register()
    cm.dhcp()
    h.cp.put_modems([ProvisionedModem(CM, "gold")], h.clock())
    h.deliver()
    for _ in range(20):
        h.advance(0.1)
    assert h.count("dsc", "timeout") == 1
    assert h.cp.cable.by_mac[CM].service_class == "default"


def test_reset_aborts_the_modem_and_ends_its_registration_with_admin_reset() -> None:
    h = _lab()
    cm = ScriptedModem(h)
    cm.range()
    cm.register()
    cm.dhcp()
    modem = h.cp.cable.by_mac[CM]
    serving = h.cp.placement.by_id[modem.group].dp
    h.sent_to_clients.clear()
    assert h.cp.reset_modem(CM, h.clock())
    h.deliver()
    aborts = [parse_mgmt_carrier(f)[3] for f in h.sent_to_clients if f[:6] == CM]
    assert [a.status for a in aborts] == [RangingStatus.ABORT]  # type: ignore[union-attr]
    assert _docsis_rules(h, serving) == []
    stops = [r for r in h.drain_accounting() if r.record_type is RecordType.STOP]
    assert [r.terminate_cause for r in stops] == ["admin-reset"]
    assert CM not in h.cp.cable.by_mac


def test_t4_without_station_maintenance_takes_the_modem_offline() -> None:
    h = _lab()
    cm = ScriptedModem(h)
    cm.range()
    cm.register()
    for _ in range(10):
        h.advance(h.config.cable.t4_s / 8)
        cm.send(cm.unicast(RngReq(cm.sid)))  # station maintenance keeps it online
    assert CM in h.cp.cable.by_mac
    h.advance(h.config.cable.t4_s + 0.1)
    assert CM not in h.cp.cable.by_mac
    assert h.count("modem_timeouts", "t4_timeout") == 1


def test_ranging_with_a_sid_the_cmts_does_not_know_is_aborted() -> None:
    h = _lab()
    cm = ScriptedModem(h)
    cm.range()
    cm.sid = 77  # not ours
    (rsp,) = cm.send(cm.unicast(RngReq(77)))
    assert isinstance(rsp, RngRsp) and rsp.status == RangingStatus.ABORT


def test_garbage_carrier_frames_are_counted_not_raised() -> None:
    h = _lab()
    for junk in (b"\x88\xb6", bytes(64), b"\x01" * 40):
        frame = BROADCAST + CM + b"\x88\xb6" + junk
        h.cp.punt(h.dps[0], frame, h.clock(), h.clock())
    drops = sum(n for (name, reason), n in h.cp.counters.items() if name == "drops")
    assert drops == 3


def test_a_registered_modem_survives_a_cp_takeover() -> None:
    h = _lab(pair=True)
    h.standby.put_modems([ProvisionedModem(CM, "default")], h.clock())  # type: ignore[union-attr]
    cm = ScriptedModem(h)
    cm.range()
    cm.register()
    address = cm.dhcp()
    records = [
        c.record
        for c in h.standby.replica.snapshot()  # type: ignore[union-attr]
        if isinstance(c, SessionUpsert) and isinstance(c.record, ModemRecord)
    ]
    assert [r.ipv4 for r in records] == [address]
    h.fail_active()
    modem = h.cp.cable.by_mac[CM]
    assert (modem.cm, modem.ipv4, modem.cpe_mac, modem.sid) == (
        CmState.ONLINE,
        address,
        CPE,
        cm.sid,
    )
    serving = h.cp.placement.by_id[modem.group].dp
    (rule,) = _docsis_rules(h, serving)
    assert rule.op is RuleOp.INSTALL  # type: ignore[attr-defined]
    (rsp,) = cm.send(cm.unicast(RngReq(cm.sid)))  # station maintenance with the new active
    assert rsp.status == RangingStatus.SUCCESS  # type: ignore[union-attr]


def test_every_management_message_sent_is_counted() -> None:
    h = _lab()
    cm = ScriptedModem(h)
    cm.range()
    cm.register()
    cm.dhcp()
    h.cp.put_modems([ProvisionedModem(CM, "gold")], h.clock())
    h.deliver()
    tx = {label: n for (name, label), n in h.cp.counters.items() if name == "docsis_tx"}
    assert tx == {"rngrsp": 2, "regrsp": 1, "dscreq": 1}
