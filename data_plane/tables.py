"""The worker's session and group tables, laid out for batch lookups.

Theory of operation
-------------------
Every session lives at a *slot*. Two regions share the slot numbers:

* PPPoE: ``group_slot << 16 | pppoe_session_id``, slots ``0 .. docsis_base - 1``;
* DOCSIS: ``docsis_base + (group_slot << 14 | sid)`` with ``docsis_base = (max_groups + 1)
  << 16`` (SIDs have 14 bits, 1..0x3FFF; SID 0 is never installed).

So a PPPoE session id and a SID of the same number in one group are two slots, and
``slot >= docsis_base`` tells a slot's access type. The per-session state the fast path
needs is one numpy array per field indexed by slot over both regions (valid flag, client
MAC — the CM's for DOCSIS — as a 48-bit integer, the CPE MAC, IPv4 address, a 22-byte PPPoE
downstream header template, cumulative counters, and a :class:`~data_plane.qos.TokenBuckets`
per direction), so a batch of frames is looked up with one gather per field. The 34-byte
DOCSIS downstream header template (carrier, MAC header, PDU Ethernet header) exists only for
the DOCSIS region: :attr:`SessionTable.docsis_encap` is indexed by ``slot - docsis_base``.
The session key → slot ``dict`` is only touched when the CP installs, modifies or removes a
rule.

Group slots ``0 .. max_groups-1`` hold the assigned subscriber groups (one more, never
valid, backs the lookups of a worker that holds none). Upstream, the destination MAC finds
the group by one comparison (one group) or a ``searchsorted`` over the sorted virtual MACs;
frames for none of our groups still get *some* valid slot, so the fast path gathers first
and masks after. The lookup gives the PPPoE base ``group_slot << 16``; the DOCSIS base of the
same group is ``docsis_base + (base >> 2)``. Downstream, the destination IPv4 finds its pool
by a ``searchsorted`` over the sorted pool bases (one subtraction with one group) and its
session through one flat ``int32`` array over all pools, each pool followed by a gap entry:
slot (of either region), :data:`NO_SESSION` (in a pool, no session) or :data:`NO_ROUTE` (a
gap: in no pool).

QoS (``SessionRule.qos``) configures the slot's buckets when a rule is placed: a MODIFY
keeps the counters and the tokens (clamped to the new depth), a session that changes slot
takes its buckets along, a removed one leaves its slot's buckets cleared.

The arrays are allocated once with ``np.zeros`` (pages are committed lazily, so a 16-group
table costs memory only for the slots in use). CP mistakes are answered with
``RuleResult(ok=False, error=...)``, never exceptions; only an impossible group assignment
(our own configuration) raises.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from data_plane.qos import TokenBuckets
from vnf.errors import ConfigError, Overloaded
from vnf.model.addresses import is_unicast_mac
from vnf.model.group import SubscriberGroup
from vnf.model.session import AccessType, RuleOp, RuleResult, SessionRule, Usage

SESSION_BITS = 16
# RFC 2516 §4: SESSION_ID 0x0000 is the discovery stage's; 0xFFFF is reserved.
MIN_SESSION_ID = 0x0001
MAX_SESSION_ID = 0xFFFE
ENCAP_LEN = 22
"""Ethernet (14) + PPPoE (6) + PPP protocol (2), the downstream header."""
SID_BITS = 14
# CM-SP-MULPIv3.1 §6.2.5: a SID has 14 bits; SID 0 is no modem's.
MIN_SID = 0x0001
MAX_SID = 0x3FFF
DOCSIS_ENCAP_LEN = 34
"""Carrier Ethernet (14) + MAC header without EHDR (6) + the PDU's Ethernet header (14)."""
ETHERTYPE_PPPOE_SESSION = 0x8864
ETHERTYPE_DOCSIS = 0x88B6
"""The carrier of DOCSIS MAC frames on the access link (vnf.codec.docsis)."""
ETHERTYPE_IPV4 = 0x0800
PPPOE_VER_TYPE = 0x11
PPP_IPV4 = 0x0021
NO_KEY = 0xFFFF_FFFF_FFFF_FFFF
NO_SESSION = -1
"""``SessionTable.ip_slot`` entry: an address of one of our pools without a session."""
NO_ROUTE = -2
"""``SessionTable.ip_slot`` entry: an address in none of our pools."""

U8 = npt.NDArray[np.uint8]
U32 = npt.NDArray[np.uint32]
U64 = npt.NDArray[np.uint64]
I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
Bool = npt.NDArray[np.bool_]


def mac_to_int(mac: bytes) -> int:
    return int.from_bytes(mac, "big")


class RuleError:
    """The ``error`` strings of a failed :class:`RuleResult` (stable, snake_case)."""

    UNKNOWN_GROUP = "unknown_group"
    BAD_SESSION_ID = "bad_session_id"
    BAD_SID = "bad_sid"
    BAD_CLIENT_MAC = "bad_client_mac"
    BAD_CPE_MAC = "bad_cpe_mac"
    AC_MAC_MISMATCH = "ac_mac_mismatch"
    UNSUPPORTED_ACCESS = "unsupported_access"
    IP_OUTSIDE_POOL = "ip_outside_pool"
    IP_TAKEN = "ip_taken"
    SLOT_TAKEN = "slot_taken"
    UNKNOWN_SESSION_KEY = "unknown_session_key"
    BAD_OP = "bad_op"


@dataclass(frozen=True, slots=True)
class GroupPlan:
    """A validated group assignment, not yet applied (see :meth:`GroupTable.plan`)."""

    slots: dict[int, int]
    """group id → slot after the change."""
    groups: tuple[SubscriberGroup, ...]
    removed_slots: frozenset[int]
    """Slots whose group leaves or changes: their sessions go."""
    prepared: frozenset[int] = frozenset()
    """Group ids held but not served (make-before-break, hot standby): see GroupTable."""


class GroupTable:
    """The subscriber groups this worker holds, one slot each.

    A *prepared* group (held for a make-before-break move, or by a hot standby) has its
    slot and accepts session rules, but the lookups do not see it: frames to its virtual
    MAC are not ours, addresses of its pool have no route. Claiming it (a new plan without
    it in ``prepared``) keeps its slot and sessions and makes it visible."""

    def __init__(self, max_groups: int = 16, max_pool_addresses: int = 1 << 20) -> None:
        if not 1 <= max_groups <= 256:
            raise ConfigError("max_groups", "must be between 1 and 256")
        self.max_groups = max_groups
        self.max_pool_addresses = max_pool_addresses
        self.dummy_slot = max_groups
        """The group slot of frames for no group of ours (never holds a session)."""
        self._by_slot: list[SubscriberGroup | None] = [None] * max_groups
        self._slot_of: dict[int, int] = {}
        self._prepared: frozenset[int] = frozenset()
        self._pool_start = [0] * max_groups
        self._rebuild()

    # ---- the CP's view --------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._slot_of)

    def __iter__(self) -> Iterator[SubscriberGroup]:
        return (g for g in self._by_slot if g is not None)

    @property
    def prepared(self) -> frozenset[int]:
        """Ids of the groups held and not served."""
        return self._prepared

    @property
    def serving(self) -> int:
        """Groups held and not prepared: those whose frames this worker forwards."""
        return len(self._slot_of) - len(self._prepared)

    def served_ids(self) -> list[int]:
        return sorted(g for g in self._slot_of if g not in self._prepared)

    def slot_of(self, group_id: int) -> int | None:
        return self._slot_of.get(group_id)

    def group_at(self, slot: int) -> SubscriberGroup | None:
        return self._by_slot[slot] if 0 <= slot < self.max_groups else None

    def plan(self, groups: Sequence[SubscriberGroup], prepared: Iterable[int] = ()) -> GroupPlan:
        """Validate ``groups`` as the complete new assignment (``prepared``: the ids of
        those only held, not served); raise before changing anything.

        Groups that stay (same id, MAC and pool) keep their slot, so their sessions stay put.
        """
        if len(groups) > self.max_groups:
            raise Overloaded(f"{len(groups)} groups assigned, this worker holds {self.max_groups}")
        ids = [g.group_id for g in groups]
        if len(set(ids)) != len(ids):
            raise ConfigError("groups", "a group id appears twice")
        macs = [g.virtual_mac for g in groups]
        if len(set(macs)) != len(macs):
            raise ConfigError("groups", "a virtual MAC appears twice")
        for g in groups:
            if not is_unicast_mac(g.virtual_mac):
                raise ConfigError(f"groups[{g.group_id}].virtual_mac", "not a unicast MAC")
            if g.pool.num_addresses > self.max_pool_addresses:
                raise ConfigError(f"groups[{g.group_id}].pool", "pool larger than allowed")
        by_base = sorted(groups, key=lambda g: int(g.pool.network_address))
        for a, b in itertools.pairwise(by_base):
            if a.pool.overlaps(b.pool):
                raise ConfigError(
                    "groups", f"pools of groups {a.group_id} and {b.group_id} overlap"
                )
        keep: dict[int, int] = {}
        for g in groups:
            slot = self._slot_of.get(g.group_id)
            if slot is not None and self._by_slot[slot] == g:
                keep[g.group_id] = slot
        removed = frozenset(s for s in self._slot_of.values() if s not in keep.values())
        free = iter(s for s in range(self.max_groups) if s not in keep.values())
        slots = {g.group_id: keep[g.group_id] if g.group_id in keep else next(free) for g in groups}
        held = frozenset(prepared) & frozenset(ids)
        return GroupPlan(slots, tuple(groups), removed, held)

    def commit(self, plan: GroupPlan) -> None:
        self._by_slot = [None] * self.max_groups
        for g in plan.groups:
            self._by_slot[plan.slots[g.group_id]] = g
        self._slot_of = dict(plan.slots)
        self._prepared = plan.prepared
        self._rebuild()

    # ---- pool geometry ---------------------------------------------------------------------
    @property
    def flat_size(self) -> int:
        """Entries of the flat address space: every pool's addresses, each pool followed by
        one gap entry (an address past the pool lands there), plus one final gap."""
        return self._flat_size

    def pool_ranges(self) -> list[tuple[int, int]]:
        """(start, size) of every pool in the flat address space."""
        return [
            (self._pool_start[s], g.pool.num_addresses)
            for s, g in enumerate(self._by_slot)
            if g is not None
        ]

    def pool_index(self, group_slot: int, ip: int) -> int | None:
        """Flat index of ``ip`` inside the pool of ``group_slot`` (None: outside it)."""
        g = self.group_at(group_slot)
        if g is None:
            return None
        off = ip - int(g.pool.network_address)
        if not 0 <= off < g.pool.num_addresses:
            return None
        return self._pool_start[group_slot] + off

    def _rebuild(self) -> None:
        # Lookups see only the served groups; the flat layout covers every held one.
        seen = [
            g if g is not None and g.group_id not in self._prepared else None for g in self._by_slot
        ]
        # MAC lookup: sorted keys with a sentinel above every 48-bit MAC, so searchsorted
        # always lands on a valid index and the miss test is one comparison.
        live = sorted((mac_to_int(g.virtual_mac), s) for s, g in enumerate(seen) if g)
        self.mac_keys: U64 = np.array([k for k, _ in live] + [NO_KEY], dtype=np.uint64)
        self.mac_bases: I64 = np.array(
            [s << SESSION_BITS for _, s in live] + [self.dummy_slot << SESSION_BITS],
            dtype=np.int64,
        )
        self.slot_by_mac: dict[bytes, int] = {
            g.virtual_mac: s for s, g in enumerate(seen) if g is not None
        }
        """Virtual MAC → group slot (per-frame exception handling)."""
        self._mac_key0 = np.array(self.mac_keys[0])
        self._mac_base0 = np.array(self.mac_bases[0])
        # Pool lookup: pools laid out one after the other, each followed by a gap entry, and
        # a final gap that a zero-size sentinel pool at address 0 points to. Every address
        # then finds its entry with ``start + min(address - base, size)``: inside its pool,
        # or a gap when it is in none.
        starts, total = [0] * self.max_groups, 0
        for s, g in enumerate(self._by_slot):
            if g is not None:
                starts[s], total = total, total + g.pool.num_addresses + 1
        self._pool_start, self._flat_size = starts, total + 1
        pools = sorted(
            (int(g.pool.network_address), g.pool.num_addresses, starts[s])
            for s, g in enumerate(seen)
            if g is not None
        )
        pools.insert(0, (0, 0, total))
        self._pools = pools
        self._pool_bases_list = [p[0] for p in pools]
        self._pool_bases: U64 = np.array([p[0] for p in pools], dtype=np.uint64)
        self._pool_sizes: U64 = np.array([p[1] for p in pools], dtype=np.uint64)
        self._pool_starts: U64 = np.array([p[2] for p in pools], dtype=np.uint64)
        self._single_pool = len(pools) == 2  # then its start is 0
        self._pool_base0 = np.array(pools[-1][0], dtype=np.uint64)
        self._pool_size0 = np.array(pools[-1][1], dtype=np.uint64)

    def flat_index(self, ip: int) -> int:
        """:meth:`lookup_ips` for one address (per-frame exception handling)."""
        base, size, start = self._pools[bisect.bisect_right(self._pool_bases_list, ip) - 1]
        return start + min(ip - base, size)

    # ---- vectorized lookups (fast path) ----------------------------------------------------
    def lookup_macs(self, macs: U64) -> tuple[I64, Bool]:
        """Per destination MAC (48-bit): the session-slot base of its group, and whether it is
        one of our groups' at all. Where it is not, the base is *some* valid base (the dummy
        group's or another group's): callers mask with the second array."""
        if len(self.mac_keys) <= 2:  # one group (or none) and the sentinel: one comparison
            return self._mac_base0, macs == self._mac_key0
        idx = np.searchsorted(self.mac_keys, macs)
        return self.mac_bases[idx], self.mac_keys[idx] == macs

    def lookup_ips(self, ips: U64) -> npt.NDArray[np.intp]:
        """Per IPv4 address: its flat index (a gap entry when the address is in no pool)."""
        index: U64
        if self._single_pool:
            index = np.minimum(ips - self._pool_base0, self._pool_size0)
        else:
            c = np.searchsorted(self._pool_bases, ips, side="right") - 1
            index = self._pool_starts[c] + np.minimum(
                ips - self._pool_bases[c], self._pool_sizes[c]
            )
        return index.astype(np.intp)


class SessionTable:
    """Session rules of one worker as slot-indexed numpy arrays (see the module docstring)."""

    def __init__(self, groups: GroupTable) -> None:
        self.groups = groups
        self.docsis_base = (groups.max_groups + 1) << SESSION_BITS
        """The first slot of the DOCSIS region (see the module docstring)."""
        docsis_size = (groups.max_groups + 1) << SID_BITS
        size = self.docsis_base + docsis_size
        self.valid: Bool = np.zeros(size, dtype=bool)
        self.client_mac: U64 = np.zeros(size, dtype=np.uint64)
        """The PPPoE client's MAC; the cable modem's for DOCSIS."""
        self.cpe_mac: U64 = np.zeros(size, dtype=np.uint64)
        """DOCSIS: the MAC of the CPE behind the modem (0 for PPPoE)."""
        self.ipv4: U32 = np.zeros(size, dtype=np.uint32)
        self.encap: U8 = np.zeros((size, ENCAP_LEN), dtype=np.uint8)
        self.docsis_encap: U8 = np.zeros((docsis_size, DOCSIS_ENCAP_LEN), dtype=np.uint8)
        """Indexed by ``slot - docsis_base``: carrier [CM MAC, group MAC, 0x88B6], MAC header
        [FC 0, MAC_PARM 0, LEN and HCS set per packet], PDU [CPE MAC, group MAC, 0x0800]."""
        self.keys: U64 = np.zeros(size, dtype=np.uint64)
        self.up_packets: U64 = np.zeros(size, dtype=np.uint64)
        self.up_bytes: U64 = np.zeros(size, dtype=np.uint64)
        self.down_packets: U64 = np.zeros(size, dtype=np.uint64)
        self.down_bytes: U64 = np.zeros(size, dtype=np.uint64)
        self.dropped: U64 = np.zeros(size, dtype=np.uint64)
        self.dirty: Bool = np.zeros(size, dtype=bool)
        """Counters changed since the last usage report."""
        self.qos_up = TokenBuckets(size)
        self.qos_down = TokenBuckets(size)
        self.docsis_sessions = 0
        """Sessions in the DOCSIS region: with none, downstream skips looking for them."""
        self.ip_slot: I32 = self._empty_ip_slots()
        """Flat address index → slot, :data:`NO_SESSION` or (gap entries) :data:`NO_ROUTE`."""
        self._slot_of_key: dict[int, int] = {}
        self._rules: dict[int, SessionRule] = {}
        self._pool_index: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self._slot_of_key)

    def __contains__(self, key: object) -> bool:
        return key in self._slot_of_key

    def session_keys(self) -> list[int]:
        return list(self._slot_of_key)

    def rule(self, key: int) -> SessionRule | None:
        return self._rules.get(key)

    def slot_of(self, key: int) -> int | None:
        return self._slot_of_key.get(key)

    # ---- rules ------------------------------------------------------------------------------
    def apply(self, rules: Iterable[SessionRule]) -> tuple[list[RuleResult], list[Usage]]:
        """Apply rules in order; each succeeds or fails on its own. Removes give final usage."""
        results: list[RuleResult] = []
        final: list[Usage] = []
        for rule in rules:
            if rule.op is RuleOp.REMOVE:
                result, usage = self.remove(rule.session_key)
                if usage is not None:
                    final.append(usage)
            elif rule.op is RuleOp.INSTALL:
                result = self.install(rule)
            elif rule.op is RuleOp.MODIFY:
                result = self.modify(rule)
            else:
                result = RuleResult(rule.session_key, False, RuleError.BAD_OP)
            results.append(result)
        return results, final

    def install(self, rule: SessionRule) -> RuleResult:
        """Install a session. Installing a key we hold again updates it in place (a CP that
        replays its rules after a switchover must not lose counters); the same rule again
        changes nothing and costs one comparison (a replayed full set must not stall the
        fast path that shares this thread)."""
        if self._rules.get(rule.session_key) == rule:
            return RuleResult(rule.session_key, True)
        return self._place(rule)

    def modify(self, rule: SessionRule) -> RuleResult:
        """Change a session's endpoint, address or QoS; counters follow it."""
        if rule.session_key not in self._slot_of_key:
            return RuleResult(rule.session_key, False, RuleError.UNKNOWN_SESSION_KEY)
        return self._place(rule)

    def remove(self, key: int) -> tuple[RuleResult, Usage | None]:
        slot = self._slot_of_key.get(key)
        if slot is None:
            return RuleResult(key, False, RuleError.UNKNOWN_SESSION_KEY), None
        usage = self._usage_at(slot)
        self._clear(key, slot)
        return RuleResult(key, True), usage

    def docsis_slot(self, group_slot: int, sid: int) -> int:
        """The slot of ``sid`` of the group at ``group_slot`` (``sid`` within 14 bits)."""
        return self.docsis_base + (group_slot << SID_BITS | sid)

    def _check(self, rule: SessionRule) -> tuple[int, int] | str:
        """(slot, flat pool index) for ``rule``, or the error string."""
        ep = rule.endpoint
        if ep.access not in (AccessType.PPPOE, AccessType.DOCSIS):
            return RuleError.UNSUPPORTED_ACCESS
        gslot = self.groups.slot_of(rule.group)
        group = self.groups.group_at(gslot) if gslot is not None else None
        if gslot is None or group is None:
            return RuleError.UNKNOWN_GROUP
        if ep.access is AccessType.DOCSIS:
            if not MIN_SID <= ep.cm_sid <= MAX_SID:
                return RuleError.BAD_SID
            slot = self.docsis_slot(gslot, ep.cm_sid)
        else:
            if not MIN_SESSION_ID <= ep.pppoe_session_id <= MAX_SESSION_ID:
                return RuleError.BAD_SESSION_ID
            slot = (gslot << SESSION_BITS) | ep.pppoe_session_id
        if not is_unicast_mac(ep.client_mac):
            return RuleError.BAD_CLIENT_MAC
        if ep.access is AccessType.DOCSIS and not is_unicast_mac(ep.cpe_mac):
            return RuleError.BAD_CPE_MAC
        if ep.ac_mac != group.virtual_mac:
            return RuleError.AC_MAC_MISMATCH
        index = self.groups.pool_index(gslot, rule.ipv4)
        if index is None:
            return RuleError.IP_OUTSIDE_POOL
        old = self._slot_of_key.get(rule.session_key)
        if self.valid[slot] and slot != old:
            return RuleError.SLOT_TAKEN
        holder = int(self.ip_slot[index])
        if holder != NO_SESSION and holder != old:
            return RuleError.IP_TAKEN
        return slot, index

    def _place(self, rule: SessionRule) -> RuleResult:
        key = rule.session_key
        checked = self._check(rule)
        if isinstance(checked, str):
            return RuleResult(key, False, checked)
        slot, index = checked
        old = self._slot_of_key.get(key)
        if old is not None:
            self.ip_slot[self._pool_index[key]] = NO_SESSION
            if old != slot:
                for counter in self._counter_arrays():
                    counter[slot], counter[old] = counter[old], 0
                self.dirty[slot], self.dirty[old] = self.dirty[old], False
                self.qos_up.move(old, slot)
                self.qos_down.move(old, slot)
                self._vacate(old)
        ep = rule.endpoint
        group = self.groups.group_at(self._group_slot(slot))
        assert group is not None  # _check found it
        if not self.valid[slot]:
            self.docsis_sessions += slot >= self.docsis_base
        self.valid[slot] = True
        self.keys[slot] = key
        self.client_mac[slot] = mac_to_int(ep.client_mac)
        self.ipv4[slot] = rule.ipv4
        if slot >= self.docsis_base:
            self.cpe_mac[slot] = mac_to_int(ep.cpe_mac)
            self.encap[slot] = 0
            self.docsis_encap[slot - self.docsis_base] = np.frombuffer(
                ep.client_mac
                + group.virtual_mac
                + ETHERTYPE_DOCSIS.to_bytes(2, "big")
                + bytes(6)  # FC 0 (Packet PDU), MAC_PARM 0, LEN and HCS set per packet
                + ep.cpe_mac
                + group.virtual_mac
                + ETHERTYPE_IPV4.to_bytes(2, "big"),
                dtype=np.uint8,
            )
        else:
            self.cpe_mac[slot] = 0
            self.encap[slot] = np.frombuffer(
                ep.client_mac
                + group.virtual_mac
                + ETHERTYPE_PPPOE_SESSION.to_bytes(2, "big")
                + bytes((PPPOE_VER_TYPE, 0))
                + ep.pppoe_session_id.to_bytes(2, "big")
                + b"\x00\x00"  # PPPoE LENGTH, set per packet
                + PPP_IPV4.to_bytes(2, "big"),
                dtype=np.uint8,
            )
        qos = rule.qos
        self.qos_up.configure(slot, qos.up_kbps, qos.burst_bytes)
        self.qos_down.configure(slot, qos.down_kbps, qos.burst_bytes)
        self.ip_slot[index] = slot
        self._slot_of_key[key] = slot
        self._rules[key] = rule
        self._pool_index[key] = index
        return RuleResult(key, True)

    def _group_slot(self, slot: int) -> int:
        if slot >= self.docsis_base:
            return (slot - self.docsis_base) >> SID_BITS
        return slot >> SESSION_BITS

    def _vacate(self, slot: int) -> None:
        """``slot`` holds no session any more (its counters are moved or cleared)."""
        if self.valid[slot]:
            self.docsis_sessions -= slot >= self.docsis_base
        self.valid[slot] = False
        self.keys[slot] = 0
        self.client_mac[slot] = self.cpe_mac[slot] = 0
        self.qos_up.clear(slot)
        self.qos_down.clear(slot)

    def _clear(self, key: int, slot: int) -> None:
        self.ip_slot[self._pool_index.pop(key)] = NO_SESSION
        del self._slot_of_key[key]
        del self._rules[key]
        self._vacate(slot)
        self.dirty[slot] = False
        for counter in self._counter_arrays():
            counter[slot] = 0

    def _empty_ip_slots(self) -> I32:
        table = np.full(self.groups.flat_size, NO_ROUTE, dtype=np.int32)
        for start, size in self.groups.pool_ranges():
            table[start : start + size] = NO_SESSION
        return table

    def _counter_arrays(self) -> tuple[U64, ...]:
        return (self.up_packets, self.up_bytes, self.down_packets, self.down_bytes, self.dropped)

    # ---- groups -----------------------------------------------------------------------------
    def assign_groups(
        self, groups: Sequence[SubscriberGroup], prepared: Iterable[int] = ()
    ) -> list[Usage]:
        """Hold exactly ``groups`` from now on, serving those not in ``prepared``. Sessions
        of groups that leave (or change MAC or pool) are removed; their final usage is
        returned. Raises ConfigError/Overloaded for an impossible assignment, before
        changing anything."""
        plan = self.groups.plan(groups, prepared)
        final: list[Usage] = []
        for key, slot in list(self._slot_of_key.items()):
            if self._group_slot(slot) in plan.removed_slots:
                final.append(self._usage_at(slot))
                self._clear(key, slot)
        self.groups.commit(plan)
        # Pool offsets moved: rebuild the flat address → slot array from the rules.
        self.ip_slot = self._empty_ip_slots()
        for key, slot in self._slot_of_key.items():
            index = self.groups.pool_index(self._group_slot(slot), self._rules[key].ipv4)
            assert index is not None  # the group and its pool are unchanged
            self._pool_index[key] = index
            self.ip_slot[index] = slot
        return final

    # ---- usage ------------------------------------------------------------------------------
    def usage(self, changed_only: bool = True) -> list[Usage]:
        """Cumulative counters of the sessions whose counters changed since the last call
        (all sessions with ``changed_only=False``); either way the change marks reset."""
        return self.usage_columns(changed_only).usages()

    def usage_columns(self, changed_only: bool = True) -> UsageColumns:
        """:meth:`usage` as copied columns: a few vectorized copies, so the thread that owns
        the table pays little and another thread builds the reports."""
        slots = np.flatnonzero(self.dirty if changed_only else self.valid)
        self.dirty[slots] = False
        return self._columns(slots)

    def usage_of(self, key: int) -> Usage | None:
        slot = self._slot_of_key.get(key)
        return None if slot is None else self._usage_at(slot)

    def _usage_at(self, slot: int) -> Usage:
        return self._usages(np.array([slot], dtype=np.int64))[0]

    def _usages(self, slots: npt.NDArray[np.intp] | I64) -> list[Usage]:
        return self._columns(slots).usages()

    def _columns(self, slots: npt.NDArray[np.intp] | I64) -> UsageColumns:
        arrays = (self.keys, self.up_packets, self.up_bytes, self.down_packets, self.down_bytes)
        return UsageColumns(tuple(a[slots] for a in (*arrays, self.dropped)))


@dataclass(frozen=True, slots=True)
class UsageColumns:
    """Usage of some sessions as arrays: keys, up packets/bytes, down packets/bytes, dropped."""

    columns: tuple[U64, ...]

    def __len__(self) -> int:
        return len(self.columns[0])

    def usages(self) -> list[Usage]:
        lists = [c.tolist() for c in self.columns]
        return [Usage(*row) for row in zip(*lists, strict=True)]
