"""One emulated DOCSIS cable modem and the one CPE behind it, the way
:mod:`control_plane.cable` expects them (CM-SP-MULPIv3.1 §10.2 CM initialization,
simplified; RFC 2131 for the CPE).

Theory of operation
-------------------
:class:`ModemClient` has the interface of :class:`~vnf.emulator.client.SubscriberClient`
(sans-IO: carrier frames and ``now`` in; frames, one timer and events out), so one fleet
drives both. Its life (``state``)::

    state        sends (each retransmitted on its timer)                 leaves on
    ranging      RNG-REQ SID 0 to broadcast, timing header, every T3     RNG-RSP continue
                 RNG-REQ SID n to the CMTS MAC, every T3                 RNG-RSP success
    registering  REG-REQ (service flows, CMTS MIC): same bytes every T6  REG-RSP
    dhcp         REG-ACK once; the CPE's DISCOVER, then REQUEST          DHCPACK: Connected
    up           (station maintenance only)
    reinit       nothing: a backoff, then ranging again
    off          nothing: hung up (powered off)

The CMTS MAC is the source of the first RNG-RSP (the group's virtual MAC); every later frame
goes to it and must come from it. Upstream frames other than the broadcast RNG-REQ name the
SID with a Request EH element (MULPI §6.2.5.1; see :mod:`vnf.codec.docsis`).

**Station maintenance** starts when the REG-ACK leaves (the CMTS arms its T4 then): a unicast
RNG-REQ every ``ranging_interval_s``. When :data:`T4_MISSES` of them in a row got no RNG-RSP the
modem declares T4 (MULPI §10.2.4: the CM "MUST re-initialize its MAC layer" when T4 expires).

**Failures** — nobody answers within the attempts, RNG-RSP *abort*, REG-RSP refusal, T4, the
CPE gets no address — emit :class:`~vnf.emulator.client.Disconnected` (whether or not the
modem was Connected: the fleet tells a drop from a failed bring-up) and the modem starts over
by itself after ``reinit_backoff_s`` (ten times that after a refused registration), as a real
CM re-initializes on its own. Only :meth:`ModemClient.hangup` stops it.

**The CPE** is not an engine of its own: its DHCP exchange (RFC 2131 §3.1: DISCOVER, OFFER,
REQUEST, ACK; a NAK starts over) travels in Packet PDUs from the CPE MAC behind the modem's
Request EH. The CMTS routes for the CPE, so the gateway MAC is the source of the DHCPACK's PDU
and no ARP is needed. No renewal: the CMTS's lease lasts as long as the registration.

:meth:`ModemClient.data_frame` builds upstream data frames from precomputed parts: the carrier
header and the PDU's Ethernet header are fixed, the MAC header (LEN and HCS) depends only on
the packet's length: the three are cached together per length, and the CRC-32 continues from
the PDU header's.
"""

from __future__ import annotations

import enum
import struct
import zlib
from collections.abc import Callable

from vnf.codec import dhcp
from vnf.codec.docsis import (
    CARRIER_ETHERTYPE,
    CRC_LEN,
    FcType,
    ManagementFrame,
    PacketFrame,
    RequestEh,
    crc16_x25,
    decode_carrier,
    decode_frame,
    encode_carrier,
    encode_ehdr,
    encode_frame,
)
from vnf.codec.docsis_mgmt import (
    RFC868_EPOCH_OFFSET,
    Confirmation,
    DscAck,
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
    decode_message,
    mgmt_carrier,
    with_mic,
)
from vnf.codec.ethernet import ETH_HLEN, ETH_ZLEN, EtherType, encode_ethernet
from vnf.emulator.client import Connected, Disconnected
from vnf.engines.ipcp import Addressing
from vnf.engines.ppp_fsm import Dropped
from vnf.errors import DecodeError, LocalProtocolError

BROADCAST = b"\xff" * 6
T4_MISSES = 3
"""Station maintenance RNG-REQs in a row without an RNG-RSP that make a T4 timeout."""
REJECT_BACKOFF_FACTOR = 10
"""A refused registration waits this many re-init backoffs before trying again."""
CPE_PARAMETERS = bytes((1, 3, 6))
"""Option 55 of the CPE's requests: subnet mask, router, DNS (RFC 2132 §9.8)."""

_HEAD = struct.Struct("!BBH")
_HCS = struct.Struct("<H")
_CRC = struct.Struct("<I")

ModemEvent = Connected | Disconnected | Dropped


class ModemState(enum.StrEnum):
    """Where the modem is in its life (the table in the module docstring)."""

    IDLE = "idle"
    RANGING = "ranging"
    REGISTERING = "registering"
    DHCP = "dhcp"
    UP = "up"
    REINIT = "reinit"
    OFF = "off"


_REGISTERED = frozenset((ModemState.DHCP, ModemState.UP))
_TIMEOUTS = {
    ModemState.RANGING: "ranging_timeout",
    ModemState.REGISTERING: "registration_timeout",
    ModemState.DHCP: "dhcp_timeout",
}
"""The failure reason when a bring-up step ran out of attempts."""
_BRINGING_UP = frozenset((ModemState.RANGING, ModemState.REGISTERING, ModemState.DHCP))


class ModemClient:
    """One cable modem and its CPE (see the module docstring)."""

    __slots__ = (
        "_attempts",
        "_broadcast_rng",
        "_carrier_head",
        "_cmts_mac",
        "_deadline",
        "_dhcp_attempts",
        "_dhcp_frame",
        "_dhcp_timeout_s",
        "_events",
        "_frames",
        "_gateway_mac",
        "_heads",
        "_maintenance_at",
        "_offer",
        "_pdu_crc",
        "_pdu_head",
        "_random",
        "_ranging_attempts",
        "_ranging_interval_s",
        "_reg_frame",
        "_registration_attempts",
        "_reinit_backoff_s",
        "_requested_class",
        "_rng_frame",
        "_secret",
        "_sid",
        "_state",
        "_t3_s",
        "_t6_s",
        "_unanswered",
        "_wall",
        "_xid",
        "addressing",
        "cpe_mac",
        "mac",
        "service_class",
        "started_at",
    )

    def __init__(
        self,
        mac: bytes,
        cpe_mac: bytes,
        *,
        service_class: str,
        secret: bytes,
        random_bytes: Callable[[int], bytes],
        wall: Callable[[], float],
        ranging_interval_s: float = 10.0,
        t3_s: float = 1.0,
        ranging_attempts: int = 5,
        t6_s: float = 3.0,
        registration_attempts: int = 3,
        dhcp_timeout_s: float = 1.0,
        dhcp_attempts: int = 4,
        reinit_backoff_s: float = 1.0,
    ) -> None:
        self.mac = mac
        self.cpe_mac = cpe_mac
        self.service_class = service_class
        """The class the modem asks for; once registered, the class granted (REG-RSP, DSC)."""
        self.started_at = 0.0
        """When the current bring-up began (its first RNG-REQ)."""
        self.addressing: Addressing | None = None
        self._requested_class = service_class
        self._secret = secret
        self._random = random_bytes
        self._wall = wall
        self._ranging_interval_s = ranging_interval_s
        self._t3_s = t3_s
        self._ranging_attempts = ranging_attempts
        self._t6_s = t6_s
        self._registration_attempts = registration_attempts
        self._dhcp_timeout_s = dhcp_timeout_s
        self._dhcp_attempts = dhcp_attempts
        self._reinit_backoff_s = reinit_backoff_s
        self._broadcast_rng = mgmt_carrier(BROADCAST, mac, RngReq(0))
        self._state = ModemState.IDLE
        self._events: list[ModemEvent] = []
        self._frames: list[bytes] = []
        self._deadline: float | None = None  # the bring-up step's retransmission or backoff
        self._maintenance_at: float | None = None
        self._clear()

    def _clear(self) -> None:
        """Forget everything one bring-up learned."""
        self._sid = 0
        self._cmts_mac = b""
        self._attempts = 0
        self._rng_frame = b""
        self._reg_frame = b""
        self._unanswered = 0
        self._xid = 0
        self._offer: dhcp.DhcpMessage | None = None
        self._dhcp_frame = b""
        self._gateway_mac = b""
        self._carrier_head = b""
        self._pdu_head = b""
        self._pdu_crc = 0
        self._heads: dict[int, bytes] = {}  # by IPv4 packet length
        self.addressing = None
        self.service_class = self._requested_class

    # --- views --------------------------------------------------------------------------

    @property
    def state(self) -> str:
        """``idle``, ``ranging``, ``registering``, ``dhcp``, ``up``, ``reinit`` or ``off``."""
        return self._state.value

    @property
    def sid(self) -> int:
        return self._sid

    @property
    def cmts_mac(self) -> bytes:
        return self._cmts_mac

    @property
    def gateway_mac(self) -> bytes:
        return self._gateway_mac

    # --- sans-IO interface --------------------------------------------------------------

    def start(self, now: float) -> None:
        if self._state is not ModemState.IDLE:
            raise LocalProtocolError("ModemClient.start() on a modem that is not idle")
        self._begin(now)

    def receive(self, frame: bytes, now: float) -> None:
        """Any carrier frame addressed to the modem's MAC. Never raises on its content."""
        if self._state is ModemState.IDLE or self._state is ModemState.OFF:
            self._events.append(Dropped("docsis", "powered_off"))
            return
        try:
            dst, src, raw = decode_carrier(frame)
            mac_frame = decode_frame(raw)
        except DecodeError as exc:
            self._events.append(Dropped(exc.layer, exc.reason))
            return
        if dst != self.mac:
            self._events.append(Dropped("docsis", "not_for_us"))
            return
        if self._cmts_mac and src != self._cmts_mac:
            self._events.append(Dropped("docsis", "wrong_cmts"))
            return
        if isinstance(mac_frame, ManagementFrame):
            try:
                message = decode_message(mac_frame.version, mac_frame.type, mac_frame.payload)
            except DecodeError as exc:
                self._events.append(Dropped(exc.layer, exc.reason))
                return
            self._receive_message(src, message, now)
        elif isinstance(mac_frame, PacketFrame):
            self._receive_packet(mac_frame, now)
        else:
            self._events.append(Dropped("docsis", "unexpected_frame"))

    def hangup(self, now: float) -> None:
        """Power off: nothing more is sent, no timer runs, no re-init. A modem that was up
        or coming up reports ``Disconnected("hangup")``."""
        if self._state in _BRINGING_UP or self._state is ModemState.UP:
            self._events.append(Disconnected("hangup", by_peer=False))
        self._state = ModemState.OFF
        self._deadline = self._maintenance_at = None
        self._frames.clear()
        self._clear()

    def frames_to_send(self) -> list[bytes]:
        frames = self._frames
        if not frames:
            return []
        self._frames = []
        return frames

    def next_event(self) -> ModemEvent | None:
        events = self._events
        return events.pop(0) if events else None

    def get_timer(self) -> float | None:
        deadline, maintenance = self._deadline, self._maintenance_at
        if maintenance is not None and (deadline is None or maintenance < deadline):
            return maintenance
        return deadline

    def handle_timer(self, now: float) -> None:
        if self._deadline is not None and self._deadline <= now:
            self._deadline = None
            self._step_timeout(now)
        if self._maintenance_at is not None and self._maintenance_at <= now:
            self._maintain(now)

    # --- fast data frames ---------------------------------------------------------------

    def data_frame(self, ip_packet: bytes) -> bytes:
        """An upstream carrier frame with ``ip_packet`` from the CPE (Packet PDU to the
        gateway MAC, Request EH naming the SID, HCS and CRC-32 valid)."""
        head = self._heads.get(len(ip_packet))
        if head is None:
            head = self._head(len(ip_packet))
        frame = head + ip_packet + _CRC.pack(zlib.crc32(ip_packet, self._pdu_crc))
        if len(frame) < ETH_ZLEN:  # never for a real IPv4 packet (20 bytes or more)
            frame += bytes(ETH_ZLEN - len(frame))
        return frame

    def _head(self, ip_len: int) -> bytes:
        """Carrier header, MAC header (LEN and HCS for this length) and PDU header."""
        if not self._pdu_head:
            raise LocalProtocolError("no data frames before Connected")
        ehdr = encode_ehdr((RequestEh(0, self._sid),))
        length = len(ehdr) + ETH_HLEN + ip_len + CRC_LEN
        mac = _HEAD.pack(FcType.PACKET << 6 | 1, len(ehdr), length) + ehdr
        head = self._carrier_head + mac + _HCS.pack(crc16_x25(mac)) + self._pdu_head
        self._heads[ip_len] = head
        return head

    # --- the bring-up -------------------------------------------------------------------

    def _begin(self, now: float) -> None:
        """Initial ranging (MULPI §10.2.3): broadcast RNG-REQ SID 0 until an RNG-RSP."""
        self._clear()
        self._state = ModemState.RANGING
        self.started_at = now
        self._attempts = 1
        self._deadline = now + self._t3_s
        self._maintenance_at = None
        self._frames.append(self._broadcast_rng)

    def _step_timeout(self, now: float) -> None:
        state = self._state
        if state is ModemState.REINIT:
            self._begin(now)
            return
        if state is ModemState.RANGING:
            frame, timeout, attempts = (
                self._rng_frame or self._broadcast_rng,
                self._t3_s,
                self._ranging_attempts,
            )
        elif state is ModemState.REGISTERING:
            frame, timeout, attempts = self._reg_frame, self._t6_s, self._registration_attempts
        elif state is ModemState.DHCP:
            frame, timeout, attempts = self._dhcp_frame, self._dhcp_timeout_s, self._dhcp_attempts
        else:
            return
        if self._attempts >= attempts:
            self._fail(now, _TIMEOUTS[state], by_peer=False)
            return
        self._attempts += 1
        self._deadline = now + timeout
        self._frames.append(frame)

    def _fail(self, now: float, reason: str, *, by_peer: bool, backoff_factor: int = 1) -> None:
        """Report the end of this bring-up (or of the connection) and re-init later."""
        self._events.append(Disconnected(reason, by_peer))
        self._clear()
        self._state = ModemState.REINIT
        self._deadline = now + self._reinit_backoff_s * backoff_factor
        self._maintenance_at = None

    def _maintain(self, now: float) -> None:
        """Station maintenance (MULPI §10.2.4): a unicast RNG-REQ per interval; T4 when
        :data:`T4_MISSES` went unanswered."""
        if self._unanswered >= T4_MISSES:
            self._fail(now, "t4_timeout", by_peer=False)
            return
        self._unanswered += 1
        self._maintenance_at = now + self._ranging_interval_s
        self._frames.append(self._rng_frame)

    # --- management messages ------------------------------------------------------------

    def _receive_message(self, src: bytes, message: MgmtMessage, now: float) -> None:
        if isinstance(message, RngRsp):
            self._on_rng_rsp(src, message, now)
        elif isinstance(message, RegRsp):
            self._on_reg_rsp(message, now)
        elif isinstance(message, DscReq):
            self._on_dsc_req(message)
        elif isinstance(message, DscAck):
            if self._state not in _REGISTERED:
                self._events.append(Dropped("docsis_mgmt", "unexpected_message"))
            # Otherwise the DSC is complete: nothing more to do (MULPI §11.2.3).
        else:
            self._events.append(Dropped("docsis_mgmt", "unexpected_message"))

    def _on_rng_rsp(self, src: bytes, rsp: RngRsp, now: float) -> None:
        state = self._state
        if state is ModemState.REINIT:
            self._events.append(Dropped("docsis_mgmt", "unexpected_message"))
            return
        if self._sid and rsp.sid != self._sid:
            self._events.append(Dropped("docsis_mgmt", "wrong_sid"))
            return
        if rsp.status == RangingStatus.ABORT:
            # MULPI §10.2.3: "abort" - the CM re-initializes its MAC (the CMTS reset it, or
            # it is online elsewhere).
            self._fail(now, "ranging_aborted", by_peer=True)
            return
        if state is not ModemState.RANGING:
            if state in _REGISTERED:
                self._unanswered = 0  # station maintenance answered
            else:
                self._events.append(Dropped("docsis_mgmt", "unexpected_message"))
            return
        if not self._sid:
            if not rsp.sid:
                self._events.append(Dropped("docsis_mgmt", "wrong_sid"))
                return
            self._sid = rsp.sid
            self._cmts_mac = src
            self._rng_frame = mgmt_carrier(src, self.mac, RngReq(rsp.sid), upstream_sid=rsp.sid)
        if rsp.status == RangingStatus.SUCCESS:
            self._register(now)
        else:  # continue: range again on the SID
            self._attempts = 1
            self._deadline = now + self._t3_s
            self._frames.append(self._rng_frame)

    def _register(self, now: float) -> None:
        """REG-REQ (MULPI §6.4.7) with the flows of the "config file", signed like one."""
        name = self._requested_class
        req = RegReq(
            self._sid,
            (
                ServiceFlow(upstream=True, reference=1, class_name=name, qos_set=1),
                ServiceFlow(upstream=False, reference=2, class_name=name, qos_set=1),
            ),
            network_access=True,
            max_cpe=1,
            timestamp=int(self._wall()) + RFC868_EPOCH_OFFSET,
        )
        self._reg_frame = mgmt_carrier(
            self._cmts_mac, self.mac, with_mic(self._secret, req), upstream_sid=self._sid
        )
        self._state = ModemState.REGISTERING
        self._attempts = 1
        self._deadline = now + self._t6_s
        self._frames.append(self._reg_frame)

    def _on_reg_rsp(self, rsp: RegRsp, now: float) -> None:
        state = self._state
        if rsp.sid != self._sid or state not in (ModemState.REGISTERING, *_REGISTERED):
            self._events.append(Dropped("docsis_mgmt", "unexpected_message"))
            return
        if rsp.response != Confirmation.OK:
            if state is not ModemState.REGISTERING:
                self._events.append(Dropped("docsis_mgmt", "unexpected_message"))
                return
            try:
                code = Confirmation(rsp.response).name.lower()
            except ValueError:
                code = str(rsp.response)
            self._fail(
                now,
                f"registration_rejected_{code}",
                by_peer=True,
                backoff_factor=REJECT_BACKOFF_FACTOR,
            )
            return
        self._send_mgmt(RegAck(self._sid, Confirmation.OK))
        if state is not ModemState.REGISTERING:
            return  # our REG-ACK was lost and the REG-RSP came again: acknowledged again
        self.service_class = _class_of(rsp.service_flows) or self.service_class
        self._state = ModemState.DHCP
        self._unanswered = 0
        self._maintenance_at = now + self._ranging_interval_s
        self._discover(now)

    def _on_dsc_req(self, req: DscReq) -> None:
        """A CMTS-initiated service change (MULPI §11.2.3.1): accepted as it is."""
        if self._state not in _REGISTERED:
            self._events.append(Dropped("docsis_mgmt", "unexpected_message"))
            return
        self._send_mgmt(DscRsp(req.transaction_id, Confirmation.OK, req.service_flows))
        self.service_class = _class_of(req.service_flows) or self.service_class

    def _send_mgmt(self, message: MgmtMessage) -> None:
        self._frames.append(mgmt_carrier(self._cmts_mac, self.mac, message, upstream_sid=self._sid))

    # --- the CPE's DHCP -----------------------------------------------------------------

    def _discover(self, now: float) -> None:
        self._xid = int.from_bytes(self._random(4), "big")
        self._offer = None
        self._send_dhcp(now, dhcp.MessageType.DISCOVER)

    def _send_dhcp(self, now: float, kind: dhcp.MessageType) -> None:
        offer = self._offer
        message = dhcp.DhcpMessage(
            op=dhcp.BOOTREQUEST,
            xid=self._xid,
            chaddr=self.cpe_mac,
            message_type=kind,
            requested_ip=offer.yiaddr if offer is not None else 0,
            server_id=offer.server_id if offer is not None else 0,
            parameter_list=CPE_PARAMETERS,
        )
        packet = dhcp.encode_dhcp_udp(message, 0, 0xFFFF_FFFF)
        pdu = PacketFrame(
            BROADCAST, self.cpe_mac, EtherType.IPV4, packet, ehdr=(RequestEh(0, self._sid),)
        )
        self._dhcp_frame = encode_carrier(self._cmts_mac, self.mac, encode_frame(pdu))
        self._attempts = 1
        self._deadline = now + self._dhcp_timeout_s
        self._frames.append(self._dhcp_frame)

    def _receive_packet(self, frame: PacketFrame, now: float) -> None:
        if self._state not in _REGISTERED:
            self._events.append(Dropped("cpe", "not_registered"))
            return
        if frame.dst != self.cpe_mac and frame.dst != BROADCAST:
            self._events.append(Dropped("cpe", "not_for_cpe"))
            return
        if frame.ethertype != EtherType.IPV4:
            self._events.append(Dropped("cpe", "bad_ethertype"))
            return
        try:
            _, _, message = dhcp.decode_dhcp_udp(frame.payload)
        except DecodeError as exc:
            if exc.reason in ("not_dhcp", "not_udp"):
                self._events.append(Dropped("cpe", "network_data"))
            else:
                self._events.append(Dropped(exc.layer, exc.reason))
            return
        if message.op != dhcp.BOOTREPLY or message.chaddr != self.cpe_mac:
            self._events.append(Dropped("dhcp", "not_ours"))
            return
        if self._state is not ModemState.DHCP or message.xid != self._xid:
            self._events.append(Dropped("dhcp", "unexpected_message"))
            return
        kind = message.message_type
        if kind is dhcp.MessageType.NAK:
            self._discover(now)  # RFC 2131 §3.1 step 5: "the client restarts"
        elif kind is dhcp.MessageType.OFFER and self._offer is None and message.yiaddr:
            self._offer = message
            self._send_dhcp(now, dhcp.MessageType.REQUEST)
        elif kind is dhcp.MessageType.ACK and self._offer is not None and message.yiaddr:
            self._bound(frame.src, message)
        else:
            self._events.append(Dropped("dhcp", "unexpected_message"))

    def _bound(self, gateway_mac: bytes, ack: dhcp.DhcpMessage) -> None:
        dns = (*ack.dns, 0, 0)
        self.addressing = Addressing(
            local_ip=ack.yiaddr,
            peer_ip=ack.routers[0] if ack.routers else ack.server_id,
            dns1=dns[0],
            dns2=dns[1],
        )
        self._gateway_mac = gateway_mac
        self._carrier_head = encode_ethernet(self._cmts_mac, self.mac, CARRIER_ETHERTYPE)
        self._pdu_head = encode_ethernet(gateway_mac, self.cpe_mac, EtherType.IPV4)
        self._pdu_crc = zlib.crc32(self._pdu_head)
        self._heads = {}
        self._deadline = None
        self._dhcp_frame = b""
        self._state = ModemState.UP
        self._events.append(Connected(self.addressing, self._sid, self._cmts_mac))


def _class_of(flows: tuple[ServiceFlow, ...]) -> str:
    """The Service Class Name the flows name (the upstream one first), or ""."""
    for flow in sorted(flows, key=lambda f: not f.upstream):
        if flow.class_name:
            return flow.class_name
    return ""
