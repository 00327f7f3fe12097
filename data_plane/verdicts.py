"""The fast path's verdicts, and one frame's verdict computed the plain way.

Theory of operation
-------------------
:class:`Up` and :class:`Down` name what becomes of a frame received on the ACCESS and on
the CORE port; the worker counts them by name. :func:`classify_access` and
:func:`classify_core` judge one frame with plain byte indexing, in the precedence that the
module docstring of :mod:`data_plane.fastpath` lists. They are the batch path's exception
handling for a few frames, and the statement in code that its vectorized checks must equal
(the property tests hold both to it).

Neither looks at QoS: policing depends on the other frames of the batch, so the batch path
polices the frames that these call FORWARD afterwards (``rate_limited``).

Nothing here raises on frame contents.
"""

from __future__ import annotations

import enum
import zlib
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from data_plane.tables import (
    ETHERTYPE_DOCSIS,
    ETHERTYPE_IPV4,
    ETHERTYPE_PPPOE_SESSION,
    NO_ROUTE,
    SESSION_BITS,
    SessionTable,
)
from vnf.codec.docsis import crc16_x25

ETHERTYPE_ARP = 0x0806
ETHERTYPE_PPPOE_DISCOVERY = 0x8863
ETH_LEN = 14
PPPOE_LEN = 6
PPP_PROTO_LEN = 2
MAX_MRU = 1492
"""RFC 2516 §7: the PPPoE MRU is at most 1492."""
DOCSIS_MTU = 1500
"""The largest IPv4 packet sent to a CPE: an Ethernet MTU (the PDU is an Ethernet frame)."""
DOCSIS_HEADER_LEN = 24
"""Upstream: carrier (14), FC, MAC_PARM, LEN (4), the Request EH element (4) and HCS (2);
the PDU starts here."""
DOCSIS_IP_OFFSET = DOCSIS_HEADER_LEN + ETH_LEN
"""Upstream: where the CPE's IPv4 header starts (38)."""
PDU_MIN = 18
"""DA, SA, type and CRC: the shortest Packet PDU."""
FC_PACKET_EHDR = 0x01
"""FC of a Packet PDU with EHDR_ON (FC_TYPE 00, FC_PARM 0)."""
REQUEST_EH_LEN = 4
REQUEST_EH = 0x13
"""EH_TYPE 1 (Request), EH_LEN 3: mini-slots (1) and SID (2)."""
FC_REQUEST = 0xC4
FC_QUEUE_DEPTH_REQUEST = 0xC8
CRC32_RESIDUE = 0x2144DF1C
"""zlib.crc32 of data followed by its own CRC-32 (little-endian, the Ethernet FCS order):
one call checks a PDU and its CRC together."""
BOOTPS_PORT = 67
"""RFC 2131 §4.1: DHCP messages from a client are sent to the server port 67."""
IPPROTO_UDP = 17
_BROADCAST_MAC = b"\xff" * 6


class Up(enum.IntEnum):
    """Verdicts for frames received on the ACCESS port, in a fixed numbering."""

    FORWARD = 0
    PUNT = 1
    RUNT = 2
    NOT_FOR_US = 3
    STANDBY = 4
    UNKNOWN_ETHERTYPE = 5
    BAD_PPPOE = 6
    UNKNOWN_SESSION = 7
    SPOOFED_MAC = 8
    BAD_IPV4 = 9
    SPOOFED_IP = 10
    TTL_EXCEEDED = 11
    NO_NEXT_HOP = 12
    BAD_DOCSIS = 13
    DOCSIS_REQUEST = 14
    UNKNOWN_SID = 15
    SPOOFED_CPE_MAC = 16
    PDU_NOT_FOR_US = 17
    BAD_CRC = 18
    RATE_LIMITED = 19


UP_CHARGED = frozenset(
    {
        Up.BAD_IPV4,
        Up.SPOOFED_IP,
        Up.TTL_EXCEEDED,
        Up.NO_NEXT_HOP,
        Up.BAD_CRC,
        Up.RATE_LIMITED,
    }
)
"""Drops charged to the session (its ``dropped`` counter): those of a frame that passed the
session's MAC checks."""


class Down(enum.IntEnum):
    """Verdicts for frames received on the CORE port."""

    FORWARD = 0
    ARP = 1
    RUNT = 2
    NOT_FOR_US = 3
    UNKNOWN_ETHERTYPE = 4
    BAD_IPV4 = 5
    NO_ROUTE = 6
    UNKNOWN_SESSION = 7
    TTL_EXCEEDED = 8
    TOO_BIG = 9
    RATE_LIMITED = 10


DOWN_CHARGED = frozenset({Down.TTL_EXCEEDED, Down.TOO_BIG, Down.RATE_LIMITED})
"""Drops charged to the session whose address the packet is for."""


def is_docsis_management(fc: int) -> bool:
    """FC_TYPE 11 with FC_PARM 0 (timing: RNG-REQ) or 1 (MAC management), EHDR_ON either."""
    return fc & 0xFC == 0xC0


def first_match(
    n: int, checks: Sequence[tuple[npt.NDArray[np.bool_], int]], default: int
) -> npt.NDArray[np.int64]:
    """Per frame, the code of the first check that holds (``default`` if none does)."""
    verdict = np.full(n, int(default), dtype=np.int64)
    for cond, code in reversed(checks):
        verdict[cond] = int(code)  # a plain int: numpy converts an IntEnum slowly
    return verdict


# ---- upstream -----------------------------------------------------------------------------
def classify_access(frame: bytes, length: int, sessions: SessionTable) -> Up:
    """One frame's :class:`Up` verdict (before QoS) from its first 48 bytes — all of it for
    a DOCSIS carrier (0x88B6), whose PDU CRC covers the whole frame — or all of a shorter
    frame; ``length`` is the whole frame's. The same checks and precedence as the batch."""
    if length < ETH_LEN:
        return Up.RUNT
    group = sessions.groups.slot_by_mac.get(frame[0:6])
    if group is None and frame[0:6] != _BROADCAST_MAC:
        return Up.NOT_FOR_US
    ethertype = frame[12] << 8 | frame[13]
    standby = not sessions.groups.slot_by_mac
    if ethertype == ETHERTYPE_PPPOE_DISCOVERY:
        return Up.STANDBY if standby else Up.PUNT
    if ethertype == ETHERTYPE_DOCSIS and length >= 20 and is_docsis_management(frame[14]):
        return Up.STANDBY if standby else Up.PUNT
    if ethertype not in (ETHERTYPE_PPPOE_SESSION, ETHERTYPE_DOCSIS):
        return Up.UNKNOWN_ETHERTYPE
    if group is None:
        return Up.NOT_FOR_US
    if ethertype == ETHERTYPE_DOCSIS:
        return _classify_docsis(frame, length, sessions, group)
    if length < ETH_LEN + PPPOE_LEN or frame[14] != 0x11 or frame[15] != 0:
        return Up.BAD_PPPOE
    plen = frame[18] << 8 | frame[19]
    if plen < PPP_PROTO_LEN or plen + ETH_LEN + PPPOE_LEN > length:
        return Up.BAD_PPPOE
    if frame[20] != 0x00 or frame[21] != 0x21:
        return Up.PUNT
    slot = group << SESSION_BITS | frame[16] << 8 | frame[17]
    if not sessions.valid[slot]:
        return Up.UNKNOWN_SESSION
    if int.from_bytes(frame[6:12], "big") != sessions.client_mac[slot]:
        return Up.SPOOFED_MAC
    if plen < PPP_PROTO_LEN + 20:  # no room for an IPv4 header: read nothing of one
        return Up.BAD_IPV4
    ihl4 = (frame[22] & 0x0F) * 4
    total = frame[24] << 8 | frame[25]
    if frame[22] >> 4 != 4 or ihl4 < 20 or total < ihl4:
        return Up.BAD_IPV4
    if total + PPP_PROTO_LEN > plen:
        return Up.BAD_IPV4
    if int.from_bytes(frame[34:38], "big") != sessions.ipv4[slot]:
        return Up.SPOOFED_IP
    if frame[30] <= 1:
        return Up.TTL_EXCEEDED
    return Up.FORWARD


def _classify_docsis(frame: bytes, length: int, sessions: SessionTable, group: int) -> Up:
    """A DOCSIS carrier to one of our groups, past the management punt (see
    :func:`classify_access`)."""
    if length >= 20 and frame[14] in (FC_REQUEST, FC_QUEUE_DEPTH_REQUEST):
        return Up.DOCSIS_REQUEST
    if length < DOCSIS_HEADER_LEN or frame[14] != FC_PACKET_EHDR:
        return Up.BAD_DOCSIS
    if frame[15] != REQUEST_EH_LEN or frame[18] != REQUEST_EH or frame[20] & 0xC0:
        return Up.BAD_DOCSIS
    if frame[22] | frame[23] << 8 != crc16_x25(frame[14:22]):  # the HCS, low byte first
        return Up.BAD_DOCSIS
    mac_len = frame[16] << 8 | frame[17]
    end = ETH_LEN + 6 + mac_len  # the end of the PDU, CRC included
    if mac_len < REQUEST_EH_LEN + PDU_MIN or end > length:
        return Up.BAD_DOCSIS
    pdu_type = frame[36] << 8 | frame[37]
    if pdu_type == ETHERTYPE_ARP or (pdu_type == ETHERTYPE_IPV4 and _is_dhcp(frame, end)):
        return Up.PUNT
    slot = sessions.docsis_slot(group, (frame[20] << 8 | frame[21]))
    if not sessions.valid[slot]:
        return Up.UNKNOWN_SID
    if int.from_bytes(frame[6:12], "big") != sessions.client_mac[slot]:
        return Up.SPOOFED_MAC
    if int.from_bytes(frame[30:36], "big") != sessions.cpe_mac[slot]:
        return Up.SPOOFED_CPE_MAC
    if frame[24:30] != frame[0:6]:
        return Up.PDU_NOT_FOR_US
    if zlib.crc32(frame[DOCSIS_HEADER_LEN:end]) != CRC32_RESIDUE:
        return Up.BAD_CRC
    if pdu_type != ETHERTYPE_IPV4:
        return Up.UNKNOWN_ETHERTYPE
    ip = DOCSIS_IP_OFFSET
    pdu = mac_len - REQUEST_EH_LEN
    ihl4 = (frame[ip] & 0x0F) * 4
    if pdu < PDU_MIN + 20 or frame[ip] >> 4 != 4 or ihl4 < 20:
        return Up.BAD_IPV4
    total = frame[ip + 2] << 8 | frame[ip + 3]
    if total < ihl4 or total + PDU_MIN > pdu:  # Ethernet padding may follow the packet
        return Up.BAD_IPV4
    if int.from_bytes(frame[ip + 12 : ip + 16], "big") != sessions.ipv4[slot]:
        return Up.SPOOFED_IP
    if frame[ip + 8] <= 1:
        return Up.TTL_EXCEEDED
    return Up.FORWARD


def _is_dhcp(frame: bytes, end: int) -> bool:
    """Whether the PDU's IPv4 packet (PDU type checked) is UDP to the DHCP server port: the
    first fragment, its destination port before the PDU's CRC."""
    ip = DOCSIS_IP_OFFSET
    ihl4 = (frame[ip] & 0x0F) * 4
    port = ip + ihl4 + 2
    if frame[ip] >> 4 != 4 or ihl4 < 20 or port + 2 > end - 4:
        return False
    first_fragment = (frame[ip + 6] & 0x1F) == 0 and frame[ip + 7] == 0
    udp = frame[ip + 9] == IPPROTO_UDP
    return first_fragment and udp and (frame[port] << 8 | frame[port + 1]) == BOOTPS_PORT


# ---- downstream ---------------------------------------------------------------------------
def classify_core(
    frame: bytes,
    length: int,
    sessions: SessionTable,
    core_mac: bytes,
    mru: int,
    docsis_mtu: int = DOCSIS_MTU,
) -> Down:
    """One frame's :class:`Down` verdict (before QoS) from its first 34 bytes (or all of a
    shorter frame): the same checks and precedence as the batch. ``mru`` bounds packets to
    PPPoE sessions, ``docsis_mtu`` those to DOCSIS sessions."""
    if length < ETH_LEN:
        return Down.RUNT
    to_us = frame[0:6] == core_mac
    ethertype = frame[12] << 8 | frame[13]
    if ethertype == ETHERTYPE_ARP and (to_us or frame[0:6] == _BROADCAST_MAC):
        return Down.ARP
    if not to_us:
        return Down.NOT_FOR_US
    if ethertype != ETHERTYPE_IPV4:
        return Down.UNKNOWN_ETHERTYPE
    if length < ETH_LEN + 20 or frame[14] >> 4 != 4:
        return Down.BAD_IPV4
    ihl4 = (frame[14] & 0x0F) * 4
    total = frame[16] << 8 | frame[17]
    if ihl4 < 20 or total < ihl4 or total + ETH_LEN > length:
        return Down.BAD_IPV4
    slot = int(sessions.ip_slot[sessions.groups.flat_index(int.from_bytes(frame[30:34], "big"))])
    if slot == NO_ROUTE:
        return Down.NO_ROUTE
    if slot < 0:
        return Down.UNKNOWN_SESSION
    if frame[22] <= 1:
        return Down.TTL_EXCEEDED
    if total > (docsis_mtu if slot >= sessions.docsis_base else mru):
        return Down.TOO_BIG
    return Down.FORWARD
