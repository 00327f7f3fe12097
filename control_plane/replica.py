"""The replicated state of the control plane pair, and the one reducer that changes it.

Theory of operation
-------------------
The active CP never changes what a standby must know directly: it describes the change as a
:data:`Change` and applies it with :meth:`ReplicaState.apply`, the reducer. The same change
goes to the standby over the replication stream (``vnf/api/replication.proto``), which
applies it with the same reducer. So the standby's :class:`ReplicaState` is, change for
change, the active's: the established sessions (:class:`SessionRecord`), which DP serves
each subscriber group, the epoch, the session keys already used, the subscriber store, and
the accounting records (which the standby also writes to its own store).

What is *not* replicated is what a takeover can do without: sessions still negotiating
(their subscribers retry; the new active answers their stray frames with PADT), PPP timers
and identifiers, usage counters between interim updates (the DPs keep cumulative counters
and report them again to the new active).

A standby that connects late gets :meth:`ReplicaState.snapshot` (the whole state as a list
of changes) and then the changes that follow. Sequence numbers count changes; the standby
acknowledges the last one it applied.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vnf.model.accounting import AccountingRecord
from vnf.model.cable import ProvisionedModem
from vnf.model.subscriber import Subscriber

Counts = tuple[int, int, int, int]  # up packets, up bytes, down packets, down bytes
ZERO: Counts = (0, 0, 0, 0)


def add_counts(a: Counts, b: Counts) -> Counts:
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3])


def sub_counts(a: Counts, b: Counts) -> Counts:
    return (a[0] - b[0], a[1] - b[1], a[2] - b[2], a[3] - b[3])


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """An established (or being installed) session, as a takeover needs it."""

    key: int
    group: int
    sid: int
    client_mac: bytes
    host_uniq: bytes | None
    username: str
    auth: str  # "pap" / "chap"
    ipv4: int
    acct_id: str
    active: bool  # a DP acknowledged its rule
    started: bool  # accounting start written
    up_wall: float
    interim_wall: float
    base: Counts  # counted by DPs that served the session before the current one
    usage: Counts  # last known total (base included)
    magic: int
    peer_magic: int
    peer_mru: int


@dataclass(frozen=True, slots=True)
class ModemRecord:
    """A registered cable modem (and its CPE, once addressed), as a takeover needs it."""

    key: int
    group: int
    sid: int
    cm_mac: bytes
    cpe_mac: bytes  # empty until the CPE has its address
    ipv4: int
    acct_id: str
    active: bool
    started: bool
    up_wall: float
    interim_wall: float
    base: Counts
    usage: Counts
    service_class: str
    online_wall: float
    reg_timestamp: int  # the accepted config timestamp (replay check after a takeover)


@dataclass(frozen=True, slots=True)
class SessionUpsert:
    record: SessionRecord | ModemRecord


@dataclass(frozen=True, slots=True)
class SessionClosed:
    key: int


@dataclass(frozen=True, slots=True)
class GroupPlaced:
    group_id: int
    dp: str


@dataclass(frozen=True, slots=True)
class EpochSet:
    epoch: int


@dataclass(frozen=True, slots=True)
class AccountingWritten:
    record: AccountingRecord


@dataclass(frozen=True, slots=True)
class KeysUsed:
    next_key: int


@dataclass(frozen=True, slots=True)
class SubscriberPut:
    subscriber: Subscriber


@dataclass(frozen=True, slots=True)
class SubscriberRemoved:
    username: str


@dataclass(frozen=True, slots=True)
class ModemPut:
    modem: ProvisionedModem


@dataclass(frozen=True, slots=True)
class ModemRemoved:
    mac: bytes


Change = (
    SessionUpsert
    | SessionClosed
    | GroupPlaced
    | EpochSet
    | AccountingWritten
    | KeysUsed
    | SubscriberPut
    | SubscriberRemoved
    | ModemPut
    | ModemRemoved
)


@dataclass(slots=True)
class ReplicaState:
    """What both CPs of the pair agree on (see the module docstring)."""

    sessions: dict[int, SessionRecord | ModemRecord] = field(default_factory=dict)
    placement: dict[int, str] = field(default_factory=dict)
    # Subscribers changed at run time (the lab seeds both stores alike): None = removed.
    subscribers: dict[str, Subscriber | None] = field(default_factory=dict)
    modems: dict[bytes, ProvisionedModem | None] = field(default_factory=dict)  # likewise
    epoch: int = 0
    next_key: int = 1
    seq: int = 0  # changes applied

    def apply(self, change: Change) -> None:
        """The reducer: every replicated change goes through here, on both CPs."""
        self.seq += 1
        if isinstance(change, SessionUpsert):
            self.sessions[change.record.key] = change.record
            if change.record.key >= self.next_key:
                self.next_key = change.record.key + 1
        elif isinstance(change, SessionClosed):
            self.sessions.pop(change.key, None)
        elif isinstance(change, GroupPlaced):
            self.placement[change.group_id] = change.dp
        elif isinstance(change, EpochSet):
            self.epoch = max(self.epoch, change.epoch)
        elif isinstance(change, KeysUsed):
            self.next_key = max(self.next_key, change.next_key)
        elif isinstance(change, SubscriberPut):
            self.subscribers[change.subscriber.username] = change.subscriber
        elif isinstance(change, SubscriberRemoved):
            self.subscribers[change.username] = None
        elif isinstance(change, ModemPut):
            self.modems[change.modem.mac] = change.modem
        elif isinstance(change, ModemRemoved):
            self.modems[change.mac] = None
        # AccountingWritten changes no state here: the adapter writes it to the store.

    def snapshot(self) -> list[Change]:
        """The whole state as changes that rebuild it from empty, in a safe order."""
        out: list[Change] = [EpochSet(self.epoch), KeysUsed(self.next_key)]
        for name, sub in self.subscribers.items():
            out.append(SubscriberPut(sub) if sub is not None else SubscriberRemoved(name))
        for mac, modem in self.modems.items():
            out.append(ModemPut(modem) if modem is not None else ModemRemoved(mac))
        out.extend(GroupPlaced(g, dp) for g, dp in sorted(self.placement.items()))
        out.extend(SessionUpsert(r) for r in self.sessions.values())
        return out

    def reset(self) -> None:
        """Forget everything (before a snapshot is applied)."""
        self.sessions.clear()
        self.placement.clear()
        self.subscribers.clear()
        self.modems.clear()
        self.epoch = 0
        self.next_key = 1


__all__ = [
    "ZERO",
    "AccountingWritten",
    "Change",
    "Counts",
    "EpochSet",
    "GroupPlaced",
    "KeysUsed",
    "ModemPut",
    "ModemRecord",
    "ModemRemoved",
    "ReplicaState",
    "SessionClosed",
    "SessionRecord",
    "SessionUpsert",
    "SubscriberPut",
    "SubscriberRemoved",
    "add_counts",
    "sub_counts",
]
