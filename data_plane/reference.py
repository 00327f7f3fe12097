"""The per-packet reference forwarder: what the batch fast path must send, one frame at a time.

Theory of operation
-------------------
:mod:`data_plane.fastpath` reaches its outputs by tricks: it rewrites headers in place in the
receive buffer with numpy slices, updates the IPv4 checksum with one table gather (RFC 1624),
takes the DOCSIS HCS from precomputed tables and writes the downstream headers from per-session
templates. This module states the same result in plain Python, frame by frame, for the
property tests (``tests/unit/test_fastpath_reference.py``) to hold the batch path to, byte for
byte. Nothing here is fast and nothing here may be: it is the specification in code.

1. **Verdict.** :func:`~data_plane.verdicts.classify_access` and
   :func:`~data_plane.verdicts.classify_core` *are* the per-frame precedence (the module
   docstring of :mod:`data_plane.fastpath` lists it). They are given the frame zero-extended
   to :data:`PEEK` bytes: every byte they read past the frame's end is behind a length check
   that has already decided the verdict, so the extension only keeps the indexing in range.
   Upstream, a frame they forward becomes ``no_next_hop`` while the gateway's MAC is unknown.
2. **Output**, for ``forward`` only, rebuilt from the decoded frame with the codecs, never by
   patching the received bytes:

   * upstream PPPoE: :func:`~vnf.codec.pppoe.decode_session_frame` gives the PPP information
     field; the IPv4 packet is its first *total length* bytes (a PPPoE trailer and Ethernet
     padding are dropped); the frame is ``next_hop_header`` + the packet after the hop.
   * upstream DOCSIS: :func:`~vnf.codec.docsis.decode_frame` gives the Packet PDU (HCS and
     CRC-32 checked again, independently of the verdict); the packet is the first *total
     length* bytes of its payload (padding inside the PDU dropped); the same frame follows.
   * downstream PPPoE: :func:`~vnf.codec.pppoe.encode_session_frame` from the client MAC to
     the group's virtual MAC, the session's id, PPP protocol 0x0021 (LENGTH = total + 2).
   * downstream DOCSIS: the carrier header (CM MAC ← the group's virtual MAC, 0x88B6) and
     :func:`~vnf.codec.docsis.encode_frame` of a Packet PDU (FC 0x00, no EHDR, LEN, HCS) from
     the group's virtual MAC to the CPE MAC, type 0x0800, with its CRC-32. Not padded to 60
     bytes (``encode_carrier`` pads; a frame of a 20- or 21-byte packet is sent 58 or 59
     bytes long, as PPPoE frames are sent unpadded: the link pads, and every receiver goes
     by LEN).

   The hop (:func:`after_hop`): TTL - 1, then the header checksum computed from scratch over
   the new header (RFC 791 §3.1, RFC 1071 sum). The fast path verifies no IPv4 checksum (no
   verdict drops on it), so a header whose checksum was wrong on arrival is forwarded; it
   leaves as wrong as it came (the new checksum carries the arriving header's residue), so
   the next hop that verifies still drops it instead of receiving a laundered header.
3. **Counting.** A forwarded frame adds one packet and its IPv4 total length to its session's
   up or down counters; a drop of :data:`~data_plane.verdicts.UP_CHARGED` or
   :data:`~data_plane.verdicts.DOWN_CHARGED` adds one to its ``dropped``. The session is the
   one the frame names, found from the installed *rules* (``SessionTable.rule``), not from
   the slot arrays the fast path gathers from: upstream by the group's virtual MAC and the
   PPPoE SESSION_ID or the SID of the Request EH, downstream by the destination address.
   :func:`access_batch` and :func:`core_batch` return every frame's verdict, the forwarded
   frames, the punted (or ARP) frames, the per-verdict counts and the per-session deltas.

No QoS: policing depends on the other frames of the batch and on the clock, so the reference
never says ``rate_limited``; hold only batches of sessions without a rate to it.

Nothing here raises on frame contents. A frame the verdict forwards but the codecs refuse
(``verdicts`` and the codecs disagreeing) has no output: it is listed in ``refused``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from data_plane.tables import ETHERTYPE_DOCSIS, SessionTable
from data_plane.verdicts import (
    DOCSIS_MTU,
    DOWN_CHARGED,
    UP_CHARGED,
    Down,
    Up,
    classify_access,
    classify_core,
)
from vnf.codec.docsis import CARRIER_ETHERTYPE, PacketFrame, decode_frame, encode_frame
from vnf.codec.ethernet import ETH_HLEN, EtherType, encode_ethernet
from vnf.codec.ipv4 import decode_ipv4, internet_checksum
from vnf.codec.ppp import PppProtocol
from vnf.codec.pppoe import decode_session_frame, encode_session_frame
from vnf.errors import DecodeError
from vnf.model.session import AccessType, Usage

PEEK = 64
"""Bytes the verdict functions are given at least (the frame, zero-extended)."""
SID_MASK = 0x3FFF

V = TypeVar("V", Up, Down)


# ---- the sessions, as the rules name them ---------------------------------------------------
@dataclass(frozen=True, slots=True)
class Subscriber:
    """One installed session as its rule describes it."""

    key: int
    group_mac: bytes
    access: AccessType
    ident: int
    """The PPPoE session id, or the SID of a cable modem."""
    client_mac: bytes
    """The PPPoE client's MAC, or the cable modem's."""
    cpe_mac: bytes
    ipv4: int


class SessionIndex:
    """The sessions of a :class:`~data_plane.tables.SessionTable` by what frames name them
    with: upstream (group MAC, access type, id), downstream the IPv4 address. Read from the
    rules once; build a new one after the rules change."""

    def __init__(self, sessions: SessionTable) -> None:
        self.upstream: dict[tuple[bytes, AccessType, int], Subscriber] = {}
        self.by_ipv4: dict[int, Subscriber] = {}
        groups = sessions.groups
        for key in sessions.session_keys():
            rule = sessions.rule(key)
            slot = groups.slot_of(rule.group) if rule is not None else None
            group = groups.group_at(slot) if slot is not None else None
            if rule is None or group is None:
                continue  # cannot happen for an installed key; the index just skips it
            ep = rule.endpoint
            docsis = ep.access is AccessType.DOCSIS
            ident = ep.cm_sid if docsis else ep.pppoe_session_id
            sub = Subscriber(
                key, group.virtual_mac, ep.access, ident, ep.client_mac, ep.cpe_mac, rule.ipv4
            )
            self.upstream[(group.virtual_mac, ep.access, ident)] = sub
            self.by_ipv4[rule.ipv4] = sub

    def named_upstream(self, frame: bytes) -> Subscriber | None:
        """The session an upstream frame names: by its destination (the group's MAC) and the
        PPPoE SESSION_ID (bytes 16-17) or, in a DOCSIS carrier, the SID of the Request EH
        (bytes 20-21, 14 bits)."""
        if len(frame) < 22:
            return None
        if frame[12] << 8 | frame[13] == ETHERTYPE_DOCSIS:
            sid = (frame[20] << 8 | frame[21]) & SID_MASK
            return self.upstream.get((frame[0:6], AccessType.DOCSIS, sid))
        session_id = frame[16] << 8 | frame[17]
        return self.upstream.get((frame[0:6], AccessType.PPPOE, session_id))

    def named_downstream(self, frame: bytes) -> Subscriber | None:
        """The session whose address is the destination of a core frame (bytes 30-33)."""
        if len(frame) < ETH_HLEN + 20:
            return None
        return self.by_ipv4.get(int.from_bytes(frame[30:34], "big"))


# ---- the hop ----------------------------------------------------------------------------
def after_hop(packet: bytes) -> bytes:
    """``packet`` (IPv4, header checked) after one hop: TTL - 1 and the header checksum
    computed from scratch (RFC 791 §3.1: "the checksum field is the 16 bit one's complement
    of the one's complement sum of all 16 bit words in the header").

    A header whose checksum did not verify keeps its error: the one's complement sum of the
    new header equals that of the arriving one (see the module docstring).
    """
    ihl4 = (packet[0] & 0x0F) * 4
    residue = internet_checksum(packet[:ihl4])  # 0 for a header whose checksum verifies
    header = bytearray(packet[:ihl4])
    header[8] -= 1
    header[10:12] = b"\x00\x00"
    checksum = internet_checksum(bytes(header))
    if residue:
        # sum(new header) must equal sum(old) = ~residue: checksum = ~(~checksum + residue),
        # with the end-around carry (RFC 1071 §1).
        total = (0xFFFF - checksum) + residue
        checksum = 0xFFFF - ((total & 0xFFFF) + (total >> 16))
    header[10:12] = checksum.to_bytes(2, "big")
    return bytes(header) + packet[ihl4:]


def _ipv4_packet(data: bytes, offset: int) -> bytes:
    """The IPv4 packet at ``offset`` of ``data``, cut to its total length (DecodeError if
    the header does not check)."""
    header = decode_ipv4(data, offset, verify_checksum=False)
    return data[offset : offset + header.total_length]


# ---- one frame --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Judgement(Generic[V]):
    """What becomes of one frame."""

    verdict: V
    frame: bytes | None
    """Forward: the frame sent (None: refused by the codecs); punt or ARP: the frame handed
    on, whole; any other verdict: None."""
    session: Subscriber | None
    """The session counted (forward) or charged (a charged drop); None otherwise."""
    size: int = 0
    """Forward: the IPv4 total length counted."""


def _peek(frame: bytes) -> bytes:
    return frame + bytes(PEEK - len(frame)) if len(frame) < PEEK else frame


def judge_access(
    frame: bytes, sessions: SessionTable, index: SessionIndex, next_hop_header: bytes | None
) -> Judgement[Up]:
    """One frame from the ACCESS port (``index`` built from ``sessions``)."""
    verdict = classify_access(_peek(frame), len(frame), sessions)
    if verdict is Up.FORWARD and next_hop_header is None:
        verdict = Up.NO_NEXT_HOP
    if verdict is Up.PUNT:
        return Judgement(verdict, frame, None)
    if verdict in UP_CHARGED:
        return Judgement(verdict, None, index.named_upstream(frame))
    if verdict is not Up.FORWARD or next_hop_header is None:
        return Judgement(verdict, None, None)
    session = index.named_upstream(frame)
    try:
        if frame[12] << 8 | frame[13] == ETHERTYPE_DOCSIS:
            pdu = decode_frame(frame, ETH_HLEN)
            if not isinstance(pdu, PacketFrame):
                return Judgement(verdict, None, session)
            packet = _ipv4_packet(pdu.payload, 0)
        else:
            ppp = decode_session_frame(frame)
            packet = _ipv4_packet(ppp.payload, 0)
    except DecodeError:
        return Judgement(verdict, None, session)
    return Judgement(verdict, next_hop_header + after_hop(packet), session, len(packet))


def judge_core(
    frame: bytes,
    sessions: SessionTable,
    index: SessionIndex,
    core_mac: bytes,
    mru: int,
    docsis_mtu: int = DOCSIS_MTU,
) -> Judgement[Down]:
    """One frame from the CORE port (``index`` built from ``sessions``)."""
    verdict = classify_core(_peek(frame), len(frame), sessions, core_mac, mru, docsis_mtu)
    if verdict is Down.ARP:
        return Judgement(verdict, frame, None)
    if verdict in DOWN_CHARGED:
        return Judgement(verdict, None, index.named_downstream(frame))
    if verdict is not Down.FORWARD:
        return Judgement(verdict, None, None)
    session = index.named_downstream(frame)
    try:
        packet = after_hop(_ipv4_packet(frame, ETH_HLEN))
    except DecodeError:
        return Judgement(verdict, None, session)
    if session is None:
        return Judgement(verdict, None, None)
    if session.access is AccessType.DOCSIS:
        pdu = PacketFrame(session.cpe_mac, session.group_mac, EtherType.IPV4, packet)
        carrier = encode_ethernet(session.client_mac, session.group_mac, CARRIER_ETHERTYPE)
        out = carrier + encode_frame(pdu)
    else:
        out = encode_session_frame(
            session.client_mac, session.group_mac, session.ident, PppProtocol.IPV4, packet
        )
    return Judgement(verdict, out, session, len(packet))


def forward_access(
    frame: bytes, sessions: SessionTable, next_hop_header: bytes | None
) -> tuple[Up, bytes | None]:
    """One frame from the ACCESS port: its verdict and, forwarded, the frame for the core
    (``next_hop_header``: Ethernet to the gateway, None while its MAC is unknown); punted,
    the frame itself."""
    judged = judge_access(frame, sessions, SessionIndex(sessions), next_hop_header)
    return judged.verdict, judged.frame


def forward_core(
    frame: bytes, sessions: SessionTable, core_mac: bytes, mru: int, docsis_mtu: int = DOCSIS_MTU
) -> tuple[Down, bytes | None]:
    """One frame from the CORE port: its verdict and, forwarded, the frame for the
    subscriber; ARP, the frame itself (the worker answers it)."""
    judged = judge_core(frame, sessions, SessionIndex(sessions), core_mac, mru, docsis_mtu)
    return judged.verdict, judged.frame


# ---- a batch ------------------------------------------------------------------------------
@dataclass(slots=True)
class ReferenceBatch(Generic[V]):
    """Everything a batch does, frame by frame (see :func:`access_batch`)."""

    verdicts: list[V] = field(default_factory=list)
    outputs: list[bytes] = field(default_factory=list)
    """The forwarded frames, in arrival order."""
    handed_on: list[bytes] = field(default_factory=list)
    """Punted frames (upstream) or ARP frames (downstream), whole, in arrival order."""
    counts: Counter[V] = field(default_factory=Counter)
    usage: dict[int, Usage] = field(default_factory=dict)
    """Per session key: what this batch adds to its counters (sessions it touched only)."""
    refused: list[int] = field(default_factory=list)
    """Indices of frames forwarded by the verdict but refused by the codecs (none, unless
    :mod:`data_plane.verdicts` and the codecs disagree)."""

    @property
    def forwarded(self) -> list[int]:
        """Indices of the forwarded frames."""
        return [i for i, v in enumerate(self.verdicts) if v == 0]  # FORWARD, both directions

    def _add(self, i: int, judged: Judgement[V], upstream: bool) -> None:
        self.verdicts.append(judged.verdict)
        self.counts[judged.verdict] += 1
        forward = judged.verdict == 0
        if forward and judged.frame is None:
            self.refused.append(i)
        elif forward and judged.frame is not None:
            self.outputs.append(judged.frame)
        elif judged.frame is not None:
            self.handed_on.append(judged.frame)
        s = judged.session
        if s is None:
            return
        old = self.usage.get(s.key, Usage(s.key))
        packets, size = int(forward), judged.size if forward else 0
        self.usage[s.key] = Usage(
            s.key,
            old.up_packets + (packets if upstream else 0),
            old.up_bytes + (size if upstream else 0),
            old.down_packets + (0 if upstream else packets),
            old.down_bytes + (0 if upstream else size),
            old.dropped + (not forward),
        )


def access_batch(
    frames: list[bytes], sessions: SessionTable, next_hop_header: bytes | None
) -> ReferenceBatch[Up]:
    """:func:`forward_access` over ``frames``, with verdict counts and session deltas."""
    index = SessionIndex(sessions)
    out: ReferenceBatch[Up] = ReferenceBatch()
    for i, frame in enumerate(frames):
        out._add(i, judge_access(frame, sessions, index, next_hop_header), True)
    return out


def core_batch(
    frames: list[bytes],
    sessions: SessionTable,
    core_mac: bytes,
    mru: int,
    docsis_mtu: int = DOCSIS_MTU,
) -> ReferenceBatch[Down]:
    """:func:`forward_core` over ``frames``, with verdict counts and session deltas."""
    index = SessionIndex(sessions)
    out: ReferenceBatch[Down] = ReferenceBatch()
    for i, frame in enumerate(frames):
        out._add(i, judge_core(frame, sessions, index, core_mac, mru, docsis_mtu), False)
    return out
