"""The CMTS side of cable modems (the vCCAP) in the control plane, without any I/O.

Theory of operation
-------------------
Cable modems share the control plane, the subscriber groups and the DP workers with PPPoE
(DESIGN.md §1): a modem is a :class:`Modem`, a :class:`~control_plane.sessions.Subscription`
like a PPPoE session, so the group, rule, failover and accounting machinery of
:class:`~control_plane.service.ControlPlane` serves both. This module is the part that speaks
DOCSIS (CM-SP-MULPIv3.1, messages in :mod:`vnf.codec.docsis_mgmt`) and DHCP for the CPE.

Bring-up of one modem, every message punted by a DP and answered through it::

    CM                                   CMTS (this module)
    RNG-REQ SID 0 (broadcast) ────────▶  pick a group (DP selection), allocate a SID
                              ◀────────  RNG-RSP SID, status continue          init(r1)
    RNG-REQ SID n (to the group) ─────▶
                              ◀────────  RNG-RSP status success                init(rc)
    REG-REQ SID n, SF TLVs, MIC ──────▶  authorize: provisioned MAC, CMTS MIC, timestamp
                              ◀────────  REG-RSP: SFIDs, SID, service class    init(reg)
    REG-ACK ──────────────────────────▶                                        online
    CPE: DHCP DISCOVER / REQUEST ─────▶  address from the group's pool
                              ◀────────  OFFER / ACK; install the rule on the DP (SID,
                                         CM MAC, CPE MAC, address, QoS of the class)
    RNG-REQ SID n every station maintenance interval; none for T4: offline

Choices (docs/cable.md has the reasoning):

* **Ranging** has no physics: the first RNG-RSP says *continue* with zero adjustments, the
  modem ranges once more on its SID, and the second says *success*. The broadcast RNG-REQ is
  heard by every active DP of the site; identical copies are answered once, like PADIs.
* **Registration** is authorized against the provisioning store (the embedded stand-in for
  the config file and its TFTP server): the MAC must be provisioned, the CMTS MIC (HMAC-MD5
  with the shared secret) must verify, the config timestamp (TLV 19) must be within the
  window and not older than the modem's last accepted one (a replayed REG-REQ), and both an
  upstream and a downstream service flow must be requested. The store's *current* service
  class is what is granted (REG-RSP says so); a modem may name another.
* **A MAC online elsewhere** — registered in another site — is refused at ranging (RNG-RSP
  *abort*). In its own site a new initial ranging from a registered MAC is the modem
  rebooting: its old registration ends first.
* **CPE addressing** is DHCP (RFC 2131) with this module as the server: one CPE per modem
  (Max CPE 1), the lease lives as long as the modem's registration (renewals are ACKed,
  releases are counted and ignored). The rule is installed when the ACK leaves.
* **DSC:** a service class change is a CMTS-initiated DSC-REQ; on the modem's DSC-RSP the
  rule is modified on the DP (the new rate holds from the DP's next batch) and DSC-ACK goes
  back. No answer after :data:`DSC_TRIES` tries: the old class stays (``dsc_timeout``).
"""

from __future__ import annotations

import enum
import hmac
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from control_plane.aaa.provisioning import ModemDirectory
from control_plane.groups import GroupState
from control_plane.recent import RecentFrames
from control_plane.replica import ModemRecord
from control_plane.sessions import SessionState, Subscription
from vnf.codec import dhcp
from vnf.codec.arp import ArpOp, decode_arp, encode_arp, reply_to
from vnf.codec.docsis import (
    ManagementFrame,
    PacketFrame,
    decode_carrier,
    decode_frame,
    encode_carrier,
    encode_frame,
    upstream_sid,
)
from vnf.codec.docsis_mgmt import (
    RFC868_EPOCH_OFFSET,
    Confirmation,
    DscAck,
    DscReq,
    DscRsp,
    QosSet,
    RangingStatus,
    RegAck,
    RegReq,
    RegRsp,
    RngReq,
    RngRsp,
    ServiceFlow,
    cmts_mic,
    decode_message,
    mgmt_carrier,
)
from vnf.codec.ethernet import EtherType
from vnf.config import CableConfig
from vnf.errors import DecodeError
from vnf.model.addresses import mac_to_str
from vnf.model.session import TerminateCause
from vnf.model.subscriber import RateProfile

if TYPE_CHECKING:
    from control_plane.service import ControlPlane

BROADCAST = b"\xff" * 6
RANGING_DEDUP_S = 0.5
DSC_TRIES = 3
DSC_RETRY_S = 0.3
RECENT_REJECTS = 1024
UPSTREAM_CHANNEL = 1
CLASS_PREFIX = "vnf:"


class CmState(enum.StrEnum):
    """What ``show cable modem`` says of a modem (Cisco's vocabulary where it has a word)."""

    RANGING = "init(r1)"  # initial RNG-RSP (continue) sent
    RANGED = "init(rc)"  # ranging complete: waiting for REG-REQ
    REGISTERING = "init(reg)"  # REG-RSP sent: waiting for REG-ACK
    ONLINE = "online"  # registered
    REJECT_MIC = "reject(m)"  # CMTS MIC or timestamp refused
    REJECT_CLASS = "reject(c)"  # not provisioned, or no service flows requested
    OFFLINE = "offline"  # provisioned, not seen


class Modem(Subscription):
    """One cable modem and the CPE behind it. ``state`` (the subscription's) follows the
    forwarding rule: NEGOTIATING until the CPE has its address, then INSTALLING and ACTIVE
    (accounting start); ``cm`` is the DOCSIS view."""

    __slots__ = (
        "cm",
        "cpe_mac",
        "deadline",
        "dsc",
        "offered",
        "online_mono",
        "online_wall",
        "reg_req",
        "reg_rsp",
        "reg_timestamp",
        "service_class",
    )

    def __init__(self, key: int, group: int, sid: int, cm_mac: bytes, now: float) -> None:
        super().__init__(key, group, sid, cm_mac, now, now)
        self.cm = CmState.RANGING
        self.cpe_mac = b""
        self.offered = 0  # address OFFERed to the CPE, not ACKed yet
        self.deadline: float | None = None  # the DOCSIS timer (ranging, T9, REG-ACK, T4)
        self.dsc: Dsc | None = None
        self.online_mono = 0.0
        self.online_wall = 0.0
        self.reg_req = b""  # the accepted REG-REQ's bytes: a retransmission gets reg_rsp again
        self.reg_rsp = b""
        self.reg_timestamp = 0
        self.service_class = ""  # granted at registration (or by the last DSC)
        self.username = mac_to_str(cm_mac)

    @property
    def sfid_up(self) -> int:
        return self.key * 2

    @property
    def sfid_down(self) -> int:
        return self.key * 2 + 1


@dataclass(slots=True)
class Dsc:
    """A CMTS-initiated dynamic service change in flight."""

    transaction_id: int
    service_class: str
    frame: bytes
    tries: int
    at: float  # next retransmission


@dataclass(frozen=True, slots=True)
class ModemRow:
    """One line of ``show cable modem``."""

    mac: bytes
    state: str
    sid: int = 0
    group: int = 0
    dp: str = ""
    cpe_mac: bytes = b""
    cpe_ipv4: int = 0
    service_class: str = ""
    up_kbps: int = 0
    down_kbps: int = 0
    uptime_s: float = 0.0
    up_bytes: int = 0
    down_bytes: int = 0
    reason: str = ""
    session_key: int = 0
    forwarding: str = ""


@dataclass(frozen=True, slots=True)
class Rejected:
    mac: bytes
    group: int
    state: CmState
    reason: str
    wall: float


class Cmts:
    """The cable side of one :class:`ControlPlane` (see the module docstring)."""

    def __init__(
        self,
        cp: ControlPlane,
        config: CableConfig,
        modems: ModemDirectory,
        wall: Callable[[], float],
    ) -> None:
        self.cp = cp
        self.config = config
        self.directory = modems
        self.secret = config.shared_secret.encode()
        self.wall = wall
        self.by_mac: dict[bytes, Modem] = {}
        self.by_sid: dict[tuple[int, int], Modem] = {}
        self.rejected: OrderedDict[bytes, Rejected] = OrderedDict()
        self.last_timestamp: dict[bytes, int] = {}  # newest accepted config timestamp per MAC
        self._recent = RecentFrames(RANGING_DEDUP_S)
        self._transactions = 0

    # ------------------------------------------------------------------ punted frames

    def punt(self, dp: str, frame: bytes, now: float) -> None:
        """A carrier frame (EtherType 0x88B6) a DP punted. Never raises on garbage."""
        cp = self.cp
        try:
            dst, src, raw = decode_carrier(frame)
            mac_frame = decode_frame(raw)
        except DecodeError as exc:
            cp.drop(f"docsis_{exc.reason}")
            return
        if isinstance(mac_frame, ManagementFrame):
            try:
                message = decode_message(mac_frame.version, mac_frame.type, mac_frame.payload)
            except DecodeError as exc:
                cp.drop(f"docsis_mgmt_{exc.reason}")
                return
            sid = upstream_sid(mac_frame.ehdr)
            cp.counters["docsis_rx", type(message).__name__.lower()] += 1
            if isinstance(message, RngReq):
                self._on_rng_req(dp, dst, src, frame, message, now)
            elif isinstance(message, RegReq):
                self._on_reg_req(dst, src, sid, message, mac_frame.payload, now)
            elif isinstance(message, RegAck):
                self._on_reg_ack(dst, src, message, now)
            elif isinstance(message, DscRsp):
                self._on_dsc_rsp(dst, src, message, now)
            else:
                cp.drop("docsis_unexpected_message")
        elif isinstance(mac_frame, PacketFrame):
            self._on_packet(dst, src, upstream_sid(mac_frame.ehdr), mac_frame, now)
        else:
            cp.drop("docsis_unexpected_frame")

    def _modem(self, dst: bytes, src: bytes, sid: int | None) -> Modem | None:
        """The modem a unicast upstream frame comes from: to its group's MAC, with its SID
        (when the frame names one) and from its MAC."""
        group = self.cp.placement.by_mac.get(dst)
        if group is None:
            self.cp.drop("docsis_not_our_mac")
            return None
        modem = self.by_mac.get(src)
        if modem is None or modem.group != group.group_id or not _live(modem):
            self.cp.drop("docsis_unknown_modem")
            return None
        if sid is not None and sid != modem.sid:
            self.cp.drop("docsis_wrong_sid")
            return None
        return modem

    # ------------------------------------------------------------------ ranging

    def _on_rng_req(
        self, dp: str, dst: bytes, src: bytes, raw: bytes, req: RngReq, now: float
    ) -> None:
        cp = self.cp
        if req.sid:
            self._station_maintenance(dst, src, req, now)
            return
        info = cp.placement.dps.get(dp)
        site = info.site if info is not None else ""
        if not self._recent.first((site, raw), now):
            cp.counters["ranging_duplicates", ""] += 1
            return
        old = self.by_mac.get(src)
        if old is not None:
            if cp.placement.by_id[old.group].group.site != site:
                cp.counters["ranging_rejected", "online_elsewhere"] += 1
                self._remember_reject(src, old.group, CmState.OFFLINE, "online_elsewhere")
                group = cp.placement.by_mac.get(dst) if dst != BROADCAST else None
                source = group.mac if group is not None else cp.placement.by_id[old.group].mac
                abort = RngRsp(0, UPSTREAM_CHANNEL, RangingStatus.ABORT)
                cp.send_via(dp, mgmt_carrier(src, source, abort))
                cp.counters["docsis_tx", "rngrsp"] += 1
                return
            # The modem rebooted: its registration ends before the new one starts.
            cp.counters["modem_reinit", ""] += 1
            old.cause = TerminateCause.LOST_CARRIER
            cp.finish(old, TerminateCause.LOST_CARRIER, now)
        group = cp.placement.select(site, now, cable=True)
        if group is None:
            cp.drop("no_capacity")
            return
        sid = group.sids.allocate()
        if sid is None:
            cp.drop("sids_exhausted")
            return
        modem = Modem(cp.next_key(), group.group_id, sid, src, now)
        modem.acct_id = f"{cp.acct_prefix}-{modem.key:08x}"
        self.by_mac[src] = modem
        self.by_sid[group.group_id, sid] = modem
        self.rejected.pop(src, None)
        cp.sessions.add(modem)
        group.members.add(modem.key)
        group.reserved += 1
        self._send(group, src, RngRsp(sid, UPSTREAM_CHANNEL, RangingStatus.CONTINUE))
        self._arm(modem, now + self.config.ranging_timeout_s)

    def _station_maintenance(self, dst: bytes, src: bytes, req: RngReq, now: float) -> None:
        cp = self.cp
        group = cp.placement.by_mac.get(dst)
        modem = self.by_sid.get((group.group_id, req.sid)) if group is not None else None
        if group is None:
            cp.drop("docsis_not_our_mac")
            return
        if modem is None or modem.client_mac != src or not _live(modem):
            # Not a SID we gave this modem (it ranged with the CP we took over from, or was
            # reset): abort, so that it starts over instead of waiting for its T4.
            cp.drop("ranging_unknown_sid")
            self._send(group, src, RngRsp(req.sid, UPSTREAM_CHANNEL, RangingStatus.ABORT))
            return
        if modem.cm is CmState.RANGING:
            modem.cm = CmState.RANGED
            self._arm(modem, now + self.config.registration_timeout_s)
        elif modem.cm is CmState.ONLINE:
            self._arm(modem, now + self.config.t4_s)
        self._send(group, src, RngRsp(req.sid, UPSTREAM_CHANNEL, RangingStatus.SUCCESS))

    # ------------------------------------------------------------------ registration

    def _on_reg_req(
        self, dst: bytes, src: bytes, sid: int | None, req: RegReq, raw: bytes, now: float
    ) -> None:
        cp = self.cp
        modem = self._modem(dst, src, req.sid if sid is None else sid)
        if modem is None:
            return
        if modem.reg_req == raw and modem.cm in (CmState.REGISTERING, CmState.ONLINE):
            cp.counters["reg_req_retransmits", ""] += 1  # our REG-RSP was lost
            self._transmit(cp.placement.by_id[modem.group], modem.reg_rsp, "regrsp")
            return
        if modem.cm is not CmState.RANGED and modem.cm is not CmState.REGISTERING:
            cp.drop("reg_req_unexpected")
            return
        group = cp.placement.by_id[modem.group]
        verdict = self._authorize(modem, req)
        if verdict is not None:
            confirmation, state, reason = verdict
            cp.counters["registrations", reason] += 1
            self._send(group, src, RegRsp(modem.sid, confirmation))
            self._remember_reject(src, modem.group, state, reason)
            modem.cause = TerminateCause.USER_ERROR
            cp.finish(modem, TerminateCause.USER_ERROR, now)
            return
        provisioned = self.directory.get(src)
        assert provisioned is not None  # _authorize checked
        modem.service_class = provisioned.service_class
        refs = {sf.upstream: sf.reference for sf in req.service_flows}
        flows = self._flows(modem, modem.service_class, refs)
        rsp = RegRsp(modem.sid, Confirmation.OK, flows)
        modem.reg_req = raw
        modem.reg_rsp = mgmt_carrier(src, group.mac, rsp)
        modem.reg_timestamp = req.timestamp
        modem.cm = CmState.REGISTERING
        self._transmit(group, modem.reg_rsp, "regrsp")
        self._arm(modem, now + self.config.registration_timeout_s)

    def _authorize(self, modem: Modem, req: RegReq) -> tuple[int, CmState, str] | None:
        """None when the REG-REQ may register; else (confirmation, shown state, reason)."""
        provisioned = self.directory.get(modem.client_mac)
        if provisioned is None:
            return Confirmation.REJECT_PERMANENT, CmState.REJECT_CLASS, "unknown_modem"
        if not hmac.compare_digest(req.cmts_mic, cmts_mic(self.secret, req)):
            return Confirmation.REJECT_AUTHENTICATION_FAILURE, CmState.REJECT_MIC, "bad_mic"
        now_1900 = int(self.wall()) + RFC868_EPOCH_OFFSET
        if abs(now_1900 - req.timestamp) > self.config.timestamp_window_s:
            return (
                Confirmation.REJECT_AUTHENTICATION_FAILURE,
                CmState.REJECT_MIC,
                "stale_timestamp",
            )
        if req.timestamp < self.last_timestamp.get(modem.client_mac, 0):
            return Confirmation.REJECT_AUTHENTICATION_FAILURE, CmState.REJECT_MIC, "replayed"
        directions = {sf.upstream for sf in req.service_flows}
        if directions != {True, False}:
            return (
                Confirmation.REJECT_REQUIRED_PARAMETER_NOT_PRESENT,
                CmState.REJECT_CLASS,
                "missing_service_flow",
            )
        return None

    def _on_reg_ack(self, dst: bytes, src: bytes, ack: RegAck, now: float) -> None:
        cp = self.cp
        modem = self._modem(dst, src, ack.sid)
        if modem is None:
            return
        if modem.cm is CmState.ONLINE:
            return  # a retransmitted REG-ACK
        if modem.cm is not CmState.REGISTERING:
            cp.drop("reg_ack_unexpected")
            return
        if ack.confirmation != Confirmation.OK:
            cp.counters["registrations", "reg_ack_refused"] += 1
            modem.cause = TerminateCause.USER_ERROR
            cp.finish(modem, TerminateCause.USER_ERROR, now)
            return
        modem.cm = CmState.ONLINE
        modem.online_mono = now
        modem.online_wall = self.wall()
        self.last_timestamp[modem.client_mac] = modem.reg_timestamp
        cp.counters["registrations", "ok"] += 1
        cp.replicate(modem)
        self._arm(modem, now + self.config.t4_s)

    def _flows(self, modem: Modem, name: str, refs: dict[bool, int]) -> tuple[ServiceFlow, ...]:
        profile = self.profile(name)
        qos = QosSet.PROVISIONED | QosSet.ADMITTED | QosSet.ACTIVE
        burst = profile.burst_bytes
        return (
            ServiceFlow(
                upstream=True,
                reference=refs.get(True, 0),
                sfid=modem.sfid_up,
                sid=modem.sid,
                class_name=name[:15],
                qos_set=qos,
                max_rate_bps=profile.up_kbps * 1000,
                max_burst=burst,
            ),
            ServiceFlow(
                upstream=False,
                reference=refs.get(False, 0),
                sfid=modem.sfid_down,
                class_name=name[:15],
                qos_set=qos,
                max_rate_bps=profile.down_kbps * 1000,
                max_burst=burst,
            ),
        )

    def profile(self, name: str) -> RateProfile:
        profiles = self.cp.directory.profiles
        return profiles.get(name) or profiles["default"]

    # ------------------------------------------------------------------ the CPE: DHCP, ARP

    def _on_packet(
        self, dst: bytes, src: bytes, sid: int | None, frame: PacketFrame, now: float
    ) -> None:
        cp = self.cp
        modem = self._modem(dst, src, sid)
        if modem is None:
            return
        if modem.cm is not CmState.ONLINE:
            cp.drop("cpe_before_online")
            return
        if frame.ethertype == EtherType.ARP:
            self._on_arp(modem, frame)
            return
        if frame.ethertype != EtherType.IPV4:
            cp.drop("cpe_unknown_ethertype")
            return
        try:
            _, _, message = dhcp.decode_dhcp_udp(frame.payload)
        except DecodeError as exc:
            cp.drop(f"dhcp_{exc.reason}")
            return
        cp.counters["dhcp_rx", message.message_type.name.lower()] += 1
        if message.op != dhcp.BOOTREQUEST or message.chaddr != frame.src:
            cp.drop("dhcp_bad_request")
            return
        provisioned = self.directory.get(modem.client_mac)
        if provisioned is None or not provisioned.enabled:
            cp.drop("dhcp_network_access_disabled")
            return
        if modem.cpe_mac and modem.cpe_mac != message.chaddr:
            cp.drop("dhcp_max_cpe_exceeded")
            return
        kind = message.message_type
        if kind is dhcp.MessageType.DISCOVER:
            self._offer(modem, message)
        elif kind is dhcp.MessageType.REQUEST:
            self._on_dhcp_request(modem, message, now)
        elif kind is dhcp.MessageType.RELEASE:
            cp.counters["dhcp_release_ignored", ""] += 1
        else:
            cp.drop("dhcp_unexpected_message")

    def _offer(self, modem: Modem, message: dhcp.DhcpMessage) -> None:
        cp = self.cp
        group = cp.placement.by_id[modem.group]
        address = modem.ipv4 or modem.offered
        if not address:
            allocated = group.pool.allocate()
            if allocated is None:
                cp.drop("pool_exhausted")
                return
            address = modem.offered = allocated
            if modem.reserved:
                group.reserved -= 1
                modem.reserved = False
        self._dhcp_reply(modem, message, dhcp.MessageType.OFFER, address)

    def _on_dhcp_request(self, modem: Modem, message: dhcp.DhcpMessage, now: float) -> None:
        cp = self.cp
        group = cp.placement.by_id[modem.group]
        server = int(group.group.gateway)
        asked = message.requested_ip or message.ciaddr
        ours = modem.ipv4 or modem.offered
        if message.server_id and message.server_id != server:
            # The CPE chose another server's offer: ours goes back to the pool.
            if modem.offered and not modem.ipv4:
                group.pool.release(modem.offered)
                modem.offered = 0
            return
        if not ours or asked != ours:
            cp.counters["dhcp_tx", "nak"] += 1
            self._dhcp_reply(modem, message, dhcp.MessageType.NAK, 0)
            return
        self._dhcp_reply(modem, message, dhcp.MessageType.ACK, ours)
        if modem.ipv4:
            return  # a renewal
        modem.ipv4, modem.offered = ours, 0
        modem.cpe_mac = message.chaddr
        cp.install(modem)

    def _dhcp_reply(
        self, modem: Modem, request: dhcp.DhcpMessage, kind: dhcp.MessageType, address: int
    ) -> None:
        cp = self.cp
        group = cp.placement.by_id[modem.group]
        server = int(group.group.gateway)
        pool = group.group.pool
        mask = int(pool.netmask)
        lease = self.config.dhcp_lease_s
        nak = kind is dhcp.MessageType.NAK
        reply = dhcp.DhcpMessage(
            op=dhcp.BOOTREPLY,
            xid=request.xid,
            chaddr=request.chaddr,
            message_type=kind,
            flags=request.flags,
            yiaddr=address,
            server_id=server,
            lease_time=0 if nak else lease,
            renewal_time=0 if nak else lease // 2,
            rebinding_time=0 if nak else lease * 7 // 8,
            subnet_mask=0 if nak else mask,
            routers=() if nak else (server,),
            dns=() if nak else tuple(d for d in cp.dns if d),
            message="wrong address" if nak else "",
        )
        to = 0xFFFF_FFFF if nak or request.flags & dhcp.FLAG_BROADCAST or not address else address
        dst_mac = BROADCAST if to == 0xFFFF_FFFF else request.chaddr
        packet = dhcp.encode_dhcp_udp(reply, server, to)
        pdu = encode_frame(PacketFrame(dst_mac, group.mac, EtherType.IPV4, packet))
        cp.send(group, encode_carrier(modem.client_mac, group.mac, pdu))
        if not nak:
            cp.counters["dhcp_tx", kind.name.lower()] += 1

    def _on_arp(self, modem: Modem, frame: PacketFrame) -> None:
        """The CPE asks for its gateway (the group's first address): the CMTS answers."""
        cp = self.cp
        group = cp.placement.by_id[modem.group]
        try:
            arp = decode_arp(frame.payload, 0)
        except DecodeError:
            cp.drop("cpe_bad_arp")
            return
        if arp.op is not ArpOp.REQUEST or arp.target_ip != int(group.group.gateway):
            cp.drop("cpe_arp_not_for_us")
            return
        reply = encode_arp(reply_to(arp, group.mac))
        pdu = encode_frame(PacketFrame(arp.sender_mac, group.mac, EtherType.ARP, reply))
        cp.send(group, encode_carrier(modem.client_mac, group.mac, pdu))
        cp.counters["cpe_arp_replies", ""] += 1

    # ------------------------------------------------------------------ DSC, reset

    def change_class(self, modem: Modem, name: str, now: float) -> None:
        """Start a DSC to ``name`` (the store already says ``name``). A modem not online
        yet gets it at registration."""
        if modem.cm is not CmState.ONLINE or not _live(modem):
            return
        self._transactions = self._transactions % 0xFFFF + 1
        req = DscReq(self._transactions, self._flows(modem, name, {}))
        group = self.cp.placement.by_id[modem.group]
        frame = mgmt_carrier(modem.client_mac, group.mac, req)
        modem.dsc = Dsc(self._transactions, name, frame, 1, now + DSC_RETRY_S)
        self._transmit(group, frame, "dscreq")
        self.cp.counters["dsc", "started"] += 1
        self.cp.schedule(modem)

    def _on_dsc_rsp(self, dst: bytes, src: bytes, rsp: DscRsp, now: float) -> None:
        cp = self.cp
        modem = self._modem(dst, src, None)
        if modem is None:
            return
        dsc = modem.dsc
        if dsc is None or dsc.transaction_id != rsp.transaction_id:
            cp.drop("dsc_unknown_transaction")
            return
        modem.dsc = None
        group = cp.placement.by_id[modem.group]
        if rsp.confirmation != Confirmation.OK:
            cp.counters["dsc", "refused"] += 1
            self._send(group, src, DscAck(rsp.transaction_id, Confirmation.OK))
            return
        modem.service_class = dsc.service_class
        cp.counters["dsc", "ok"] += 1
        cp.modify(modem)
        self._send(group, src, DscAck(rsp.transaction_id, Confirmation.OK))

    def reset(self, modem: Modem, now: float) -> None:
        """``clear cable modem reset``: RNG-RSP abort (the modem starts over), then the
        registration ends (admin-reset)."""
        group = self.cp.placement.by_id[modem.group]
        self._send(
            group, modem.client_mac, RngRsp(modem.sid, UPSTREAM_CHANNEL, RangingStatus.ABORT)
        )
        modem.cause = TerminateCause.ADMIN_RESET
        self.cp.finish(modem, TerminateCause.ADMIN_RESET, now)

    # ------------------------------------------------------------------ time, life cycle

    def timer(self, modem: Modem) -> float | None:
        at = modem.deadline
        if modem.dsc is not None and (at is None or modem.dsc.at < at):
            at = modem.dsc.at
        return at

    def handle_timer(self, modem: Modem, now: float) -> None:
        cp = self.cp
        dsc = modem.dsc
        if dsc is not None and dsc.at <= now:
            if dsc.tries >= DSC_TRIES:
                modem.dsc = None
                cp.counters["dsc", "timeout"] += 1
            else:
                dsc.tries += 1
                dsc.at = now + DSC_RETRY_S
                self._transmit(cp.placement.by_id[modem.group], dsc.frame, "dscreq")
        if modem.deadline is None or modem.deadline > now:
            return
        modem.deadline = None
        reason = {
            CmState.RANGING: "ranging_timeout",
            CmState.RANGED: "registration_timeout",
            CmState.REGISTERING: "reg_ack_timeout",
            CmState.ONLINE: "t4_timeout",
        }.get(modem.cm, "timeout")
        cp.counters["modem_timeouts", reason] += 1
        cause = (
            TerminateCause.LOST_CARRIER if modem.cm is CmState.ONLINE else TerminateCause.USER_ERROR
        )
        modem.cause = cause
        cp.finish(modem, cause, now)

    def closed(self, modem: Modem) -> None:
        """The subscription ended (ControlPlane._close): forget the modem's indexes."""
        if self.by_mac.get(modem.client_mac) is modem:
            del self.by_mac[modem.client_mac]
        if self.by_sid.get((modem.group, modem.sid)) is modem:
            del self.by_sid[modem.group, modem.sid]
        if modem.offered:
            self.cp.placement.by_id[modem.group].pool.release(modem.offered)
            modem.offered = 0
        modem.dsc = None

    def record(self, modem: Modem) -> ModemRecord:
        return ModemRecord(
            key=modem.key,
            group=modem.group,
            sid=modem.sid,
            cm_mac=modem.client_mac,
            cpe_mac=modem.cpe_mac,
            ipv4=modem.ipv4,
            acct_id=modem.acct_id,
            active=modem.state is SessionState.ACTIVE or modem.started,
            started=modem.started,
            up_wall=modem.up_wall,
            interim_wall=modem.interim_wall,
            base=modem.base,
            usage=modem.usage,
            service_class=modem.service_class,
            online_wall=modem.online_wall,
            reg_timestamp=modem.reg_timestamp,
        )

    def restore(self, record: ModemRecord, now: float, wall: float) -> Modem | None:
        """A registered modem from the replica (a takeover): online again, T4 restarted."""
        cp = self.cp
        group = cp.placement.by_id.get(record.group)
        if group is None:
            return None
        modem = Modem(record.key, record.group, record.sid, record.cm_mac, now)
        modem.cm = CmState.ONLINE
        modem.cpe_mac = record.cpe_mac
        modem.ipv4 = record.ipv4
        modem.acct_id = record.acct_id
        modem.started = record.started
        modem.up_wall = record.up_wall
        modem.interim_wall = record.interim_wall
        modem.base = record.base
        modem.usage = record.usage
        modem.service_class = record.service_class
        modem.online_wall = record.online_wall
        modem.online_mono = now - max(0.0, wall - record.online_wall)
        modem.reg_timestamp = record.reg_timestamp
        modem.reserved = not record.ipv4
        if modem.reserved:
            group.reserved += 1
        self.last_timestamp[record.cm_mac] = max(
            record.reg_timestamp, self.last_timestamp.get(record.cm_mac, 0)
        )
        group.sids.claim(record.sid)
        if record.ipv4:
            group.pool.claim(record.ipv4)
        self.by_mac[record.cm_mac] = modem
        self.by_sid[record.group, record.sid] = modem
        self._arm(modem, now + self.config.t4_s)
        return modem

    # ------------------------------------------------------------------ helpers

    def _arm(self, modem: Modem, at: float) -> None:
        modem.deadline = at
        self.cp.schedule(modem)

    def _send(self, group: GroupState, cm_mac: bytes, message: RngRsp | RegRsp | DscAck) -> None:
        frame = mgmt_carrier(cm_mac, group.mac, message)
        self._transmit(group, frame, type(message).__name__.lower())

    def _transmit(self, group: GroupState, frame: bytes, message: str) -> None:
        """A management frame to a modem, counted by message (``vnf_cp_docsis_tx_total``)."""
        self.cp.send(group, frame)
        self.cp.counters["docsis_tx", message] += 1

    def _remember_reject(self, mac: bytes, group: int, state: CmState, reason: str) -> None:
        self.rejected[mac] = Rejected(mac, group, state, reason, self.wall())
        self.rejected.move_to_end(mac)
        while len(self.rejected) > RECENT_REJECTS:
            self.rejected.popitem(last=False)

    def rows(self, mac: bytes, state: str, offline: bool, now: float) -> list[ModemRow]:
        """``show cable modem``: live modems, recently rejected ones, and (``offline``)
        provisioned modems not seen; only ``mac`` / ``state`` when given; sorted by MAC."""
        out: list[ModemRow] = []
        placement = self.cp.placement
        for modem in self.by_mac.values():
            profile = self.profile(modem.service_class)
            _, up_b, _, down_b = modem.usage
            out.append(
                ModemRow(
                    modem.client_mac,
                    modem.cm.value,
                    modem.sid,
                    modem.group,
                    placement.by_id[modem.group].dp,
                    modem.cpe_mac,
                    modem.ipv4,
                    modem.service_class,
                    profile.up_kbps,
                    profile.down_kbps,
                    now - modem.online_mono if modem.cm is CmState.ONLINE else 0.0,
                    up_b,
                    down_b,
                    session_key=modem.key,
                    forwarding=modem.state.value,
                )
            )
        for r in self.rejected.values():
            if r.mac not in self.by_mac:
                out.append(ModemRow(r.mac, r.state.value, group=r.group, reason=r.reason))
        if offline:
            seen = {row.mac for row in out}
            for p in self.directory.all():
                if p.mac not in seen:
                    out.append(
                        ModemRow(p.mac, CmState.OFFLINE.value, service_class=p.service_class)
                    )
        return sorted(
            (r for r in out if (not mac or r.mac == mac) and (not state or r.state == state)),
            key=lambda r: r.mac,
        )

    def counts(self) -> dict[str, int]:
        """Modems by shown state (for metrics), rejected ones included."""
        out = dict.fromkeys((s.value for s in CmState if s is not CmState.OFFLINE), 0)
        for modem in self.by_mac.values():
            if _live(modem):
                out[modem.cm.value] += 1
        for rejected in self.rejected.values():
            if rejected.mac not in self.by_mac and rejected.state is not CmState.OFFLINE:
                out[rejected.state.value] += 1
        return out


def _live(modem: Modem) -> bool:
    """False once its registration is ending (rule removal in flight): the modem is gone
    for DOCSIS, even while the DP's final counters are awaited."""
    return modem.state is not SessionState.REMOVING and modem.state is not SessionState.CLOSED
