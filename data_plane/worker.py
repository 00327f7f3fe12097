"""The data-plane worker core: tables, the batch fast path and the core port's ARP, no I/O.

Theory of operation
-------------------
A :class:`Worker` has an ACCESS port (the PPPoE and cable segment) and a CORE port (plain
IPv4 toward the core router). The owner of the sockets (``data_plane/main.py`` or a test)
receives a batch from a port, hands it to :meth:`Worker.process_access` or
:meth:`Worker.process_core` and sends what comes back: a
:class:`~data_plane.io.base.TxBatch` for the other port (it points into the received batch's
buffer, so send it before receiving into that batch again), control frames for the core port
(ARP), and punts (whole frames, copied) for the CP.

The CP drives it with :meth:`assign_groups` and :meth:`apply_rules` between batches, reads
:meth:`usage` for accounting and :meth:`counters` for metrics. Time only enters through
``now`` in :meth:`arp_request_if_needed`; the owner calls it from its timer.

The core port's next hop is the configured gateway. Its MAC is either configured or learned
from the gateway's ARP requests and replies (RFC 826); while it is unknown the worker asks
for it and upstream packets drop as ``no_next_hop``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from data_plane.fastpath import PER_FRAME_LIMIT, Scratch, downstream, upstream
from data_plane.io.base import RxBatch, TxBatch
from data_plane.tables import GroupTable, SessionTable, UsageColumns, mac_to_int
from data_plane.verdicts import MAX_MRU, Down, Up
from vnf.codec.arp import ArpOp, decode_arp, encode_arp_frame, reply_to, request
from vnf.errors import ConfigError, DecodeError
from vnf.model.addresses import BROADCAST_MAC, is_unicast_mac
from vnf.model.group import SubscriberGroup
from vnf.model.session import RuleResult, SessionRule, Usage

ETHERTYPE_CLAIM = 0x88B5
"""IEEE 802 local experimental ethertype, used for the group claim frame."""
CLAIM_MAGIC = b"vnf-claim"


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """A worker's own settings (MACs as 6 bytes, IPv4 addresses as host-order ints);
    ConfigError on construction when inconsistent."""

    name: str
    core_mac: bytes
    core_ip: int
    core_prefix_len: int
    gateway_ip: int
    """The core next hop: upstream packets leave toward its MAC."""
    max_groups: int = 16
    batch_size: int = 256
    """Frames per receive batch (also sizes the reusable index arrays)."""
    mru: int = MAX_MRU
    """Largest IPv4 packet sent to a subscriber; bigger ones drop as ``too_big``."""
    gateway_mac: bytes | None = None
    """A static next-hop MAC; None to learn it by ARP."""
    arp_retry_s: float = 1.0
    """How often to ask for the gateway's MAC while it is unknown."""
    arp_refresh_s: float = 60.0
    """How often to re-ask (unicast) once it is known, to follow a changed gateway."""
    max_pool_addresses: int = 1 << 20
    per_frame_limit: int = PER_FRAME_LIMIT
    """Frames of a batch that miss the fast gate and are judged one by one; beyond this
    many the whole batch is judged vectorized (0: always vectorized)."""

    def __post_init__(self) -> None:
        if not is_unicast_mac(self.core_mac):
            raise ConfigError("core_mac", "not a unicast MAC")
        if self.gateway_mac is not None and not is_unicast_mac(self.gateway_mac):
            raise ConfigError("gateway_mac", "not a unicast MAC")
        if not 1 <= self.core_prefix_len <= 32:
            raise ConfigError("core_prefix_len", "must be 1..32")
        net = ipaddress.IPv4Network((self.core_ip, self.core_prefix_len), strict=False)
        if ipaddress.IPv4Address(self.gateway_ip) not in net or self.gateway_ip == self.core_ip:
            raise ConfigError("gateway_ip", f"must be another address of {net}")
        if self.batch_size < 1:
            raise ConfigError("batch_size", "must be positive")
        if not 68 <= self.mru <= MAX_MRU:
            raise ConfigError("mru", "must be 68..1492 (RFC 2516 §7)")


@dataclass(slots=True)
class AccessResult:
    to_core: TxBatch
    """Decapsulated IPv4 frames for the CORE port (they point into the received batch)."""
    punts: list[bytes] = field(default_factory=list)
    """Whole frames for the CP: PPPoE discovery, PPP control, DOCSIS MAC management and the
    CPEs' DHCP and ARP."""


@dataclass(slots=True)
class CoreResult:
    to_access: TxBatch
    """PPPoE and DOCSIS frames for the ACCESS port (they point into the received batch)."""
    to_core: list[bytes] = field(default_factory=list)
    """ARP replies to send back on the CORE port."""
    punts: list[bytes] = field(default_factory=list)
    """Frames for the CP; nothing received on the core port needs the CP today."""


class Worker:
    """One data-plane worker (see the module docstring). Not thread-safe."""

    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self.groups = GroupTable(config.max_groups, config.max_pool_addresses)
        self.sessions = SessionTable(self.groups)
        self._scratch = Scratch(config.batch_size)
        self._up_stats = np.zeros(len(Up), dtype=np.int64)
        self._down_stats = np.zeros(len(Down), dtype=np.int64)
        self._arp = {"arp_replied": 0, "arp_learned": 0, "arp_ignored": 0, "drop_down_bad_arp": 0}
        self._core_mac_int = mac_to_int(config.core_mac)
        self._gateway_mac: bytes | None = None
        self._next_hop: npt.NDArray[np.uint8] | None = None
        self._last_arp_request: float | None = None
        if config.gateway_mac is not None:
            self._set_gateway_mac(config.gateway_mac)

    # ---- control ------------------------------------------------------------------------
    def new_batch(self) -> RxBatch:
        """A receive batch sized by the configuration."""
        return RxBatch(self.config.batch_size)

    def assign_groups(
        self, groups: Sequence[SubscriberGroup], prepared: Collection[int] = ()
    ) -> list[Usage]:
        """Hold exactly ``groups``, serving those not in ``prepared`` (held ones accept
        rules but forward and punt nothing). Returns the final usage of sessions removed
        because their group left. Raises ConfigError/Overloaded (nothing changed) when
        impossible."""
        return self.sessions.assign_groups(groups, prepared)

    def apply_rules(self, rules: Sequence[SessionRule]) -> tuple[list[RuleResult], list[Usage]]:
        """Install/modify/remove session rules; returns per-rule results and the final usage
        of removed sessions."""
        return self.sessions.apply(rules)

    @property
    def session_count(self) -> int:
        return len(self.sessions)

    def session_keys(self) -> list[int]:
        """Keys of the installed sessions."""
        return self.sessions.session_keys()

    @property
    def is_standby(self) -> bool:
        """A worker serving no group (it may hold prepared ones): it forwards and punts
        nothing."""
        return self.groups.serving == 0

    @property
    def gateway_mac(self) -> bytes | None:
        return self._gateway_mac

    # ---- the fast path ------------------------------------------------------------------
    def process_access(self, batch: RxBatch) -> AccessResult:
        """Frames from the subscribers: decapsulate, punt control, drop the rest by reason."""
        tx, punts = upstream(
            batch,
            self.sessions,
            self._next_hop,
            self._up_stats,
            self._scratch,
            self.config.per_frame_limit,
        )
        return AccessResult(tx, punts)

    def process_core(self, batch: RxBatch) -> CoreResult:
        """Frames from the core: encapsulate toward the subscribers, answer ARP."""
        cfg = self.config
        tx, arp_frames = downstream(
            batch,
            self.sessions,
            self._core_mac_int,
            cfg.mru,
            self._down_stats,
            self._scratch,
            cfg.per_frame_limit,
        )
        replies = [r for frame in arp_frames if (r := self._handle_arp(frame))]
        return CoreResult(tx, replies)

    # ---- reporting ----------------------------------------------------------------------
    def usage(self, changed_only: bool = True) -> list[Usage]:
        """Cumulative counters of the sessions whose counters changed since the last call
        (every installed session with ``changed_only=False``)."""
        return self.sessions.usage(changed_only)

    def usage_columns(self, changed_only: bool = True) -> UsageColumns:
        """:meth:`usage` as arrays (cheap for the forwarding thread; build the reports
        elsewhere with :meth:`UsageColumns.usages`)."""
        return self.sessions.usage_columns(changed_only)

    def counters(self) -> dict[str, int]:
        """Frames by outcome since start: a fixed set of keys, zeros included."""
        up, down = self._up_stats.tolist(), self._down_stats.tolist()
        out = {
            "rx_access": sum(up),
            "rx_core": sum(down),
            "forwarded_up": up[Up.FORWARD],
            "forwarded_down": down[Down.FORWARD],
            "punted": up[Up.PUNT],
            "arp_in": down[Down.ARP],
        }
        out.update(self._arp)
        for v in Up:
            if v not in (Up.FORWARD, Up.PUNT):
                out[f"drop_up_{v.name.lower()}"] = up[v]
        for d in Down:
            if d not in (Down.FORWARD, Down.ARP):
                out[f"drop_down_{d.name.lower()}"] = down[d]
        return out

    # ---- frames the worker originates ---------------------------------------------------
    def claim_frames(self, group_ids: Collection[int] | None = None) -> list[bytes]:
        """One gratuitous broadcast per group (only those of ``group_ids`` that we hold, when
        given), from its virtual MAC, so the access bridge learns the MAC on our port:
        ethertype 0x88B5, payload ``b"vnf-claim"`` + the group id as 4 bytes, big-endian."""
        return [
            BROADCAST_MAC
            + g.virtual_mac
            + ETHERTYPE_CLAIM.to_bytes(2, "big")
            + CLAIM_MAGIC
            + g.group_id.to_bytes(4, "big")
            for g in sorted(self.groups, key=lambda g: g.group_id)
            if group_ids is None or g.group_id in group_ids
        ]

    def announce_frame(self) -> bytes:
        """A gratuitous ARP request for our core address (RFC 5227 §3 announcement), for the
        core to relearn where our address lives after a takeover."""
        cfg = self.config
        announcement = request(cfg.core_mac, cfg.core_ip, cfg.core_ip)
        return encode_arp_frame(BROADCAST_MAC, cfg.core_mac, announcement)

    def arp_request_if_needed(self, now: float) -> bytes | None:
        """An ARP request for the gateway when one is due: every ``arp_retry_s`` (broadcast)
        while its MAC is unknown, every ``arp_refresh_s`` (unicast) once learned. None with a
        static gateway MAC or when nothing is due."""
        cfg = self.config
        if cfg.gateway_mac is not None:
            return None
        interval = cfg.arp_retry_s if self._gateway_mac is None else cfg.arp_refresh_s
        if self._last_arp_request is not None and now - self._last_arp_request < interval:
            return None
        self._last_arp_request = now
        dst = self._gateway_mac or BROADCAST_MAC
        return encode_arp_frame(
            dst, cfg.core_mac, request(cfg.core_mac, cfg.core_ip, cfg.gateway_ip)
        )

    # ---- ARP (per frame: rare) ----------------------------------------------------------
    def _handle_arp(self, frame: bytes) -> bytes | None:
        cfg = self.config
        try:
            pkt = decode_arp(frame, 14)
        except DecodeError:
            self._arp["drop_down_bad_arp"] += 1
            return None
        # RFC 826: the sender's binding is merged whatever the opcode; we only keep the
        # gateway's. A static gateway MAC is never overridden.
        from_gateway = pkt.sender_ip == cfg.gateway_ip and cfg.gateway_mac is None
        if from_gateway and is_unicast_mac(pkt.sender_mac) and pkt.sender_mac != self._gateway_mac:
            self._set_gateway_mac(pkt.sender_mac)
            self._arp["arp_learned"] += 1
        asks_us = pkt.op is ArpOp.REQUEST and pkt.target_ip == cfg.core_ip
        if asks_us and is_unicast_mac(pkt.sender_mac):
            self._arp["arp_replied"] += 1
            return encode_arp_frame(pkt.sender_mac, cfg.core_mac, reply_to(pkt, cfg.core_mac))
        if not from_gateway:
            self._arp["arp_ignored"] += 1
        return None

    def _set_gateway_mac(self, mac: bytes) -> None:
        self._gateway_mac = mac
        header = mac + self.config.core_mac + (0x0800).to_bytes(2, "big")
        self._next_hop = np.frombuffer(header, dtype=np.uint8).copy()
