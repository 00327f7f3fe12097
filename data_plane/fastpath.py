"""The batch fast path: PPPoE session frames ⇄ IPv4, vectorized with numpy.

Theory of operation
-------------------
A batch arrives as rows of a 2-D ``uint8`` array, frame ``i`` at column ``h`` (the
headroom) of row ``i``. Both directions read the first 40 bytes of every frame as five
big-endian 64-bit words in one strided copy and take every header field from those words
with shifts and masks, so the cost is a fixed number of numpy calls per *batch*, not per
frame.

1. **Gate.** A handful of whole-word comparisons and three gathers from the session table
   pick out the ordinary frames: a valid data packet of an installed session (upstream
   also: IPv4 without options). When the whole batch passes (the common case) every
   verdict is "forward" and nothing else is computed.
2. **Exceptions.** Frames that miss the gate get their verdict (forward, punt, or a drop
   reason) one by one in Python when there are few of them (:data:`PER_FRAME_LIMIT`: a
   batch with one LCP echo in it stays cheap), or all at once with vectorized checks when
   there are many (a flood of garbage costs a fixed number of numpy calls). Both apply the
   same checks in the precedence below; punted and ARP frames are copied out here.
3. **Rewrite in place, every row, with slices** (cheaper than picking rows; rows not sent
   are drops, or copied already). Upstream writes the core Ethernet header over the last 14
   bytes of the PPPoE/PPP header, so the IPv4 packet is sent from column ``h + 8``;
   downstream writes the 22-byte Ethernet + PPPoE + PPP header 8 bytes into the headroom
   (``h - 8``). TTL - 1 is one 16-bit subtraction; the header checksum update (RFC 1624,
   eqn. 3) is one gather from a 64 K-entry table of the updated value of every checksum.
4. **Count.** Per-session packets and IP bytes with ``np.add.at``; worker-wide verdict counts
   with one ``np.bincount`` per batch (a single add when all forward).

Verdict precedence (the first matching line wins):

* upstream (ACCESS port): runt (< 14 bytes) · not_for_us (destination neither one of our
  groups' virtual MACs nor broadcast) · discovery 0x8863 → punt, or standby when the worker
  serves no group · unknown_ethertype (not 0x8864) · not_for_us (0x8864 to broadcast) ·
  bad_pppoe (RFC 2516 §4: VER/TYPE 0x11, CODE 0x00, LENGTH ≥ 2 and within the frame) ·
  PPP protocol not 0x0021 → punt (LCP, PAP, CHAP, IPCP... to the CP, session installed or
  not) · unknown_session · spoofed_mac · bad_ipv4 (version 4, IHL ≥ 5, IHL ≤ total length
  ≤ PPPoE payload) · spoofed_ip · ttl_exceeded (TTL ≤ 1) · no_next_hop (gateway MAC unknown).
* downstream (CORE port): runt · ARP (0x0806 to us or broadcast, handled by the worker) ·
  not_for_us (destination not our core MAC) · unknown_ethertype (not 0x0800) · bad_ipv4
  (frame ≥ 34 bytes, version 4, IHL ≥ 5, IHL ≤ total length ≤ frame) · no_route (in no
  pool of ours) · unknown_session · ttl_exceeded · too_big (total length > session MRU).

The forwarding path allocates no Python object per frame; nothing here raises on frame
contents.
"""

from __future__ import annotations

import enum
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from data_plane.io.base import RxBatch, TxBatch
from data_plane.tables import ENCAP_LEN, NO_ROUTE, SESSION_BITS, SessionTable

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_ARP = 0x0806
ETHERTYPE_PPPOE_DISCOVERY = 0x8863
ETHERTYPE_PPPOE_SESSION = 0x8864
BROADCAST = 0xFFFF_FFFF_FFFF
ETH_LEN = 14
PPPOE_LEN = 6
PPP_PROTO_LEN = 2
PER_FRAME_LIMIT = 16
"""Frames missing the gate that a batch judges one by one; with more it judges all at once
(one numpy pass costs about as much as a dozen frames in Python)."""
MAX_MRU = 1492
"""RFC 2516 §7: the PPPoE MRU is at most 1492."""

U8 = npt.NDArray[np.uint8]
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
_BROADCAST_MAC = b"\xff" * 6
_PEEK = 48
"""Bytes of a frame the per-frame checks read (headers up to the IPv4 addresses)."""
_I32_0 = np.array(0, dtype=np.int32)
_NO_ROUTE = np.array(NO_ROUTE, dtype=np.int32)
_ET_SESSION = _k(ETHERTYPE_PPPOE_SESSION)
_ET_DISCOVERY = _k(ETHERTYPE_PPPOE_DISCOVERY)
_ET_ARP = _k(ETHERTYPE_ARP)
_ET_IPV4 = _k(ETHERTYPE_IPV4)


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
    # From here on the drop is charged to the session (its ``dropped`` counter).
    BAD_IPV4 = 9
    SPOOFED_IP = 10
    TTL_EXCEEDED = 11
    NO_NEXT_HOP = 12


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
    # From here on the drop is charged to the session.
    TTL_EXCEEDED = 8
    TOO_BIG = 9


def ttl_decrement_checksum(checksum: U64) -> U64:
    """The IPv4 header checksum after TTL - 1 (RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m')).

    The 16-bit word m holding the TTL loses 0x0100, so ~m + m' is the constant 0xFEFF; one
    end-around carry folds the sum back into 16 bits.
    """
    x = (checksum ^ _FFFF) + _FEFF  # < 0x1FEFF
    return ((x & _FFFF) + (x >> _16)) ^ _FFFF


def _hop_table() -> npt.NDArray[np.uint16]:
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


class Scratch:
    """Reusable constant arrays, so an all-forward batch allocates no index lists."""

    def __init__(self, capacity: int = 256) -> None:
        self._capacity = capacity
        self._arange: I64 = np.arange(capacity, dtype=np.int64)
        self._ones: U64 = np.ones(capacity, dtype=np.uint64)
        self._consts: dict[int, I64] = {}

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


def _first_match(n: int, checks: Sequence[tuple[Bool, int]], default: int) -> I64:
    """Per frame, the code of the first check that holds (``default`` if none does)."""
    verdict = np.full(n, int(default), dtype=np.int64)
    for cond, code in reversed(checks):
        verdict[cond] = int(code)  # a plain int: numpy converts an IntEnum slowly
    return verdict


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
    sessions: SessionTable, slot: Rows, verdict: I64, first: int, sc: Scratch
) -> None:
    """Count the drops from verdict ``first`` on against their sessions."""
    hit = verdict >= np.array(int(first), dtype=np.int64)
    if hit.any():
        charged = slot[hit]
        np.add.at(sessions.dropped, charged, sc.ones(len(charged)))
        sessions.dirty[charged] = True


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
    w0, w1, w2, w3, w4 = _words(batch)
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
    if next_hop_header is not None and misses == 0:
        stats[Up.FORWARD] += n
        _decap(buf, n, h, next_hop_header)
        tx = TxBatch(buf, scratch.rows(n), scratch.const(h + 8, n), total + _14)
        _count(sessions.up_packets, sessions.up_bytes, sessions.dirty, slot, total, scratch.ones(n))
        return tx, []

    if next_hop_header is not None and misses <= per_frame_limit:
        verdict = np.zeros(n, dtype=np.int64)  # Up.FORWARD
        for i in (~ok).nonzero()[0].tolist():
            frame = buf[i, h : h + _PEEK].tobytes()
            verdict[i] = classify_access(frame, int(batch.lengths[i]), sessions)
    else:
        standby = sessions.groups.serving == 0
        words = (w0, w1, w2, w3)
        verdict = _access_verdicts(words, length, ours, valid, mac_ok, ip_ok, ttl_ok, standby)
        if next_hop_header is None:
            verdict[_rows_with(verdict, Up.FORWARD)] = int(Up.NO_NEXT_HOP)
    stats += np.bincount(verdict, minlength=len(Up))
    _charge_drops(sessions, slot, verdict, Up.BAD_IPV4, scratch)
    punts = _copies(batch, _rows_with(verdict, Up.PUNT))
    fwd = _rows_with(verdict, Up.FORWARD)
    if not len(fwd) or next_hop_header is None:
        return TxBatch(buf), punts
    # Rewriting every row with slices is cheaper than picking rows; the others are dropped
    # (punts were copied out above).
    _decap(buf, n, h, next_hop_header)
    total, slot = total[fwd], slot[fwd]
    tx = TxBatch(buf, fwd, scratch.const(h + 8, len(fwd)), total + _14)
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
    """Every frame's :class:`Up` verdict at once, in the module's precedence order."""
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
    return _first_match(len(w0), checks, Up.FORWARD)


def classify_access(frame: bytes, length: int, sessions: SessionTable) -> Up:
    """One frame's :class:`Up` verdict from its first 38 bytes (or all of a shorter frame;
    ``length`` is the whole frame's): the same checks and precedence as the batch."""
    if length < ETH_LEN:
        return Up.RUNT
    group = sessions.groups.slot_by_mac.get(frame[0:6])
    if group is None and frame[0:6] != _BROADCAST_MAC:
        return Up.NOT_FOR_US
    ethertype = frame[12] << 8 | frame[13]
    if ethertype == ETHERTYPE_PPPOE_DISCOVERY:
        return Up.STANDBY if not sessions.groups.slot_by_mac else Up.PUNT
    if ethertype != ETHERTYPE_PPPOE_SESSION:
        return Up.UNKNOWN_ETHERTYPE
    if group is None:
        return Up.NOT_FOR_US
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
    ihl4 = (frame[22] & 0x0F) * 4
    total = frame[24] << 8 | frame[25]
    if plen < PPP_PROTO_LEN + 20 or frame[22] >> 4 != 4 or ihl4 < 20 or total < ihl4:
        return Up.BAD_IPV4
    if total + PPP_PROTO_LEN > plen:
        return Up.BAD_IPV4
    if int.from_bytes(frame[34:38], "big") != sessions.ipv4[slot]:
        return Up.SPOOFED_IP
    if frame[30] <= 1:
        return Up.TTL_EXCEEDED
    return Up.FORWARD


def _decap(buf: U8, n: int, h: int, eth: U8) -> None:
    """Rows 0..n: Ethernet header over bytes h+8..h+22; TTL (h+30) - 1, checksum updated."""
    buf[:n, h + 8 : h + 22] = eth
    _hop(buf, n, h + 30)


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
    if batch.headroom < ENCAP_LEN - ETH_LEN:
        raise ValueError("downstream needs 8 bytes of headroom")  # our misuse, not the peer's
    h = batch.headroom
    w0, w1, w2, w3, w4 = _words(batch)
    length = batch.lengths[:n].astype(np.uint64)
    to_us = (w0 >> _16) == _k(core_mac)
    ihl4 = (w1 >> _6) & _IHL4
    total = w2 >> _48
    ttl_ok = (w2 & _FF00) > _0100
    slot = sessions.ip_slot[sessions.groups.lookup_ips(((w3 & _FFFF) << _16) | (w4 >> _48))]
    header_ok = (w1 & _HIGH20) == _ET_IPV4_VER  # ethertype 0x0800 and IP version 4
    length_ok = (ihl4 >= _20) & (total >= ihl4) & (total + _14 <= length)
    size_ok = total <= _k(mru)
    known = slot >= _I32_0
    ok = to_us & header_ok & length_ok & size_ok & ttl_ok & known
    misses = n - int(np.count_nonzero(ok))
    if misses == 0:
        stats[Down.FORWARD] += n
        _encap(buf, n, h, sessions.encap[slot], total)
        tx = TxBatch(buf, scratch.rows(n), scratch.const(h - 8, n), total + _22)
        ones = scratch.ones(n)
        _count(sessions.down_packets, sessions.down_bytes, sessions.dirty, slot, total, ones)
        return tx, []

    if misses <= per_frame_limit:
        verdict = np.zeros(n, dtype=np.int64)  # Down.FORWARD
        own = core_mac.to_bytes(6, "big")
        for i in (~ok).nonzero()[0].tolist():
            frame = buf[i, h : h + _PEEK].tobytes()
            verdict[i] = classify_core(frame, int(batch.lengths[i]), sessions, own, mru)
    else:
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
        verdict = _first_match(n, checks, Down.FORWARD)
    stats += np.bincount(verdict, minlength=len(Down))
    _charge_drops(sessions, slot, verdict, Down.TTL_EXCEEDED, scratch)
    arp = _copies(batch, _rows_with(verdict, Down.ARP))
    fwd = _rows_with(verdict, Down.FORWARD)
    if not len(fwd):
        return TxBatch(buf), arp
    _encap(buf, n, h, sessions.encap[slot], total)  # every row, as upstream
    total, slot = total[fwd], slot[fwd]
    tx = TxBatch(buf, fwd, scratch.const(h - 8, len(fwd)), total + _22)
    ones = scratch.ones(len(fwd))
    _count(sessions.down_packets, sessions.down_bytes, sessions.dirty, slot, total, ones)
    return tx, arp


def classify_core(
    frame: bytes, length: int, sessions: SessionTable, core_mac: bytes, mru: int
) -> Down:
    """One frame's :class:`Down` verdict from its first 34 bytes (or all of a shorter
    frame): the same checks and precedence as the batch."""
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
    if total > mru:
        return Down.TOO_BIG
    return Down.FORWARD


def _encap(buf: U8, n: int, h: int, header: U8, total: U64) -> None:
    """Rows 0..n: 22-byte header at h-8..h+14 with PPPoE LENGTH = IP length + 2; TTL (h+22)
    - 1 and checksum (h+24) updated."""
    buf[:n, h - 8 : h + ETH_LEN] = header
    payload = total + _2
    buf[:n, h + 10] = payload >> _8
    buf[:n, h + 11] = payload
    _hop(buf, n, h + 22)
