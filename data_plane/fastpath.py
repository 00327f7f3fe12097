"""The batch fast path: PPPoE and DOCSIS frames ⇄ IPv4, vectorized with numpy.

Theory of operation
-------------------
A batch arrives as rows of a 2-D ``uint8`` array, frame ``i`` at column ``h`` (the
headroom) of row ``i``. Both directions read the first 40 bytes of every frame as five
big-endian 64-bit words in one strided copy and take every header field from those words
with shifts and masks (a batch with DOCSIS frames reads three more, their IPv4 header starts
at byte 38), so the cost is a fixed number of numpy calls per *batch*, not per frame.

1. **Gate.** A handful of whole-word comparisons and three gathers from the session table
   pick out the ordinary frames: a valid data packet of an installed session (upstream
   also: IPv4 without options). When the whole batch passes (the common case) every
   verdict is "forward" and nothing else is computed. DOCSIS frames (carrier 0x88B6) never
   pass the PPPoE gate; a batch with any gets a second gate over its DOCSIS rows: a Packet
   PDU with exactly one Request EH element, a right HCS, a session at the SID whose CM and
   CPE MACs match, the PDU addressed to the group, IPv4 without options and not to the DHCP
   server port, anti-spoofing, TTL, and last the PDU's CRC-32. The HCS is one XOR of three
   table gathers (CRC-16 is affine); the CRC-32 is one ``zlib.crc32`` per DOCSIS frame over
   a memoryview of its row, the only per-frame call on the forwarding path (PPPoE frames
   never pay it). :mod:`data_plane.cable` has these DOCSIS parts.
2. **Exceptions.** Frames that miss the gate get their verdict (forward, punt, or a drop
   reason) one by one in Python when there are few of them (:data:`PER_FRAME_LIMIT`: a
   batch with one LCP echo in it stays cheap), or all at once with vectorized checks when
   there are many (a flood of garbage costs a fixed number of numpy calls). Both apply the
   same checks in the precedence below (:mod:`data_plane.verdicts` is the per-frame one);
   punted and ARP frames are copied out here.
3. **QoS.** Among the frames that would forward, those of sessions with a rate go through
   their session's token bucket (:class:`~data_plane.qos.TokenBuckets`: one refill per
   session per batch, then a per-session running sum of IPv4 total lengths in arrival
   order); those that do not fit are dropped as ``rate_limited``. The clock is the batch's
   receive time (``RxBatch.time_ns``). A worker with no limited session skips this without
   a lookup; a batch with none of them costs one gather.
4. **Rewrite in place, every row, with slices** (cheaper than picking rows; rows not sent
   are drops, or copied already). Upstream PPPoE writes the core Ethernet header over the
   last 14 bytes of the PPPoE/PPP header, so the IPv4 packet is sent from column ``h + 8``;
   upstream DOCSIS writes it over the PDU's Ethernet header (``h + 24``). Downstream PPPoE
   writes the 22-byte Ethernet + PPPoE + PPP header 8 bytes into the headroom (``h - 8``);
   downstream DOCSIS the 34-byte carrier + MAC header + PDU header template 20 bytes into it
   (``h - 20``), then LEN, the HCS (a 64 K-entry table by LEN: FC and MAC_PARM are 0) and
   the PDU's CRC-32 after the packet (one zlib call per frame, stored with one vectorized
   assignment). TTL - 1 is one 16-bit subtraction; the header checksum update (RFC 1624,
   eqn. 3) is one gather from a 64 K-entry table of the updated value of every checksum.
   In a batch of both kinds the PPPoE rewrite goes over every row with slices and the DOCSIS
   one over its rows by index; every row has its own offset in the TxBatch.
5. **Count.** Per-session packets and IP bytes with ``np.add.at``; worker-wide verdict counts
   with one ``np.bincount`` per batch (a single add when all forward).

Verdict precedence (the first matching line wins):

* upstream (ACCESS port): runt (< 14 bytes) · not_for_us (destination neither one of our
  groups' virtual MACs nor broadcast) · discovery 0x8863 → punt, or standby when the worker
  serves no group · DOCSIS management (0x88B6, ≥ 20 bytes, FC_TYPE 11 with FC_PARM 0
  timing or 1 MAC management) → punt, or standby likewise · unknown_ethertype (neither
  0x8864 nor 0x88B6) · not_for_us (0x8864 or 0x88B6 to broadcast), then by ethertype:

  - PPPoE 0x8864: bad_pppoe (RFC 2516 §4: VER/TYPE 0x11, CODE 0x00, LENGTH ≥ 2 and within
    the frame) · PPP protocol not 0x0021 → punt (LCP, PAP, CHAP, IPCP... to the CP, session
    installed or not) · unknown_session · spoofed_mac · bad_ipv4 (version 4, IHL ≥ 5, IHL ≤
    total length ≤ PPPoE payload) · spoofed_ip · ttl_exceeded (TTL ≤ 1) · no_next_hop
    (gateway MAC unknown).
  - DOCSIS 0x88B6: docsis_request (FC 0xC4 or 0xC8, ≥ 20 bytes: a bandwidth request;
    nothing is scheduled on this link) · bad_docsis (shorter than the 24-byte header, FC not
    0x01, ELEN not 4 or its EH not one Request element 0x13, a SID over 14 bits, HCS wrong,
    LEN < 22 (a PDU under 18 bytes) or past the frame) · PDU ARP, or IPv4 UDP to port 67
    (DHCP: first fragment, port before the CRC) → punt, session or not · unknown_sid ·
    spoofed_mac (carrier source not the CM's) · spoofed_cpe_mac (PDU source not the CPE's) ·
    pdu_not_for_us (PDU destination not the group's MAC) · bad_crc (PDU CRC-32) ·
    unknown_ethertype (PDU not IPv4) · bad_ipv4 (as PPPoE, total length + 18 ≤ PDU length:
    Ethernet padding inside the PDU is allowed) · spoofed_ip · ttl_exceeded · no_next_hop.

  Then rate_limited (QoS, above). Charged to the session's ``dropped`` counter: bad_ipv4,
  spoofed_ip, ttl_exceeded, no_next_hop, bad_crc, rate_limited (:data:`UP_CHARGED`).
* downstream (CORE port): runt · ARP (0x0806 to us or broadcast, handled by the worker) ·
  not_for_us (destination not our core MAC) · unknown_ethertype (not 0x0800) · bad_ipv4
  (frame ≥ 34 bytes, version 4, IHL ≥ 5, IHL ≤ total length ≤ frame) · no_route (in no
  pool of ours) · unknown_session · ttl_exceeded · too_big (total length > the session MRU
  for PPPoE; > 1500 for DOCSIS) · rate_limited. Charged: ttl_exceeded, too_big,
  rate_limited (:data:`DOWN_CHARGED`).

The forwarding path allocates no Python object per frame but DOCSIS's CRC-32 calls;
nothing here raises on frame contents.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import numpy.typing as npt

from data_plane.cable import CableUp, crc32s, docsis_downstream_hcs
from data_plane.io.base import RxBatch, TxBatch
from data_plane.qos import TokenBuckets
from data_plane.tables import (
    DOCSIS_ENCAP_LEN,
    ENCAP_LEN,
    ETHERTYPE_DOCSIS,
    ETHERTYPE_IPV4,
    ETHERTYPE_PPPOE_SESSION,
    NO_ROUTE,
    SessionTable,
)
from data_plane.verdicts import (
    DOCSIS_IP_OFFSET,
    DOCSIS_MTU,
    DOWN_CHARGED,
    ETH_LEN,
    ETHERTYPE_ARP,
    ETHERTYPE_PPPOE_DISCOVERY,
    UP_CHARGED,
    Down,
    Up,
    classify_access,
    classify_core,
    first_match,
)

BROADCAST = 0xFFFF_FFFF_FFFF
PER_FRAME_LIMIT = 16
"""Frames missing the gate that a batch judges one by one; with more it judges all at once
(one numpy pass costs about as much as a dozen frames in Python)."""
DOCSIS_UP_OFFSET = DOCSIS_IP_OFFSET - ETH_LEN
"""Upstream DOCSIS: the core Ethernet header goes over the PDU's (24)."""
DOCSIS_DOWN_HEADROOM = DOCSIS_ENCAP_LEN - ETH_LEN
"""Downstream DOCSIS: the bytes written in front of the received Ethernet header (20)."""
CRC_LEN = 4

U8 = npt.NDArray[np.uint8]
U16 = npt.NDArray[np.uint16]
U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]
Bool = npt.NDArray[np.bool_]
Rows = npt.NDArray[np.integer[Any]]

_BE64 = np.dtype(">u8")
_BE16 = np.dtype(">u2")
_WORDS = 5


def _k(value: int) -> U64:
    """A 0-d uint64 array: numpy dispatches array⊕array much faster than array⊕scalar."""
    return np.array(value, dtype=np.uint64)


_2 = _k(2)
_6 = _k(6)
_8 = _k(8)
_14 = _k(ETH_LEN)
_16 = _k(16)
_20 = _k(20)
_22 = _k(ENCAP_LEN)
_32 = _k(32)
_38 = _k(DOCSIS_ENCAP_LEN + CRC_LEN)
_PDU_OVERHEAD = _k(ETH_LEN + CRC_LEN)  # a downstream PDU's LEN: its header, packet, CRC
_48 = _k(48)
_FF00 = _k(0xFF00)
_0100 = _k(0x0100)
_FFFF = _k(0xFFFF)
_FEFF = _k(0xFEFF)
_F000 = _k(0xF000)
_4000 = _k(0x4000)
_IHL4 = _k(0x3C)
_LOW32 = _k(0xFFFF_FFFF)
_HIGH20 = _k(0xFFFF_F000)
_HIGH24 = _k(0xFFFF_FF00)
_ET_VER_CODE = _k(0x8864_1100)  # ethertype 0x8864, PPPoE VER/TYPE 0x11, CODE 0
_PPP_IPV4_45 = _k(0x0021_4500)  # PPP protocol 0x0021, IP version 4, IHL 5
_ET_IPV4_VER = _k(0x0800_4000)  # ethertype 0x0800, IP version 4
_VER_CODE = _k(0x1100)
_PPP_IPV4 = _k(0x0021)
_BROADCAST = _k(BROADCAST)
_PEEK = 48
"""Bytes of a frame the per-frame checks read (headers up to the IPv4 addresses); all of a
DOCSIS frame, whose CRC-32 they check."""
_I32_0 = np.array(0, dtype=np.int32)
_NO_ROUTE = np.array(NO_ROUTE, dtype=np.int32)
_ET_SESSION = _k(ETHERTYPE_PPPOE_SESSION)
_ET_DISCOVERY = _k(ETHERTYPE_PPPOE_DISCOVERY)
_ET_ARP = _k(ETHERTYPE_ARP)
_ET_IPV4 = _k(ETHERTYPE_IPV4)
_ET_DOCSIS = _k(ETHERTYPE_DOCSIS)
_CRC_BYTES = np.arange(CRC_LEN, dtype=np.int64)
_UP_CHARGED = np.array([v in UP_CHARGED for v in Up], dtype=bool)
_DOWN_CHARGED = np.array([v in DOWN_CHARGED for v in Down], dtype=bool)


def ttl_decrement_checksum(checksum: U64) -> U64:
    """The IPv4 header checksum after TTL - 1 (RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m')).

    The 16-bit word m holding the TTL loses 0x0100, so ~m + m' is the constant 0xFEFF; one
    end-around carry folds the sum back into 16 bits.
    """
    x = (checksum ^ _FFFF) + _FEFF  # < 0x1FEFF
    return ((x & _FFFF) + (x >> _16)) ^ _FFFF


def _hop_table() -> U16:
    """Every 16-bit checksum field → the field after TTL - 1, both as the native-endian
    ``uint16`` the two wire bytes read as. One gather then rewrites a batch's checksums."""
    wire = np.arange(1 << 16, dtype=np.uint16)  # all byte pairs, read natively
    updated = ttl_decrement_checksum(wire.view(_BE16).astype(np.uint64))
    return updated.astype(_BE16).view(np.uint16)


_HOP = _hop_table()
# The TTL is the first byte of the 16-bit word (TTL, protocol): read natively, TTL - 1 is
# the word minus 1 on a little-endian machine and minus 0x100 on a big-endian one.
_TTL_ONE = np.array(1 if sys.byteorder == "little" else 0x100, dtype=np.uint16)


def _hop(buf: U8, n: int, ttl_column: int) -> None:
    """Rows 0..n: TTL - 1 and the checksum two bytes later updated (even ``ttl_column``)."""
    words = buf.view(np.uint16)[:n]
    c = ttl_column >> 1
    words[:, c] -= _TTL_ONE
    words[:, c + 1] = _HOP[words[:, c + 1]]


def _hop_rows(buf: U8, rows: Rows, ttl_column: int) -> None:
    """:func:`_hop` for the rows ``rows``."""
    words = buf.view(np.uint16)
    c = ttl_column >> 1
    words[rows, c] -= _TTL_ONE
    words[rows, c + 1] = _HOP[words[rows, c + 1]]


class Scratch:
    """Reusable constant arrays, so an all-forward batch allocates no index lists."""

    def __init__(self, capacity: int = 256) -> None:
        self._capacity = capacity
        self._arange: I64 = np.arange(capacity, dtype=np.int64)
        self._ones: U64 = np.ones(capacity, dtype=np.uint64)
        self._consts: dict[int, I64] = {}
        self._scalars: dict[int, U64] = {}

    def scalar(self, value: int) -> U64:
        """:func:`_k` of ``value``, made once (per-batch constants: MRU, core MAC)."""
        arr = self._scalars.get(value)
        if arr is None:
            arr = self._scalars[value] = _k(value)
        return arr

    def _grow(self, n: int) -> None:
        self._capacity = n
        self._arange = np.arange(n, dtype=np.int64)
        self._ones = np.ones(n, dtype=np.uint64)
        self._consts.clear()

    def rows(self, n: int) -> I64:
        if n > self._capacity:
            self._grow(n)
        return self._arange[:n]

    def ones(self, n: int) -> U64:
        if n > self._capacity:
            self._grow(n)
        return self._ones[:n]

    def const(self, value: int, n: int) -> I64:
        if n > self._capacity:
            self._grow(n)
        arr = self._consts.get(value)
        if arr is None:
            arr = self._consts[value] = np.full(self._capacity, value, dtype=np.int64)
        return arr[:n]


def _words(batch: RxBatch) -> U64:
    """Bytes ``h .. h+40`` of every frame as five native uint64 rows, shape (5, n)."""
    c = batch.headroom >> 3
    view = batch.buf.view(_BE64)[: batch.count, c : c + _WORDS]
    return view.T.astype(np.uint64, order="C")


def _rows_with(verdict: I64, code: int) -> Rows:
    rows: Rows = (verdict == np.array(int(code), dtype=np.int64)).nonzero()[0]
    return rows


def _copies(batch: RxBatch, rows: Rows) -> list[bytes]:
    return [batch.frame(i) for i in rows.tolist()]


def _count(packets: U64, octets: U64, dirty: Bool, slot: Rows, size: U64, ones: U64) -> None:
    np.add.at(packets, slot, ones)
    np.add.at(octets, slot, size)
    dirty[slot] = True


def _charge_drops(
    sessions: SessionTable, slot: Rows, verdict: I64, charged: Bool, sc: Scratch
) -> None:
    """Count the drops whose verdict is ``charged`` against their sessions."""
    hit = charged[verdict]
    if np.count_nonzero(hit):
        slots = slot[hit]
        np.add.at(sessions.dropped, slots, sc.ones(len(slots)))
        sessions.dirty[slots] = True


def _police(
    buckets: TokenBuckets, batch: RxBatch, verdict: I64, slot: Rows, size: U64, code: int
) -> None:
    """Frames about to forward that their sessions' buckets refuse get verdict ``code``."""
    fwd = _rows_with(verdict, 0)  # FORWARD, both directions
    if len(fwd):
        passed = buckets.police(slot[fwd], size[fwd], batch.time_ns())
        if passed is not None:
            verdict[fwd[~passed]] = int(code)


def _rate_limited(passed: Bool, code: int) -> I64:
    """The verdicts of a batch that passed the gate: forward, or ``code`` where refused."""
    verdict: I64 = (~passed).astype(np.int64)
    verdict *= int(code)
    return verdict


# ---- upstream -----------------------------------------------------------------------------
def upstream(
    batch: RxBatch,
    sessions: SessionTable,
    next_hop_header: U8 | None,
    stats: I64,
    scratch: Scratch,
    per_frame_limit: int = PER_FRAME_LIMIT,
) -> tuple[TxBatch, list[bytes]]:
    """Decapsulate a batch from the ACCESS port in place.

    ``next_hop_header`` is the 14-byte Ethernet header toward the core next hop (None while
    its MAC is unknown). Adds per-verdict counts to ``stats`` (indexed by :class:`Up`).
    Returns the frames to send on the CORE port and copies of the frames to punt. Up to
    ``per_frame_limit`` frames that miss the gate are judged one by one, more all at once.
    """
    n = batch.count
    buf = batch.buf
    if n == 0:
        return TxBatch(buf), []
    h = batch.headroom
    words = _words(batch)
    w0, w1, w2, w3, w4 = words
    length = batch.lengths[:n].astype(np.uint64)
    dst = w0 >> _16
    base, ours = sessions.groups.lookup_macs(dst)
    slot = (w2 >> _48).astype(np.intp) | base
    src_mac = ((w0 & _FFFF) << _32) | (w1 >> _32)
    plen = (w2 >> _32) & _FFFF
    total = w3 >> _48
    valid = sessions.valid[slot]
    mac_ok = sessions.client_mac[slot] == src_mac
    ip_ok = sessions.ipv4[slot] == ((w4 >> _16) & _LOW32)
    ttl_ok = (w3 & _FF00) > _0100
    # The gate takes the usual packet only: 0x8864, VER/TYPE 0x11, CODE 0 in one word; PPP
    # 0x0021 and IPv4 without options (0x45) in another. Other frames take the full checks.
    header_ok = ((w1 & _LOW32) == _ET_VER_CODE) & ((w2 & _HIGH24) == _PPP_IPV4_45)
    length_ok = (plen + _20 <= length) & (total + _2 <= plen) & (total >= _20)
    ok = ours & valid & mac_ok & ip_ok & ttl_ok & header_ok & length_ok
    misses = n - int(np.count_nonzero(ok))
    cable: CableUp | None = None
    if misses:  # DOCSIS frames never pass the PPPoE gate
        is_docsis = ((w1 >> _16) & _FFFF) == _ET_DOCSIS
        if np.count_nonzero(is_docsis):
            cable = CableUp(batch, words, length, base, ours, src_mac, is_docsis, sessions)
            rows = cable.index
            ok[rows], slot[rows], total[rows] = cable.gate, cable.slot, cable.total
            misses = n - int(np.count_nonzero(ok))
    qos = sessions.qos_up
    if next_hop_header is not None and misses == 0:
        passed = qos.police(slot, total, batch.time_ns()) if qos.count else None
        if passed is None or np.count_nonzero(passed) == n:
            stats[Up.FORWARD] += n
            every = scratch.rows(n)
            if cable is None:  # the usual batch: PPPoE only
                buf[:n, h + 8 : h + 22] = next_hop_header
                _hop(buf, n, h + 30)
                offsets: Rows = scratch.const(h + 8, n)
            else:
                offsets = _decap(buf, n, h, next_hop_header, every, cable, scratch)
            tx = TxBatch(buf, every, offsets, total + _14)
            _count(
                sessions.up_packets, sessions.up_bytes, sessions.dirty, slot, total, scratch.ones(n)
            )
            return tx, []
        verdict = _rate_limited(passed, Up.RATE_LIMITED)
    elif next_hop_header is not None and misses <= per_frame_limit:
        verdict = np.zeros(n, dtype=np.int64)  # Up.FORWARD
        for i in (~ok).nonzero()[0].tolist():
            size = int(batch.lengths[i])
            peek = size if cable is not None and cable.is_docsis[i] else _PEEK
            frame = buf[i, h : h + peek].tobytes()
            verdict[i] = classify_access(frame, size, sessions)
    else:
        standby = sessions.groups.serving == 0
        verdict = _access_verdicts(
            (w0, w1, w2, w3), length, ours, valid, mac_ok, ip_ok, ttl_ok, standby
        )
        if cable is not None:
            verdict[cable.index] = cable.verdicts(batch, standby)
        if next_hop_header is None:
            verdict[_rows_with(verdict, Up.FORWARD)] = int(Up.NO_NEXT_HOP)
    if misses and qos.count:
        _police(qos, batch, verdict, slot, total, Up.RATE_LIMITED)
    stats += np.bincount(verdict, minlength=len(Up))
    _charge_drops(sessions, slot, verdict, _UP_CHARGED, scratch)
    punts = _copies(batch, _rows_with(verdict, Up.PUNT))
    fwd = _rows_with(verdict, Up.FORWARD)
    if not len(fwd) or next_hop_header is None:
        return TxBatch(buf), punts
    # Rewriting every row with slices is cheaper than picking rows; the others are dropped
    # (punts were copied out above).
    offsets = _decap(buf, n, h, next_hop_header, fwd, cable, scratch)
    total, slot = total[fwd], slot[fwd]
    tx = TxBatch(buf, fwd, offsets, total + _14)
    ones = scratch.ones(len(fwd))
    _count(sessions.up_packets, sessions.up_bytes, sessions.dirty, slot, total, ones)
    return tx, punts


def _access_verdicts(
    words: tuple[U64, U64, U64, U64],
    length: U64,
    ours: Bool,
    valid: Bool,
    mac_ok: Bool,
    ip_ok: Bool,
    ttl_ok: Bool,
    standby: bool,
) -> I64:
    """Every frame's :class:`Up` verdict at once, in the module's precedence order (the
    DOCSIS frames' are :meth:`CableUp.verdicts`)."""
    w0, w1, w2, w3 = words
    plen = (w2 >> _32) & _FFFF
    total = w3 >> _48
    ethertype = (w1 >> _16) & _FFFF
    ihl4 = (w2 >> _6) & _IHL4
    bad_pppoe = (length < _20) | ((w1 & _FFFF) != _VER_CODE) | (plen < _2) | (plen + _20 > length)
    bad_ipv4 = (plen < _22) | ((w2 & _F000) != _4000) | (ihl4 < _20) | (total < ihl4)
    bad_ipv4 |= total + _2 > plen
    checks = [
        (length < _14, Up.RUNT),
        (~ours & ((w0 >> _16) != _BROADCAST), Up.NOT_FOR_US),
        (ethertype == _ET_DISCOVERY, Up.STANDBY if standby else Up.PUNT),
        (ethertype != _ET_SESSION, Up.UNKNOWN_ETHERTYPE),
        (~ours, Up.NOT_FOR_US),
        (bad_pppoe, Up.BAD_PPPOE),
        (((w2 >> _16) & _FFFF) != _PPP_IPV4, Up.PUNT),
        (~valid, Up.UNKNOWN_SESSION),
        (~mac_ok, Up.SPOOFED_MAC),
        (bad_ipv4, Up.BAD_IPV4),
        (~ip_ok, Up.SPOOFED_IP),
        (~ttl_ok, Up.TTL_EXCEEDED),
    ]
    return first_match(len(w0), checks, Up.FORWARD)


def _decap(
    buf: U8, n: int, h: int, eth: U8, fwd: Rows, cable: CableUp | None, scratch: Scratch
) -> Rows:
    """Rewrite the rows for the core; returns the offsets of the frames ``fwd`` to send.

    PPPoE: the Ethernet header over bytes h+8..h+22, TTL (h+30) - 1 and checksum updated, in
    every row (slices). DOCSIS: the Ethernet header over the PDU's, h+24..h+38, TTL (h+46)
    - 1, in its forwarded rows only (after the PPPoE rewrite, which clobbers nothing of
    theirs that is sent).
    """
    if cable is None:
        buf[:n, h + 8 : h + 22] = eth
        _hop(buf, n, h + 30)
        return scratch.const(h + 8, len(fwd))
    docsis = cable.is_docsis[fwd]
    rows = fwd[docsis]
    if len(rows) < len(fwd):
        buf[:n, h + 8 : h + 22] = eth
        _hop(buf, n, h + 30)
    if len(rows) == n:  # every row: slices
        buf[:n, h + DOCSIS_UP_OFFSET : h + DOCSIS_IP_OFFSET] = eth
        _hop(buf, n, h + DOCSIS_IP_OFFSET + 8)
        return scratch.const(h + DOCSIS_UP_OFFSET, n)
    if len(rows):
        buf[rows, h + DOCSIS_UP_OFFSET : h + DOCSIS_IP_OFFSET] = eth
        _hop_rows(buf, rows, h + DOCSIS_IP_OFFSET + 8)
    offsets: Rows = np.where(docsis, h + DOCSIS_UP_OFFSET, h + 8)
    return offsets


# ---- downstream ---------------------------------------------------------------------------
def downstream(
    batch: RxBatch,
    sessions: SessionTable,
    core_mac: int,
    mru: int,
    stats: I64,
    scratch: Scratch,
    per_frame_limit: int = PER_FRAME_LIMIT,
) -> tuple[TxBatch, list[bytes]]:
    """Encapsulate a batch from the CORE port in place, toward the subscribers.

    ``core_mac`` is our core MAC as a 48-bit integer. Adds per-verdict counts to ``stats``
    (indexed by :class:`Down`). Returns the frames to send on the ACCESS port and copies of
    the ARP frames, for the worker to handle.
    """
    n = batch.count
    buf = batch.buf
    if n == 0:
        return TxBatch(buf), []
    if batch.headroom < DOCSIS_DOWN_HEADROOM:
        raise ValueError("downstream needs 20 bytes of headroom")  # our misuse, not the peer's
    h = batch.headroom
    w0, w1, w2, w3, w4 = _words(batch)
    length = batch.lengths[:n].astype(np.uint64)
    to_us = (w0 >> _16) == scratch.scalar(core_mac)
    ihl4 = (w1 >> _6) & _IHL4
    total = w2 >> _48
    ttl_ok = (w2 & _FF00) > _0100
    slot = sessions.ip_slot[sessions.groups.lookup_ips(((w3 & _FFFF) << _16) | (w4 >> _48))]
    header_ok = (w1 & _HIGH20) == _ET_IPV4_VER  # ethertype 0x0800 and IP version 4
    length_ok = (ihl4 >= _20) & (total >= ihl4) & (total + _14 <= length)
    # The DOCSIS MTU, as long as the PDU's CRC still fits the row after the packet.
    room = batch.buf.shape[1] - h - ETH_LEN - CRC_LEN
    docsis_mtu = DOCSIS_MTU if room >= DOCSIS_MTU else room
    # DOCSIS sessions take more than the MRU: those frames take the full checks.
    size_ok = total <= scratch.scalar(mru if mru <= docsis_mtu else docsis_mtu)
    known = slot >= _I32_0
    ok = to_us & header_ok & length_ok & size_ok & ttl_ok & known
    misses = n - int(np.count_nonzero(ok))
    docsis: Bool | None = None
    if sessions.docsis_sessions:
        to_docsis = slot >= np.array(sessions.docsis_base, dtype=np.int32)
        docsis = to_docsis if np.count_nonzero(to_docsis) else None
    qos = sessions.qos_down
    if misses == 0:
        passed = qos.police(slot, total, batch.time_ns()) if qos.count else None
        if passed is None or np.count_nonzero(passed) == n:
            stats[Down.FORWARD] += n
            every = scratch.rows(n)
            offsets, extra = _encap(buf, n, h, sessions, slot, total, every, docsis, scratch)
            tx = TxBatch(buf, every, offsets, total + extra)
            ones = scratch.ones(n)
            _count(sessions.down_packets, sessions.down_bytes, sessions.dirty, slot, total, ones)
            return tx, []
        verdict = _rate_limited(passed, Down.RATE_LIMITED)
    elif misses <= per_frame_limit:
        verdict = np.zeros(n, dtype=np.int64)  # Down.FORWARD
        own = core_mac.to_bytes(6, "big")
        for i in (~ok).nonzero()[0].tolist():
            frame = buf[i, h : h + _PEEK].tobytes()
            size = int(batch.lengths[i])
            verdict[i] = classify_core(frame, size, sessions, own, mru, docsis_mtu)
    else:
        limit = scratch.scalar(mru)
        if docsis is not None:
            limit = np.where(docsis, scratch.scalar(docsis_mtu), limit)
        size_ok = total <= limit
        ethertype = (w1 >> _16) & _FFFF
        checks = [
            (length < _14, Down.RUNT),
            ((ethertype == _ET_ARP) & (to_us | ((w0 >> _16) == _BROADCAST)), Down.ARP),
            (~to_us, Down.NOT_FOR_US),
            (ethertype != _ET_IPV4, Down.UNKNOWN_ETHERTYPE),
            ((length < _14 + _20) | ((w1 & _F000) != _4000) | ~length_ok, Down.BAD_IPV4),
            (slot == _NO_ROUTE, Down.NO_ROUTE),
            (~known, Down.UNKNOWN_SESSION),
            (~ttl_ok, Down.TTL_EXCEEDED),
            (~size_ok, Down.TOO_BIG),
        ]
        verdict = first_match(n, checks, Down.FORWARD)
    if misses and qos.count:
        _police(qos, batch, verdict, slot, total, Down.RATE_LIMITED)
    stats += np.bincount(verdict, minlength=len(Down))
    _charge_drops(sessions, slot, verdict, _DOWN_CHARGED, scratch)
    arp = _copies(batch, _rows_with(verdict, Down.ARP))
    fwd = _rows_with(verdict, Down.FORWARD)
    if not len(fwd):
        return TxBatch(buf), arp
    offsets, extra = _encap(buf, n, h, sessions, slot, total, fwd, docsis, scratch)
    total, slot = total[fwd], slot[fwd]
    tx = TxBatch(buf, fwd, offsets, total + extra)
    ones = scratch.ones(len(fwd))
    _count(sessions.down_packets, sessions.down_bytes, sessions.dirty, slot, total, ones)
    return tx, arp


def _encap(
    buf: U8,
    n: int,
    h: int,
    sessions: SessionTable,
    slot: npt.NDArray[np.int32],
    total: U64,
    fwd: Rows,
    docsis: Bool | None,
    scratch: Scratch,
) -> tuple[Rows, U64]:
    """Rewrite the rows for the subscribers; returns the offsets of the frames ``fwd`` and
    what each adds to its IP total length.

    Every row (slices): TTL (h+22) - 1 and checksum (h+24) updated; with PPPoE frames to
    send, the 22-byte header at h-8..h+14 with PPPoE LENGTH = IP length + 2. Then DOCSIS
    rows (by index, or slices when every row is one): the 34-byte header at h-20..h+14, LEN
    (h-4) = 14 + IP length + 4, its HCS (h-2) and the PDU's CRC-32 after the packet.
    """
    if docsis is None:
        _encap_pppoe(buf, n, h, sessions.encap[slot], total)
        return scratch.const(h - 8, len(fwd)), _22
    to_docsis = docsis[fwd]
    rows = fwd[to_docsis]
    if len(rows) < len(fwd):
        _encap_pppoe(buf, n, h, sessions.encap[slot], total)
    else:
        _hop(buf, n, h + ETH_LEN + 8)
    if not len(rows):
        return scratch.const(h - 8, len(fwd)), _22
    every = len(rows) == n
    index: Rows | slice = slice(0, n) if every else rows
    packet = total[index]
    mac_len = packet + _PDU_OVERHEAD
    buf[index, h - DOCSIS_DOWN_HEADROOM : h + ETH_LEN] = sessions.docsis_encap[
        slot[index] - sessions.docsis_base
    ]
    words = buf.view(np.uint16)
    words[index, (h - 4) >> 1] = mac_len.astype(_BE16).view(np.uint16)
    words[index, (h - 2) >> 1] = docsis_downstream_hcs(mac_len)
    # The PDU's CRC-32: from its DA (h) to the end of the packet, stored behind it.
    starts = (scratch.rows(n) if every else rows) * buf.shape[1] + h
    ends = starts + ETH_LEN + packet.astype(np.int64)
    crc = crc32s(buf, starts, ends)
    buf.reshape(-1)[ends[:, None] + _CRC_BYTES] = crc.astype("<u4").view(np.uint8).reshape(-1, 4)
    if every:
        return scratch.const(h - DOCSIS_DOWN_HEADROOM, n), _38
    offsets: Rows = np.where(to_docsis, h - DOCSIS_DOWN_HEADROOM, h - 8)
    extra: U64 = np.where(to_docsis, _38, _22)
    return offsets, extra


def _encap_pppoe(buf: U8, n: int, h: int, header: U8, total: U64) -> None:
    """Rows 0..n: 22-byte header at h-8..h+14 with PPPoE LENGTH = IP length + 2; TTL (h+22)
    - 1 and checksum (h+24) updated."""
    buf[:n, h - 8 : h + ETH_LEN] = header
    payload = total + _2
    buf[:n, h + 10] = payload >> _8
    buf[:n, h + 11] = payload
    _hop(buf, n, h + 22)
