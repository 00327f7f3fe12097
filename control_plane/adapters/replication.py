"""The replication stream of the CP pair (vnf/api/replication.proto), both ends.

The active serves ``Replication.Sync`` (:class:`ReplicationServicer`): one standby at a
time gets a snapshot of the replica, then every batch of changes the active's core
produced, and a heartbeat whenever the active was quiet for a heartbeat interval. The
standby (:func:`follow`) applies them with the core's reducer, makes accounting records
and subscriber changes durable in its own store, and acknowledges each batch's sequence
number; the active holds DP rules until their change is acknowledged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import grpc

from control_plane.replica import (
    AccountingWritten,
    Change,
    Counts,
    EpochSet,
    GroupPlaced,
    KeysUsed,
    ModemPut,
    ModemRecord,
    ModemRemoved,
    SessionClosed,
    SessionRecord,
    SessionUpsert,
    SubscriberPut,
    SubscriberRemoved,
)
from vnf.adapters import grpc_server
from vnf.api import convert, replication_pb2, replication_pb2_grpc, session_control_pb2
from vnf.model.cable import ProvisionedModem
from vnf.model.session import Usage

if TYPE_CHECKING:
    from control_plane.adapters.runtime import CpRuntime

log = logging.getLogger("cp")

Outgoing = asyncio.Queue[replication_pb2.ActiveMessage | None]


# ---------------------------------------------------------------------------- conversions


def _counts_to_pb(c: Counts) -> session_control_pb2.UsageReport:
    return convert.usage_to_pb(Usage(0, *c))


def _counts_from_pb(m: session_control_pb2.UsageReport) -> Counts:
    u = convert.usage_from_pb(m)
    return (u.up_packets, u.up_bytes, u.down_packets, u.down_bytes)


def _modem_to_pb(m: ModemRecord) -> replication_pb2.Change:
    return replication_pb2.Change(
        modem=replication_pb2.ModemRecord(
            key=m.key,
            group=m.group,
            sid=m.sid,
            cm_mac=m.cm_mac,
            cpe_mac=m.cpe_mac,
            ipv4=m.ipv4,
            acct_id=m.acct_id,
            active=m.active,
            started=m.started,
            up_wall=m.up_wall,
            interim_wall=m.interim_wall,
            base=_counts_to_pb(m.base),
            usage=_counts_to_pb(m.usage),
            service_class=m.service_class,
            online_wall=m.online_wall,
            reg_timestamp=m.reg_timestamp,
        )
    )


def change_to_pb(change: Change) -> replication_pb2.Change:
    if isinstance(change, SessionUpsert):
        r = change.record
        if isinstance(r, ModemRecord):
            return _modem_to_pb(r)
        return replication_pb2.Change(
            session=replication_pb2.SessionRecord(
                key=r.key,
                group=r.group,
                sid=r.sid,
                client_mac=r.client_mac,
                host_uniq=r.host_uniq or b"",
                has_host_uniq=r.host_uniq is not None,
                username=r.username,
                auth=r.auth,
                ipv4=r.ipv4,
                acct_id=r.acct_id,
                active=r.active,
                started=r.started,
                up_wall=r.up_wall,
                interim_wall=r.interim_wall,
                base=_counts_to_pb(r.base),
                usage=_counts_to_pb(r.usage),
                magic=r.magic,
                peer_magic=r.peer_magic,
                peer_mru=r.peer_mru,
            )
        )
    if isinstance(change, SessionClosed):
        return replication_pb2.Change(session_closed=change.key)
    if isinstance(change, GroupPlaced):
        return replication_pb2.Change(
            placed=replication_pb2.GroupPlaced(group_id=change.group_id, dp=change.dp)
        )
    if isinstance(change, EpochSet):
        return replication_pb2.Change(epoch=change.epoch)
    if isinstance(change, KeysUsed):
        return replication_pb2.Change(next_key=change.next_key)
    if isinstance(change, AccountingWritten):
        return replication_pb2.Change(accounting=convert.accounting_to_pb(0, change.record))
    if isinstance(change, SubscriberPut):
        return replication_pb2.Change(subscriber=convert.subscriber_to_pb(change.subscriber))
    if isinstance(change, ModemPut):
        p = change.modem
        return replication_pb2.Change(
            modem_provisioned=replication_pb2.ProvisionedModem(
                mac=p.mac, service_class=p.service_class, enabled=p.enabled
            )
        )
    if isinstance(change, ModemRemoved):
        return replication_pb2.Change(modem_unprovisioned=change.mac)
    return replication_pb2.Change(subscriber_removed=change.username)


def change_from_pb(msg: replication_pb2.Change) -> Change | None:
    kind = msg.WhichOneof("body")
    if kind == "session":
        r = msg.session
        return SessionUpsert(
            SessionRecord(
                key=r.key,
                group=r.group,
                sid=r.sid,
                client_mac=bytes(r.client_mac),
                host_uniq=bytes(r.host_uniq) if r.has_host_uniq else None,
                username=r.username,
                auth=r.auth,
                ipv4=r.ipv4,
                acct_id=r.acct_id,
                active=r.active,
                started=r.started,
                up_wall=r.up_wall,
                interim_wall=r.interim_wall,
                base=_counts_from_pb(r.base),
                usage=_counts_from_pb(r.usage),
                magic=r.magic,
                peer_magic=r.peer_magic,
                peer_mru=r.peer_mru,
            )
        )
    if kind == "session_closed":
        return SessionClosed(msg.session_closed)
    if kind == "placed":
        return GroupPlaced(msg.placed.group_id, msg.placed.dp)
    if kind == "epoch":
        return EpochSet(msg.epoch)
    if kind == "next_key":
        return KeysUsed(msg.next_key)
    if kind == "accounting":
        return AccountingWritten(convert.accounting_from_pb(msg.accounting)[1])
    if kind == "subscriber":
        return SubscriberPut(convert.subscriber_from_pb(msg.subscriber))
    if kind == "subscriber_removed":
        return SubscriberRemoved(msg.subscriber_removed)
    if kind == "modem":
        m = msg.modem
        return SessionUpsert(
            ModemRecord(
                key=m.key,
                group=m.group,
                sid=m.sid,
                cm_mac=bytes(m.cm_mac),
                cpe_mac=bytes(m.cpe_mac),
                ipv4=m.ipv4,
                acct_id=m.acct_id,
                active=m.active,
                started=m.started,
                up_wall=m.up_wall,
                interim_wall=m.interim_wall,
                base=_counts_from_pb(m.base),
                usage=_counts_from_pb(m.usage),
                service_class=m.service_class,
                online_wall=m.online_wall,
                reg_timestamp=m.reg_timestamp,
            )
        )
    if kind == "modem_provisioned":
        p = msg.modem_provisioned
        return ModemPut(ProvisionedModem(bytes(p.mac), p.service_class, p.enabled))
    if kind == "modem_unprovisioned":
        return ModemRemoved(bytes(msg.modem_unprovisioned))
    return None


def batch_to_pb(seq: int, changes: list[Change]) -> replication_pb2.ChangeBatch:
    return replication_pb2.ChangeBatch(seq=seq, changes=[change_to_pb(c) for c in changes])


def batch_from_pb(msg: replication_pb2.ChangeBatch) -> list[Change]:
    return [c for m in msg.changes if (c := change_from_pb(m)) is not None]


# ---------------------------------------------------------------------------- active side


class ReplicationServicer(replication_pb2_grpc.ReplicationServicer):
    def __init__(self, runtime: CpRuntime) -> None:
        self.runtime = runtime

    async def Sync(  # noqa: N802 (gRPC method name)
        self,
        request_iterator: AsyncIterator[replication_pb2.StandbyMessage],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[replication_pb2.ActiveMessage]:
        runtime = self.runtime
        try:
            first = await anext(request_iterator)
        except StopAsyncIteration:
            return
        if first.WhichOneof("body") != "hello":
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the first message must be hello")
        hello = first.hello
        if hello.highest_epoch > runtime.epoch:
            # The peer has seen a newer epoch than ours: we are not the active any more.
            runtime.demote(f"{hello.cp} has seen epoch {hello.highest_epoch}")
        if runtime.role != "active":
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "not the active control plane")
        queue = runtime.attach_standby(hello.cp)
        reader = asyncio.create_task(self._acks(request_iterator, queue), name="replication-acks")
        try:
            while True:
                msg = await queue.get()
                if msg is None:
                    break
                yield msg
        finally:
            reader.cancel()
            runtime.detach_standby(queue)

    async def _acks(
        self, requests: AsyncIterator[replication_pb2.StandbyMessage], queue: Outgoing
    ) -> None:
        try:
            async for msg in requests:
                if msg.WhichOneof("body") == "applied_seq":
                    self.runtime.standby_acked(queue, msg.applied_seq)
        except (grpc.aio.AioRpcError, asyncio.CancelledError):
            pass
        finally:
            queue.put_nowait(None)


# ---------------------------------------------------------------------------- standby side


async def follow(runtime: CpRuntime, address: str) -> None:
    """Standby: stay subscribed to the active's replication stream while we are standby."""
    backoff = 0.05
    while runtime.role == "standby":
        try:
            await _follow_once(runtime, address)
            backoff = 0.05
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.FAILED_PRECONDITION:
                log.debug("replication from %s: %s", address, exc.code().name)
        finally:
            runtime.peer_lost()
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, 1.0)


async def _follow_once(runtime: CpRuntime, address: str) -> None:
    out: asyncio.Queue[replication_pb2.StandbyMessage | None] = asyncio.Queue()
    out.put_nowait(
        replication_pb2.StandbyMessage(
            hello=replication_pb2.StandbyHello(
                cp=runtime.config.name, highest_epoch=runtime.known_epoch()
            )
        )
    )

    async def requests() -> AsyncIterator[replication_pb2.StandbyMessage]:
        while (msg := await out.get()) is not None:
            yield msg

    async with grpc_server.channel(address) as channel:
        stub = replication_pb2_grpc.ReplicationStub(channel)
        call = stub.Sync(requests())
        silence = runtime.config.detect_s
        iterator = call.__aiter__()
        try:
            while runtime.role == "standby":
                try:
                    msg = await asyncio.wait_for(anext(iterator), silence)
                except TimeoutError:
                    log.warning("replication: the active is silent", extra={"fields": {}})
                    return
                except StopAsyncIteration:
                    return
                runtime.peer_heard(msg.cp, msg.epoch)
                kind = msg.WhichOneof("body")
                if kind in ("snapshot", "changes"):
                    batch = msg.snapshot if kind == "snapshot" else msg.changes
                    runtime.apply_replicated(batch_from_pb(batch), batch.seq, kind == "snapshot")
                    out.put_nowait(replication_pb2.StandbyMessage(applied_seq=batch.seq))
                elif kind == "heartbeat_ns":
                    # Answered, so that the active knows its standby is alive too.
                    seq = runtime.core.replica.seq
                    out.put_nowait(replication_pb2.StandbyMessage(applied_seq=seq))
                elif kind == "handover":
                    runtime.take_over(msg.cp, "cp_switchover")
                    return
        finally:
            out.put_nowait(None)
            call.cancel()
