"""The socket I/O backends (ring, mmsg, packet) on real veth pairs in a throwaway namespace.

Every behaviour test runs for each backend; the ring's own mechanics (blocks handed back,
frames across blocks, overflow counted) have their own tests at the end. Each test gets a
fresh namespace with a unique name and a veth pair (pyroute2); the ports are
opened inside it by a helper thread that has done ``setns`` (a socket keeps the namespace it
was created in) and everything is closed and removed at teardown. Addresses: 02:xx MACs only,
no IP addresses at all. Waits are polls with a deadline, never sleeps.
"""

from __future__ import annotations

import os
import secrets
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest

from data_plane.io import BACKENDS, FrameIO, open_port
from data_plane.io.base import RxBatch, TxBatch, send_tx
from data_plane.io.ring import RingPort
from vnf.adapters.packet import ETH_P_ALL

pyroute2 = pytest.importorskip("pyroute2")
from pyroute2 import NetNS, netns  # noqa: E402

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces"),
]

T = TypeVar("T")
MAC_A = bytes.fromhex("02000000aa01")
MAC_B = bytes.fromhex("02000000aa02")
VMAC = bytes.fromhex("02000000aa77")  # a MAC the interface does not own
ETHERTYPE_TEST = b"\x88\xb5"


class Namespace:
    """A network namespace with veth pairs; ports opened in it are closed at teardown."""

    def __init__(self, name: str, backend: str) -> None:
        self.name = name
        self.backend = backend
        self.ports: list[FrameIO] = []

    def run(self, fn: Callable[[], T]) -> T:
        """``fn()`` in a helper thread that has entered the namespace."""
        box: dict[str, object] = {}

        def target() -> None:
            try:
                netns.setns(self.name, flags=0)
                box["value"] = fn()
            except BaseException as err:  # handed to the caller's thread
                box["error"] = err

        thread = threading.Thread(target=target, name=f"setns-{self.name}")
        thread.start()
        thread.join(timeout=30)
        if "error" in box:
            raise box["error"]  # type: ignore[misc]
        return box["value"]  # type: ignore[return-value]

    def port(self, ifname: str) -> Any:
        """A port of the test's backend (typed loosely: tests read backend counters)."""
        port = self.run(lambda: open_port(self.backend, ifname))
        self.ports.append(port)
        return port

    def ring(self, ifname: str, **kw: Any) -> RingPort:
        port = self.run(lambda: RingPort(ifname, **kw))
        self.ports.append(port)
        return port

    def add_veth(self, a: str, b: str, mac_a: bytes, mac_b: bytes) -> None:
        with NetNS(self.name) as ns:
            ns.link("add", ifname=a, kind="veth", peer=b)
            for ifname, mac in ((a, mac_a), (b, mac_b)):
                index = ns.link_lookup(ifname=ifname)[0]
                ns.link("set", index=index, address=_mac(mac), state="up")

    def promiscuity(self, ifname: str) -> int:
        with NetNS(self.name) as ns:
            link = ns.get_links(ifname=ifname)[0]
            return int(link.get("IFLA_PROMISCUITY"))


@pytest.fixture(params=BACKENDS)
def ns(request: pytest.FixtureRequest) -> Iterator[Namespace]:
    name = f"vnf-io-{os.getpid()}-{secrets.token_hex(3)}"
    netns.create(name)
    space = Namespace(name, request.param)
    try:
        # No IPv6 autoconfiguration chatter on the test links (this namespace's sysctls only).
        space.run(lambda: _sysctl("net/ipv6/conf/default/disable_ipv6", "1"))
        space.add_veth("rs0", "rs1", MAC_A, MAC_B)
        yield space
    finally:
        for port in space.ports:
            port.close()
        netns.remove(name)  # the veths go with the namespace
        assert name not in netns.listnetns()


def _sysctl(key: str, value: str) -> None:
    path = Path("/proc/sys") / key
    if path.exists():
        path.write_text(value)


def _mac(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def frame(dst: bytes, src: bytes, tag: bytes, size: int = 60) -> bytes:
    body = dst + src + ETHERTYPE_TEST + tag
    return body + bytes(range(256))[: max(0, size - len(body))]


def receive(port: Any, want: Callable[[list[bytes]], bool], batch: RxBatch) -> list[bytes]:
    """Test frames received until ``want(frames)``; fails after a deadline."""
    return _collect(port, want, batch, ETHERTYPE_TEST)


def _collect(
    port: Any, want: Callable[[list[bytes]], bool], batch: RxBatch, ethertype: bytes
) -> list[bytes]:
    got: list[bytes] = []
    poller = select.poll()
    poller.register(port.fileno(), select.POLLIN)
    deadline = time.monotonic() + 5.0
    while not want(got):
        assert time.monotonic() < deadline, f"gave up waiting: {len(got)} frames"
        poller.poll(100)
        port.recv_batch(batch)
        got += [f for f in batch.frames() if f[12:14] == ethertype]
    return got


def test_a_batch_sent_from_the_peer_arrives_whole(ns: Namespace) -> None:
    ours, peer = ns.port("rs0"), ns.port("rs1")
    batch = RxBatch(capacity=64)
    idle = ours.recv_batch(batch)  # returns at once when nothing of ours is waiting
    assert idle == batch.count
    assert not any(f[12:14] == ETHERTYPE_TEST for f in batch.frames())
    sent = [frame(VMAC, MAC_B, i.to_bytes(2, "big"), 60 + 7 * i) for i in range(40)]
    for f in sent:
        peer.send(f)
    got = receive(ours, lambda fs: len(fs) >= 40, batch)
    assert got == sent
    assert ours.rx_packets >= 40 and peer.tx_packets == 40
    h = batch.headroom
    assert batch.buf[0, :h].tobytes() == bytes(h)  # frames land after the headroom


def test_send_batch_sends_from_rows_and_offsets(ns: Namespace) -> None:
    ours, peer = ns.port("rs0"), ns.port("rs1")
    count = 1100  # more than one sendmmsg (1024 messages) takes
    buf = np.zeros((count, 256), dtype=np.uint8)
    offsets = np.arange(count, dtype=np.int64) % 40
    lengths = 60 + np.arange(count, dtype=np.int64) % 100
    expected = []
    for i in range(count):
        f = frame(MAC_B, MAC_A, i.to_bytes(2, "big"), int(lengths[i]))
        buf[i, offsets[i] : offsets[i] + len(f)] = np.frombuffer(f, dtype=np.uint8)
        expected.append(f)
    rows = np.arange(count, dtype=np.int64)
    assert send_tx(ours, TxBatch(buf, rows, offsets, lengths)) == count
    got = receive(peer, lambda fs: len(fs) >= count, RxBatch(capacity=256))
    assert got == expected


def test_send_batch_refuses_frames_outside_the_buffer(ns: Namespace) -> None:
    ours = ns.port("rs0")
    buf = np.zeros((2, 128), dtype=np.uint8)
    with pytest.raises(ValueError, match="outside"):
        ours.send_batch(buf, np.array([1]), np.array([100]), np.array([60]))
    with pytest.raises(ValueError, match="outside"):
        ours.send_batch(buf, np.array([2]), np.array([0]), np.array([60]))


def test_our_own_and_other_sockets_transmissions_stay_out(ns: Namespace) -> None:
    ours, other, peer = ns.port("rs0"), ns.port("rs0"), ns.port("rs1")

    def plain_socket() -> socket.socket:  # a tap without PACKET_IGNORE_OUTGOING
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        s.bind(("rs0", ETH_P_ALL))
        s.setblocking(False)
        return s

    control = ns.run(plain_socket)
    try:
        mine = frame(MAC_B, MAC_A, b"mine")
        theirs = frame(MAC_B, MAC_A, b"theirs")
        ours.send(mine)
        buf = np.frombuffer(theirs, dtype=np.uint8).reshape(1, -1).copy()
        send_tx(other, TxBatch(buf, np.array([0]), np.array([0]), np.array([len(theirs)])))
        # the peer got both; then it sends a marker back: anything our socket queued for
        # the two transmissions would sit in front of the marker
        assert receive(peer, lambda fs: len(fs) >= 2, RxBatch(8)) == [mine, theirs]
        marker = frame(MAC_A, MAC_B, b"marker")
        peer.send(marker)
        assert receive(ours, lambda fs: marker in fs, RxBatch(8)) == [marker]
        # the control tap did see them leave: the test would catch the option missing
        seen = []
        while True:
            try:
                seen.append(control.recv(2048))
            except BlockingIOError:
                break
        assert mine in seen and theirs in seen
    finally:
        control.close()


def test_port_joins_promiscuous_mode_while_open(ns: Namespace) -> None:
    assert ns.promiscuity("rs0") == 0
    port = ns.port("rs0")
    assert ns.promiscuity("rs0") == 1
    port.close()
    assert ns.promiscuity("rs0") == 0


def test_frames_longer_than_a_row_are_truncated_and_counted(ns: Namespace) -> None:
    ours, peer = ns.port("rs0"), ns.port("rs1")
    peer.send(frame(VMAC, MAC_B, b"long", 300))
    batch = RxBatch(capacity=4, row=128)
    got = receive(ours, lambda fs: len(fs) >= 1, batch)
    assert len(got[0]) == batch.max_frame
    assert ours.rx_truncated == 1


def test_worker_forwards_between_two_veth_pairs(ns: Namespace) -> None:
    """Subscriber ⇄ worker ⇄ core router over real links, one batch each way."""
    from tests.unit.test_fastpath import (
        CORE_MAC,
        GW_MAC,
        VMAC1,
        client_ip,
        client_mac,
        down_frame,
        expected_down,
        expected_up,
        make_worker,
        rule,
        up_frame,
    )

    ns.add_veth("core0", "core1", CORE_MAC, GW_MAC)
    access, subscriber = ns.port("rs0"), ns.port("rs1")
    core, router = ns.port("core0"), ns.port("core1")
    worker = make_worker()
    worker.apply_rules([rule(1, 1), rule(2, 2)])

    ups = [up_frame(1), up_frame(2, size=400)]
    for f in ups:
        subscriber.send(f)
    rx = worker.new_batch()
    assert receive_raw(access, lambda fs: len(fs) >= 2, rx, b"\x88\x64") == ups
    send_tx(core, worker.process_access(rx).to_core)
    assert receive_raw(router, lambda fs: len(fs) >= 2, RxBatch(8), b"\x08\x00") == [
        expected_up(f) for f in ups
    ]

    down = down_frame(client_ip(2))
    router.send(down)
    rx_core = worker.new_batch()
    receive_raw(core, lambda fs: len(fs) >= 1, rx_core, b"\x08\x00")
    send_tx(access, worker.process_core(rx_core).to_access)
    got = receive_raw(subscriber, lambda fs: len(fs) >= 1, RxBatch(8), b"\x88\x64")
    assert got == [expected_down(down, client_mac(2), VMAC1, 2)]


def receive_raw(
    port: Any, want: Callable[[list[bytes]], bool], batch: RxBatch, ethertype: bytes
) -> list[bytes]:
    """Like :func:`receive`, for one ethertype (stray frames such as IPv6 neighbour discovery
    are left out); ``batch`` then holds exactly the frames returned."""
    got = _collect(port, want, batch, ethertype)
    batch.fill(got, batch.rx_ns)
    return got


# ---- the ring's own mechanics -------------------------------------------------------------------
@pytest.fixture
def ring_ns() -> Iterator[Namespace]:
    name = f"vnf-ring-{os.getpid()}-{secrets.token_hex(3)}"
    netns.create(name)
    space = Namespace(name, "ring")
    try:
        space.run(lambda: _sysctl("net/ipv6/conf/default/disable_ipv6", "1"))
        space.add_veth("rs0", "rs1", MAC_A, MAC_B)
        yield space
    finally:
        for port in space.ports:
            port.close()
        netns.remove(name)


def numbered(i: int, size: int) -> bytes:
    """Test frame ``i`` of ``size`` bytes: its number in the tag, then varying bytes."""
    body = VMAC + MAC_B + ETHERTYPE_TEST + i.to_bytes(4, "big")
    filler = bytes((i * 7 + k) & 0xFF for k in range(max(0, size - len(body))))
    return body + filler


def send_all(port: Any, frames: list[bytes]) -> None:
    buf = np.zeros((len(frames), 1600), dtype=np.uint8)
    for i, f in enumerate(frames):
        buf[i, : len(f)] = np.frombuffer(f, dtype=np.uint8)
    rows = np.arange(len(frames), dtype=np.int64)
    lengths = np.array([len(f) for f in frames], dtype=np.int64)
    assert port.send_batch(buf, rows, np.zeros_like(rows), lengths) == len(frames)


def test_ring_frames_across_batches_and_blocks_arrive_whole_and_in_order(
    ring_ns: Namespace,
) -> None:
    ours = ring_ns.ring("rs0", blocks=4, block_size=16 << 10)  # small blocks: many of them
    peer = ring_ns.port("rs1")
    sizes = [60 + (i * 37) % 1455 for i in range(3000)]
    sent = [numbered(i, size) for i, size in enumerate(sizes)]
    got: list[bytes] = []
    batch = RxBatch(capacity=64)
    for start in range(0, len(sent), 20):  # never more than the ring holds at once
        send_all(peer, sent[start : start + 20])
        got += receive(ours, lambda fs: len(fs) >= 20, batch)
    assert got == sent
    assert ours.blocks_read > 4 * 3  # went round the ring several times
    assert ours.bad_blocks == 0 and ours.rx_truncated == 0


def test_ring_a_block_of_many_small_frames_spans_several_batches(ring_ns: Namespace) -> None:
    ours, peer = ring_ns.ring("rs0", block_timeout_ms=50), ring_ns.port("rs1")
    sent = [numbered(i, 60) for i in range(700)]
    send_all(peer, sent)
    batch = RxBatch(capacity=32)
    got = receive(ours, lambda fs: len(fs) >= 700, batch)
    assert got == sent


def test_ring_overflow_is_counted_and_what_arrives_is_whole(ring_ns: Namespace) -> None:
    ours = ring_ns.ring("rs0", blocks=2, block_size=16 << 10)  # 32 KiB: ~300 small frames
    peer = ring_ns.port("rs1")
    sent = [numbered(i, 100) for i in range(2000)]
    for start in range(0, len(sent), 500):
        send_all(peer, sent[start : start + 500])
    got = receive(ours, lambda fs: len(fs) >= 50, RxBatch(capacity=256))
    deadline = time.monotonic() + 5.0
    while ours.kernel_drops == 0:
        assert time.monotonic() < deadline, "the kernel reported no drops"
        ours.kernel_stats()
    assert 0 < ours.kernel_drops < len(sent)
    # What did arrive is whole, each frame one of those sent, in the order sent.
    index = {f: i for i, f in enumerate(sent)}
    order = [index[f] for f in got]
    assert order == sorted(order)


def test_ring_polls_readable_only_with_a_block_ready_and_closes_twice(ring_ns: Namespace) -> None:
    ours, peer = ring_ns.ring("rs0", block_timeout_ms=4), ring_ns.port("rs1")
    poller = select.poll()
    poller.register(ours.fileno(), select.POLLIN)
    batch = RxBatch(capacity=8)
    while poller.poll(0):  # drain anything the link said on its own (none expected)
        ours.recv_batch(batch)
    assert poller.poll(20) == []
    peer.send(numbered(1, 60))
    assert poller.poll(2000), "the retired block should wake poll"
    assert receive(ours, lambda fs: len(fs) >= 1, batch) == [numbered(1, 60)]
    assert poller.poll(20) == []  # block handed back: nothing ready
    ours.close()
    ours.close()


def test_ring_a_malformed_block_is_handed_back_once_not_reread(ring_ns: Namespace) -> None:
    """A block whose first frame offset points nowhere yields nothing, is counted once and
    goes back to the kernel; the next read does not open it again."""
    ours = ring_ns.ring("rs0", block_timeout_ms=50)
    words = memoryview(ours._mm).cast("I")  # forge block 0 as the kernel would hand it over
    try:
        words[3] = 5  # num_pkts
        words[4] = 0  # offset_to_first_pkt: the block header itself
        words[2] = 1  # block_status: TP_STATUS_USER
        batch = RxBatch(capacity=8)
        assert ours.recv_batch(batch) == 0 and batch.count == 0
        assert ours.bad_blocks == 1 and words[2] == 0  # handed back (TP_STATUS_KERNEL)
        assert ours.recv_batch(batch) == 0
        assert ours.bad_blocks == 1 and ours.blocks_read == 1
    finally:
        words.release()
