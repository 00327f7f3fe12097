"""The forwarding thread: the fast path's own loop, beside the asyncio loop that talks gRPC.

Theory of operation
-------------------
A DP worker process has two sides. The *control side* (the asyncio loop: CP streams,
DataPlaneAdmin, heartbeats) receives rules and assignments; the *forwarding side* (this
module's thread) receives batches, runs :class:`~data_plane.worker.Worker`'s fast path and
sends. The forwarding thread owns the worker: nothing else mutates its tables. The control
side hands it work as *commands* (:meth:`Forwarder.submit`: a function of no arguments run
on the forwarding thread, its result returned through a future), and the thread runs them
between two batches, so

* a rule never meets half a batch: a frame is judged either entirely before or entirely
  after a rule change (no frame is forwarded with a torn table entry);
* a rule takes effect within one batch: the loop looks at its command queue before every
  batch, and runs what is queued for up to :data:`COMMAND_BUDGET_S` before forwarding again
  (a flood of commands cannot stall forwarding for longer than that; long rule batches are
  split into chunks of :data:`RULE_CHUNK` by the caller);
* gRPC never stalls forwarding: protobuf conversion, stream I/O, usage report building and
  metrics exposition run on the other threads, which share the GIL but never hold the
  worker's tables.

The loop takes one batch from the access port and one from the core port per round, so
neither direction starves the other. When a round moves nothing it blocks in ``epoll`` on
both ports and on an eventfd that :meth:`submit` writes, up to :data:`IDLE_WAIT_S`. Timers
(ARP toward the core next hop, the kernel's drop counters) run at most every
:data:`TICK_S`.

Punts leave the thread as one call into the event loop per round that produced any
(``call_soon_threadsafe``), never one per frame.

The thread pins itself to ``cpu`` when one is given and measures its own CPU time (its
POSIX thread CPU clock), which the metrics read from any thread.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import logging
import os
import select
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from data_plane.io.base import FrameIO, RxBatch, send_tx
from data_plane.worker import Worker

log = logging.getLogger("dp")

T = TypeVar("T")

COMMAND_BUDGET_S = 0.001
"""Commands run back to back for at most this long between two batches (at least one)."""
RULE_CHUNK = 256
"""Rules applied per command: a 10,000-rule batch interleaves with forwarding."""
IDLE_WAIT_S = 0.05
"""How long the loop blocks when nothing moved (a frame or a command wakes it at once)."""
TICK_S = 0.1
"""Period of the thread's timers (ARP for the next hop, kernel drop counters)."""
BATCH_BUCKETS = 14
"""Batch-size histogram buckets: sizes up to 1, 2, 4, ..., 4096, then larger."""

PuntSink = Callable[[list[tuple[bytes, int]]], None]


@dataclass(slots=True)
class PortStats:
    """What the forwarding loop saw on one port (plain integers, exported at scrape time)."""

    batches: int = 0
    frames: int = 0
    sizes: list[int] = field(default_factory=lambda: [0] * (BATCH_BUCKETS + 1))
    """sizes[k]: batches of ``2**(k-1) < size <= 2**k`` frames (k = 0: one frame)."""

    def add(self, n: int) -> None:
        self.batches += 1
        self.frames += n
        k = (n - 1).bit_length()
        self.sizes[k if k < BATCH_BUCKETS else BATCH_BUCKETS] += 1


@dataclass(slots=True)
class LoopStats:
    rounds: int = 0
    idle_waits: int = 0
    commands: int = 0
    command_wait_s: float = 0.0
    """Summed time commands waited in the queue before they ran."""
    command_wait_max_s: float = 0.0
    command_errors: int = 0
    access: PortStats = field(default_factory=PortStats)
    core: PortStats = field(default_factory=PortStats)


class _Command:
    __slots__ = ("fn", "future", "queued")

    def __init__(self, fn: Callable[[], Any], future: concurrent.futures.Future[Any]) -> None:
        self.fn = fn
        self.future = future
        self.queued = time.monotonic()


class Forwarder:
    """Runs ``worker``'s fast path between ``access`` and ``core`` on its own thread."""

    def __init__(
        self,
        worker: Worker,
        access: FrameIO,
        core: FrameIO,
        on_punts: PuntSink,
        cpu: int | None = None,
    ) -> None:
        self.worker = worker
        self.access = access
        self.core = core
        self.cpu = cpu
        self.stats = LoopStats()
        self._on_punts = on_punts
        self._access_batch = worker.new_batch()
        self._core_batch = worker.new_batch()
        self._commands: collections.deque[_Command] = collections.deque()
        self._wake = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._thread_id: int | None = None
        self._punts: list[tuple[bytes, int]] = []
        self._next_tick = 0.0
        self._cpu_at_exit = 0.0

    # ---- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("forwarder already started")
        self._thread = threading.Thread(target=self._run, name="fastpath", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the loop and wait for it; queued commands fail with ``RuntimeError``."""
        thread = self._thread
        if thread is None:
            return
        self._stop.set()
        self._poke()
        thread.join(timeout)
        self._thread = None
        while self._commands:
            command = self._commands.popleft()
            if command.future.set_running_or_notify_cancel():
                command.future.set_exception(RuntimeError("forwarder stopped"))
        os.close(self._wake)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def cpu_seconds(self) -> float:
        """CPU time the forwarding thread has used (0 before it started)."""
        thread_id = self._thread_id
        if thread_id is None:
            return self._cpu_at_exit
        try:
            return time.clock_gettime(time.pthread_getcpuclockid(thread_id))
        except (OSError, ProcessLookupError):  # the thread just ended
            return self._cpu_at_exit

    # ---- commands -------------------------------------------------------------------------
    def submit(self, fn: Callable[[], T]) -> concurrent.futures.Future[T]:
        """Run ``fn`` on the forwarding thread between two batches; its result (or
        exception) comes back through the future. Runs inline when the thread is not
        started (tests, and wiring before ``start``)."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        if self._thread is None:
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn())
                except Exception as exc:  # handed to the caller
                    future.set_exception(exc)
            return future
        self._commands.append(_Command(fn, future))
        self._poke()
        return future

    async def call(self, fn: Callable[[], T]) -> T:
        """:meth:`submit` for a coroutine."""
        import asyncio

        return await asyncio.wrap_future(self.submit(fn))

    def _poke(self) -> None:
        with contextlib.suppress(OSError):  # closed: the loop has stopped
            os.eventfd_write(self._wake, 1)

    def _run_commands(self) -> None:
        deadline = time.monotonic() + COMMAND_BUDGET_S
        stats = self.stats
        while self._commands:
            command = self._commands.popleft()
            now = time.monotonic()
            waited = now - command.queued
            stats.commands += 1
            stats.command_wait_s += waited
            if waited > stats.command_wait_max_s:
                stats.command_wait_max_s = waited
            if command.future.set_running_or_notify_cancel():
                try:
                    command.future.set_result(command.fn())
                except Exception as exc:  # the caller gets it
                    stats.command_errors += 1
                    command.future.set_exception(exc)
            if time.monotonic() >= deadline:
                return

    # ---- the loop -------------------------------------------------------------------------
    def _run(self) -> None:
        self._thread_id = threading.get_ident()
        if self.cpu is not None:
            try:
                os.sched_setaffinity(0, {self.cpu})  # 0: this thread
            except OSError as exc:
                log.warning("cannot pin the forwarding thread to cpu %s: %s", self.cpu, exc)
        poller = select.epoll()
        try:
            for fd in (self.access.fileno(), self.core.fileno(), self._wake):
                poller.register(fd, select.EPOLLIN)
            self._loop(poller)
        except Exception:
            log.exception("forwarding loop failed")
            raise
        finally:
            poller.close()
            self._flush_punts()
            self._cpu_at_exit = time.thread_time()
            self._thread_id = None

    def _loop(self, poller: select.epoll) -> None:
        stats = self.stats
        while not self._stop.is_set():
            if self._commands:
                self._run_commands()
            moved = self._access_round() + self._core_round()
            stats.rounds += 1
            if self._punts:
                self._flush_punts()
            now = time.monotonic()
            if now >= self._next_tick:
                self._next_tick = now + TICK_S
                self._tick(now)
            if not moved and not self._commands:
                stats.idle_waits += 1
                poller.poll(IDLE_WAIT_S)
                with contextlib.suppress(BlockingIOError):
                    os.eventfd_read(self._wake)

    def _access_round(self) -> int:
        batch = self._access_batch
        n = self.access.recv_batch(batch)
        if not n:
            return 0
        self.stats.access.add(n)
        result = self.worker.process_access(batch)
        send_tx(self.core, result.to_core)
        if result.punts:
            self._queue_punts(result.punts, batch)
        return n

    def _core_round(self) -> int:
        batch = self._core_batch
        n = self.core.recv_batch(batch)
        if not n:
            return 0
        self.stats.core.add(n)
        result = self.worker.process_core(batch)
        send_tx(self.access, result.to_access)
        for frame in result.to_core:
            self.core.send(frame)
        if result.punts:
            self._queue_punts(result.punts, batch)
        return n

    def _queue_punts(self, frames: list[bytes], batch: RxBatch) -> None:
        rx_ns = batch.rx_ns
        self._punts.extend((frame, rx_ns) for frame in frames)

    def _flush_punts(self) -> None:
        punts, self._punts = self._punts, []
        if punts:
            self._on_punts(punts)

    def _tick(self, now: float) -> None:
        request = self.worker.arp_request_if_needed(now)
        if request is not None:
            self.core.send(request)
        for port in (self.access, self.core):
            kernel_stats = getattr(port, "kernel_stats", None)
            if kernel_stats is not None:
                with contextlib.suppress(OSError):
                    kernel_stats()
