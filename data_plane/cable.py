"""The DOCSIS frames of the batch fast path: their header checksums, CRC-32s and checks.

Theory of operation
-------------------
:mod:`data_plane.fastpath` runs the batch; this module holds what only DOCSIS frames need,
so that PPPoE-only batches never touch it:

* **HCS tables.** The HCS is a CRC-16/X.25, and a CRC is affine over GF(2) for messages of
  one length (crc(a ^ b) = crc(a) ^ crc(b) ^ crc(0)). An upstream Packet PDU header has one
  fixed shape ([FC 0x01, ELEN 4, LEN, 0x13, mini-slots, SID]), so its HCS is the XOR of
  three table entries, by LEN, mini-slot count and SID (the constant part folded into one):
  a batch checks every HCS with three gathers. A downstream header is [0x00, 0x00, LEN]: one
  64 K-entry table by LEN. The tables are built at import from ``crc16_x25``, one call per
  bit of each field (:func:`_crc16_field_table`).
* **CRC-32.** The PDU's Ethernet CRC cannot be vectorized: :func:`crc32s` calls
  ``zlib.crc32`` once per DOCSIS frame over a slice of one memoryview of the batch buffer
  (no copy). Upstream it runs over the PDU *with* its CRC: the result of a right one is the
  constant residue :data:`~data_plane.verdicts.CRC32_RESIDUE`.
* **Checks.** :class:`CableUp` reads the fields of an upstream batch's DOCSIS frames (three
  more 64-bit words per frame: their IPv4 header starts at byte 38), computes their gate —
  the frames the fast path forwards without further ado — and, when asked, every frame's
  verdict in the precedence of :mod:`data_plane.fastpath`, as
  :func:`~data_plane.verdicts.classify_access` does one frame at a time.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
import numpy.typing as npt

from data_plane.io.base import RxBatch
from data_plane.tables import ETHERTYPE_DOCSIS, ETHERTYPE_IPV4, SessionTable
from data_plane.verdicts import (
    BOOTPS_PORT,
    CRC32_RESIDUE,
    DOCSIS_HEADER_LEN,
    DOCSIS_IP_OFFSET,
    ETH_LEN,
    ETHERTYPE_ARP,
    FC_PACKET_EHDR,
    FC_QUEUE_DEPTH_REQUEST,
    FC_REQUEST,
    IPPROTO_UDP,
    PDU_MIN,
    REQUEST_EH,
    REQUEST_EH_LEN,
    Up,
    first_match,
)
from vnf.codec.docsis import crc16_x25

CRC_LEN = 4
BROADCAST = 0xFFFF_FFFF_FFFF

U8 = npt.NDArray[np.uint8]
U16 = npt.NDArray[np.uint16]
U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]
Bool = npt.NDArray[np.bool_]
Rows = npt.NDArray[np.integer[Any]]

_BE64 = np.dtype(">u8")
_FIRST_WORDS = 5
"""The words :func:`data_plane.fastpath.upstream` read already (bytes 0-39)."""
_MORE_WORDS = 3


def _k(value: int) -> U64:
    """A 0-d uint64 array (as in :mod:`data_plane.fastpath`: fast to combine with arrays)."""
    return np.array(value, dtype=np.uint64)


_6 = _k(6)
_8 = _k(8)
_14 = _k(ETH_LEN)
_16 = _k(16)
_20 = _k(20)
_32 = _k(32)
_48 = _k(48)
_FF = _k(0xFF)
_FF00 = _k(0xFF00)
_0100 = _k(0x0100)
_FFFF = _k(0xFFFF)
_F000 = _k(0xF000)
_4000 = _k(0x4000)
_1FFF = _k(0x1FFF)
_ZERO = _k(0)
_IHL4 = _k(0x3C)
_LOW32 = _k(0xFFFF_FFFF)
_HIGH24 = _k(0xFFFF_FF00)
_BROADCAST = _k(BROADCAST)
_ET_ARP = _k(ETHERTYPE_ARP)
_ET_IPV4 = _k(ETHERTYPE_IPV4)
# Carrier type, FC 0x01 and MAC_PARM (ELEN) 4 in one word; the EH byte 0x13 and the SID's two
# top bits (0) in another; PDU type 0x0800 and IPv4 0x45 in a third.
_DOCSIS_SHAPE = _k(ETHERTYPE_DOCSIS << 16 | FC_PACKET_EHDR << 8 | REQUEST_EH_LEN)
_EH_MASK = _k(0x0000_FF00_C000_0000)
_EH_REQUEST = _k(REQUEST_EH << 40)
_SID = _k(0x3FFF)
_PDU_IPV4_45 = _k(ETHERTYPE_IPV4 << 16 | 0x4500)
_MGMT_MASK = _k(0xFC)
_MGMT = _k(0xC0)
_FC_REQUEST = _k(FC_REQUEST)
_FC_QUEUE_DEPTH_REQUEST = _k(FC_QUEUE_DEPTH_REQUEST)
_DOCSIS_MIN_LEN = _k(REQUEST_EH_LEN + PDU_MIN)  # LEN of the shortest Packet PDU frame
_DOCSIS_HLEN = _k(DOCSIS_HEADER_LEN)
_MAC_HLEN = _k(ETH_LEN + 6)  # carrier + FC, MAC_PARM, LEN, HCS: LEN counts from here
_LEN_PAST_IP = _k(REQUEST_EH_LEN + PDU_MIN)  # LEN ≥ total + this: the packet fits the PDU
_MIN_IPV4_LEN = _k(REQUEST_EH_LEN + PDU_MIN + 20)  # LEN with room for an IPv4 header
_PORT_AT = _k(DOCSIS_IP_OFFSET + 2)  # + IHL: the UDP destination port
_PORT_END = _k(2 + CRC_LEN)  # the port's 2 bytes, then room for the CRC
_UDP = _k(IPPROTO_UDP)
_BOOTPS = _k(BOOTPS_PORT)
_CRC32_RESIDUE = np.array(CRC32_RESIDUE, dtype=np.uint32)
_PORT_BYTES = np.arange(2, dtype=np.int64)


# ---- header checksums and CRC-32 --------------------------------------------------------
def _crc16_field_table(template: bytes, at: int, bits: int) -> U16:
    """For every value v of the ``bits``-bit big-endian field at byte ``at`` of ``template``
    (where the field is 0): ``crc16_x25(template with v) ^ crc16_x25(template)``.

    CRC-16/X.25 (the HCS) is affine over GF(2) for messages of one length: crc(a ^ b) =
    crc(a) ^ crc(b) ^ crc(0). So a header's HCS is crc16_x25(template) XOR one such table
    entry per variable field, and each table is the XOR of one contribution per set bit of
    v, each from one crc16_x25 call.
    """
    width = (bits + 7) // 8
    base = crc16_x25(template)
    values = np.arange(1 << bits, dtype=np.uint32)
    table = np.zeros(1 << bits, dtype=np.uint16)
    for bit in range(bits):
        message = bytearray(template)
        message[at : at + width] = (1 << bit).to_bytes(width, "big")
        contribution = np.uint16(crc16_x25(bytes(message)) ^ base)
        table ^= np.where((values >> bit) & 1, contribution, np.uint16(0)).astype(np.uint16)
    return table


def _wire_order(crc: U16) -> U16:
    """HCS values as the big-endian read of their two wire bytes (low byte first)."""
    return ((crc >> 8) | (crc << 8)).astype(np.uint16)


# Upstream header: FC 0x01, ELEN 4, LEN, Request EH (0x13, mini-slots, SID). The constant
# part goes into the mini-slot table, so HCS = len_table ^ mini_slot_table ^ sid_table.
_UP_TEMPLATE = bytes((FC_PACKET_EHDR, REQUEST_EH_LEN, 0, 0, REQUEST_EH, 0, 0, 0))
_HCS_UP_LEN = _wire_order(_crc16_field_table(_UP_TEMPLATE, 2, 16))
_HCS_UP_MINI_SLOTS = _wire_order(
    _crc16_field_table(_UP_TEMPLATE, 5, 8) ^ np.uint16(crc16_x25(_UP_TEMPLATE))
)
_HCS_UP_SID = _wire_order(_crc16_field_table(_UP_TEMPLATE, 6, 14))
# Downstream header: FC 0x00, MAC_PARM 0, LEN. Stored as native uint16s whose memory is
# the two wire bytes, for one 16-bit store per frame.
_DOWN_TEMPLATE = bytes(4)
_HCS_DOWN = (
    (_crc16_field_table(_DOWN_TEMPLATE, 2, 16) ^ np.uint16(crc16_x25(_DOWN_TEMPLATE)))
    .astype("<u2")
    .view(np.uint16)
)


def docsis_upstream_hcs(mac_len: U64, mini_slots: U64, sid: U64) -> U16:
    """The HCS of upstream Packet PDU headers [0x01, 4, LEN, 0x13, mini-slots, SID], read as
    a big-endian 16-bit word from the wire (``sid`` within 14 bits)."""
    hcs: U16 = _HCS_UP_LEN[mac_len] ^ _HCS_UP_MINI_SLOTS[mini_slots] ^ _HCS_UP_SID[sid]
    return hcs


def docsis_downstream_hcs(mac_len: U64) -> U16:
    """The HCS of downstream headers [0x00, 0x00, LEN], as native ``uint16`` whose memory
    holds the two wire bytes (low byte first)."""
    hcs: U16 = _HCS_DOWN[mac_len]
    return hcs


def crc32s(buf: U8, starts: Rows, ends: Rows) -> npt.NDArray[np.uint32]:
    """zlib.crc32 of ``buf.reshape(-1)[starts[i] : ends[i]]`` for every i (one C call each,
    no copy: slices of one memoryview; a list comprehension measured faster than chained
    ``map`` calls into ``np.fromiter``)."""
    if not buf.flags.c_contiguous:
        raise ValueError("the batch buffer must be C-contiguous")  # our misuse
    flat = buf.reshape(-1).data  # a memoryview
    crc32 = zlib.crc32
    crcs = [crc32(flat[a:b]) for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]
    return np.array(crcs, dtype=np.uint32)


def more_words(batch: RxBatch, rows: Rows | None) -> U64:
    """Bytes ``h+40 .. h+64`` of the frames ``rows`` (all: None) as three uint64 rows."""
    c = (batch.headroom >> 3) + _FIRST_WORDS
    view = batch.buf.view(_BE64)[: batch.count, c : c + _MORE_WORDS]
    return (view if rows is None else view[rows]).T.astype(np.uint64, order="C")


# ---- upstream checks -----------------------------------------------------------------------
class CableUp:
    """The DOCSIS frames (carrier 0x88B6) of an upstream batch: their slots, IPv4 total
    lengths and gate, and on demand their verdicts. One per batch that has any; every array
    is over those frames only, ``index`` says which rows they are."""

    def __init__(
        self,
        batch: RxBatch,
        words: U64,
        length: U64,
        base: I64,
        ours: Bool,
        src_mac: U64,
        is_docsis: Bool,
        sessions: SessionTable,
    ) -> None:
        self.is_docsis = is_docsis
        every = int(np.count_nonzero(is_docsis)) == batch.count
        rows: Rows | None = None if every else is_docsis.nonzero()[0]
        self.rows: Rows = np.arange(batch.count) if rows is None else rows
        self.index: Rows | slice = slice(None) if rows is None else rows
        """``rows`` for fancy indexing, or every row (a slice: no copy)."""
        w = words if rows is None else words[:, rows]
        w0, w1, w2, w3, w4 = w
        self.w1, self.w2, self.w4 = w1, w2, w4
        self.w5, self.w6, self.w7 = more_words(batch, rows)
        self.length = length if rows is None else length[rows]
        self.ours = ours if rows is None else ours[rows]
        self.dst = w0 >> _16
        self.mac_len = w2 >> _48
        sid = (w2 >> _16) & _SID  # a SID over 14 bits is bad_docsis; masked, a valid slot
        group_base = (base if rows is None or base.ndim == 0 else base[rows]) >> 2
        self.slot = (sid.astype(np.intp) | group_base) + sessions.docsis_base
        self.total = self.w5 >> _48
        pdu_src = ((w3 & _FFFF) << _32) | (w4 >> _32)
        self.valid = sessions.valid[self.slot]
        self.cm_ok = sessions.client_mac[self.slot] == (src_mac if rows is None else src_mac[rows])
        self.cpe_ok = sessions.cpe_mac[self.slot] == pdu_src
        self.da_ok = (w3 >> _16) == self.dst
        self.shape_ok = ((w1 & _LOW32) == _DOCSIS_SHAPE) & ((w2 & _EH_MASK) == _EH_REQUEST)
        mini_slots = (w2 >> _32) & _FF
        self.hcs_ok = docsis_upstream_hcs(self.mac_len, mini_slots, sid) == (w2 & _FFFF)
        self.src_ok = sessions.ipv4[self.slot] == ((self.w6 >> _16) & _LOW32)
        self.ttl_ok = (self.w5 & _FF00) > _0100
        # The gate: IPv4 without options, the packet inside the PDU (padding allowed), LEN
        # inside the frame, not UDP to port 67 (with IHL 5, the port is bytes 60-61).
        sizes_ok = (self.total >= _20) & (self.total + _LEN_PAST_IP <= self.mac_len)
        sizes_ok &= self.mac_len + _MAC_HLEN <= self.length
        dhcp = ((self.w5 & _FF) == _UDP) & (((self.w7 >> _16) & _FFFF) == _BOOTPS)
        gate = self.ours & self.shape_ok & self.hcs_ok & self.valid & self.cm_ok & self.cpe_ok
        gate &= self.da_ok & ((w4 & _HIGH24) == _PDU_IPV4_45) & sizes_ok & self.src_ok
        gate &= self.ttl_ok & ~dhcp
        passing = gate.nonzero()[0]
        if len(passing):
            gate[passing] = self._crc_ok(batch, passing)
        self.gate = gate

    def _crc_ok(self, batch: RxBatch, which: Rows) -> Bool:
        """Whether the PDUs of the DOCSIS frames ``which`` (LEN checked) have a right CRC."""
        stride = batch.buf.shape[1]
        row_start = self.rows[which] * stride + batch.headroom
        starts = row_start + DOCSIS_HEADER_LEN
        ends = row_start + ETH_LEN + 6 + self.mac_len[which].astype(np.int64)
        ok: Bool = crc32s(batch.buf, starts, ends) == _CRC32_RESIDUE
        return ok

    def verdicts(self, batch: RxBatch, standby: bool) -> I64:
        """Every DOCSIS frame's :class:`Up` verdict at once, in the module's precedence."""
        length, mac_len, total, w4, w5 = self.length, self.mac_len, self.total, self.w4, self.w5
        fc = (self.w1 >> _8) & _FF
        header = length >= _20
        management = header & ((fc & _MGMT_MASK) == _MGMT)
        request = header & ((fc == _FC_REQUEST) | (fc == _FC_QUEUE_DEPTH_REQUEST))
        bad_docsis = (length < _DOCSIS_HLEN) | ~self.shape_ok | ~self.hcs_ok
        bad_docsis |= (mac_len < _DOCSIS_MIN_LEN) | (mac_len + _MAC_HLEN > length)
        pdu_type = (w4 >> _16) & _FFFF
        ihl4 = (w4 >> _6) & _IHL4
        version4 = (w4 & _F000) == _4000
        # DHCP: IPv4 UDP to port 67, the first fragment, the port before the PDU's CRC.
        port_at = ihl4 + _PORT_AT
        port_in = port_at + _PORT_END <= mac_len + _MAC_HLEN
        at = (port_at.astype(np.int64) + batch.headroom)[:, None] + _PORT_BYTES
        np.minimum(at, batch.buf.shape[1] - 1, out=at)  # past the row: not port_in anyway
        port = batch.buf[self.rows[:, None], at].astype(np.uint64)
        dhcp = (pdu_type == _ET_IPV4) & version4 & (ihl4 >= _20) & port_in
        dhcp &= ((w5 >> _16) & _1FFF) == _ZERO
        dhcp &= ((w5 & _FF) == _UDP) & (((port[:, 0] << _8) | port[:, 1]) == _BOOTPS)
        punt = (pdu_type == _ET_ARP) | dhcp
        # The CRC of the frames that get as far as its check (the others' does not matter).
        crc_ok = np.ones(len(length), dtype=bool)
        reach = ~(bad_docsis | request | management | punt) & self.ours & self.valid
        reach &= self.cm_ok & self.cpe_ok & self.da_ok
        reached = reach.nonzero()[0]
        if len(reached):
            crc_ok[reached] = self._crc_ok(batch, reached)
        bad_ipv4 = (mac_len < _MIN_IPV4_LEN) | ~version4 | (ihl4 < _20)
        bad_ipv4 |= (total < ihl4) | (total + _LEN_PAST_IP > mac_len)
        checks = [
            (length < _14, Up.RUNT),
            (~self.ours & (self.dst != _BROADCAST), Up.NOT_FOR_US),
            (management, Up.STANDBY if standby else Up.PUNT),
            (~self.ours, Up.NOT_FOR_US),
            (request, Up.DOCSIS_REQUEST),
            (bad_docsis, Up.BAD_DOCSIS),
            (punt, Up.PUNT),
            (~self.valid, Up.UNKNOWN_SID),
            (~self.cm_ok, Up.SPOOFED_MAC),
            (~self.cpe_ok, Up.SPOOFED_CPE_MAC),
            (~self.da_ok, Up.PDU_NOT_FOR_US),
            (~crc_ok, Up.BAD_CRC),
            (pdu_type != _ET_IPV4, Up.UNKNOWN_ETHERTYPE),
            (bad_ipv4, Up.BAD_IPV4),
            (~self.src_ok, Up.SPOOFED_IP),
            (~self.ttl_ok, Up.TTL_EXCEEDED),
        ]
        return first_match(len(length), checks, Up.FORWARD)
