"""Thin gRPC servicers of the control plane: protobuf → convert → core/store → protobuf."""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import AsyncIterator

import grpc

from control_plane.adapters.runtime import CpRuntime
from control_plane.adapters.store import AccountingQuery
from control_plane.service import ControlPlane, SessionQuery, Takeover
from control_plane.sessions import Session, SessionState
from vnf.api import (
    common_pb2,
    convert,
    management_pb2,
    management_pb2_grpc,
    session_control_pb2,
    session_control_pb2_grpc,
)
from vnf.model.addresses import int_to_ip, ip_to_int, mac_to_str
from vnf.model.session import TerminateCause
from vnf.model.subscriber import AuthType

PAGE = 1000


class SessionControlServicer(session_control_pb2_grpc.SessionControlServicer):
    def __init__(self, runtime: CpRuntime) -> None:
        self.runtime = runtime

    async def Connect(  # noqa: N802 (gRPC method name)
        self,
        request_iterator: AsyncIterator[session_control_pb2.DpMessage],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[session_control_pb2.CpMessage]:
        # grpc.aio recognises a streaming handler by its being an async generator function.
        async for message in self.runtime.dp_stream(request_iterator, context):
            yield message


class ManagementServicer(management_pb2_grpc.ManagementServicer):
    def __init__(self, runtime: CpRuntime) -> None:
        self.runtime = runtime

    @property
    def core(self) -> ControlPlane:
        return self.runtime.core  # a demotion replaces it

    async def GetStatus(  # noqa: N802
        self, request: common_pb2.Empty, context: grpc.aio.ServicerContext
    ) -> management_pb2.CpStatus:
        now = time.monotonic()
        placement = self.core.placement
        groups = [
            management_pb2.GroupPlacement(
                group_id=g.group_id,
                site=g.group.site,
                dp=g.dp,
                virtual_mac=g.mac,
                pool=str(g.group.pool),
                sessions=g.sessions,
                free_addresses=g.pool.free,
            )
            for g in placement.by_id.values()
        ]
        dps = [
            management_pb2.DpState(
                dp_id=d.name,
                site=d.site,
                connected=d.connected,
                role=d.role,
                sessions=sum(g.sessions for g in placement.groups_of(d.name)),
                last_heartbeat_age_s=now - d.last_heartbeat if d.last_heartbeat else -1.0,
            )
            for d in placement.dps.values()
        ]
        runtime = self.runtime
        core = self.core
        return management_pb2.CpStatus(
            name=core.config.name,
            role=runtime.role,
            epoch=runtime.epoch,
            sessions=len(core.sessions) if core.active else len(core.replica.sessions),
            groups=groups,
            dps=dps,
            uptime_s=now - runtime.started,
            peer=core.config.peer_name,
            peer_connected=runtime.peer_connected,
            replication_seq=core.replica.seq,
            replication_lag=runtime.replication_lag(),
            takeovers=[
                management_pb2.Takeover(
                    kind=t.kind,
                    from_node=t.from_node,
                    to_node=t.to_node,
                    at_wall=t.at_wall,
                    detection_ms=t.detection_ms,
                    takeover_ms=t.takeover_ms,
                    sessions=t.sessions,
                    groups=t.groups,
                    epoch=t.epoch,
                )
                for t in core.takeovers
                if t.done
            ],
        )

    async def ListSessions(  # noqa: N802
        self, request: management_pb2.SessionQuery, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[management_pb2.SessionPage]:
        query = await _session_query(request, context)
        sessions = self.core.find(query)
        now = time.monotonic()
        size = request.page_size or PAGE
        for start in range(0, len(sessions), size):
            page = [self._info(s, now) for s in sessions[start : start + size]]
            yield management_pb2.SessionPage(sessions=page)

    def _info(self, s: Session, now: float) -> management_pb2.SessionInfo:
        group = self.core.placement.by_id[s.group]
        up_p, up_b, down_p, down_b = s.usage
        return management_pb2.SessionInfo(
            session_key=s.key,
            username=s.username,
            client_mac=s.client_mac,
            pppoe_session_id=s.sid,
            ipv4=s.ipv4,
            dp=group.dp,
            group=s.group,
            state=s.state.value,
            uptime_s=now - s.up_mono if s.up_mono else 0.0,
            rx_bytes=up_b,
            tx_bytes=down_b,
            rx_packets=up_p,
            tx_packets=down_p,
            acct_session_id=s.acct_id,
            auth=s.auth,
            ac_mac=group.mac,
        )

    async def TerminateSessions(  # noqa: N802
        self, request: management_pb2.TerminateRequest, context: grpc.aio.ServicerContext
    ) -> management_pb2.TerminateReply:
        cause_label = request.cause or "admin-reset"
        causes = {c.label: c for c in TerminateCause}
        if cause_label not in causes:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"unknown terminate cause {cause_label!r} (one of {', '.join(sorted(causes))})",
            )
        which = request.WhichOneof("selector")
        if which == "username":
            targets = [
                s for s in self.core.sessions.by_key.values() if s.username == request.username
            ]
        elif which == "ipv4":
            try:
                address = ip_to_int(request.ipv4)
            except ValueError:
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT, f"not an IPv4 address: {request.ipv4!r}"
                )
            targets = [s for s in self.core.sessions.by_key.values() if s.ipv4 == address]
        elif which == "session_key":
            found = self.core.sessions.by_key.get(request.session_key)
            targets = [found] if found is not None else []
        elif which == "all" and request.all:
            targets = list(self.core.sessions.by_key.values())
        else:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "name --user, --ip or --all")
        if not targets and which != "all":
            await context.abort(grpc.StatusCode.NOT_FOUND, "no such session")
        sessions = [s for s in targets if isinstance(s, Session)]
        count = self.core.terminate(sessions, causes[cause_label], time.monotonic())
        self.runtime.flush()
        return management_pb2.TerminateReply(terminated=count)

    async def PutSubscribers(  # noqa: N802
        self, request: management_pb2.SubscriberBatch, context: grpc.aio.ServicerContext
    ) -> management_pb2.PutSubscribersReply:
        subscribers = []
        for i, msg in enumerate(request.subscribers):
            problem = _subscriber_problem(msg, set(self.core.directory.profiles))
            if problem:
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT, f"subscribers[{i}]: {problem}"
                )
            subscribers.append(convert.subscriber_from_pb(msg))
        if self.runtime.role != "active":
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "not the active control plane")
        added, updated = self.runtime.store.put_subscribers(subscribers)
        self.core.put_subscribers(subscribers)
        self.runtime.flush()
        return management_pb2.PutSubscribersReply(added=added, updated=updated)

    async def ListSubscribers(  # noqa: N802
        self, request: management_pb2.SubscriberQuery, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[management_pb2.SubscriberBatch]:
        pattern = await _regex(request.username_regex, context)
        subs = [
            s
            for s in sorted(self.core.directory.all(), key=lambda s: s.username)
            if pattern is None or pattern.search(s.username)
        ]
        for start in range(0, len(subs), PAGE):
            yield management_pb2.SubscriberBatch(
                subscribers=[
                    convert.subscriber_to_pb(s, request.with_secrets)
                    for s in subs[start : start + PAGE]
                ]
            )

    async def RemoveSubscribers(  # noqa: N802
        self, request: management_pb2.RemoveSubscribersRequest, context: grpc.aio.ServicerContext
    ) -> management_pb2.RemoveSubscribersReply:
        names = list(request.usernames)
        if self.runtime.role != "active":
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "not the active control plane")
        missing = self.runtime.store.remove_subscribers(names)
        self.core.remove_subscribers(names)
        self.runtime.flush()
        return management_pb2.RemoveSubscribersReply(
            removed=len(names) - len(missing), missing=missing
        )

    async def GetStats(  # noqa: N802
        self, request: common_pb2.Empty, context: grpc.aio.ServicerContext
    ) -> management_pb2.Stats:
        from control_plane.adapters.metrics import LABELS

        counters = []
        for (name, value), n in sorted(self.core.counters.items()):
            label = LABELS.get(name)
            counters.append(
                common_pb2.Counter(name=name, labels={label: value} if label else {}, value=n)
            )
        for state, n in self.core.sessions.counts.items():
            if state is not SessionState.CLOSED:
                counters.append(
                    common_pb2.Counter(name="sessions", labels={"state": state.value}, value=n)
                )
        for kind, n in sorted(self.runtime.metrics.accounting_written.items()):
            counters.append(
                common_pb2.Counter(name="accounting_records", labels={"type": kind}, value=n)
            )
        return management_pb2.Stats(node=self.core.config.name, counters=counters)

    async def ListAccounting(  # noqa: N802
        self, request: management_pb2.AccountingQuery, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[management_pb2.AccountingPage]:
        await _regex(request.username_regex, context)
        if request.record_type and request.record_type not in ("start", "interim", "stop"):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "type is start, interim or stop")
        query = AccountingQuery(
            request.username_regex, request.acct_session_id, request.record_type, request.limit
        )
        rows = self.runtime.store.accounting(query)
        for start in range(0, len(rows), PAGE):
            yield management_pb2.AccountingPage(
                records=[convert.accounting_to_pb(i, r) for i, r in rows[start : start + PAGE]]
            )

    async def GetSetupReport(  # noqa: N802
        self, request: common_pb2.Empty, context: grpc.aio.ServicerContext
    ) -> management_pb2.SetupReport:
        setup = self.runtime.setup
        return management_pb2.SetupReport(
            established=len(setup),
            first_padi_mono=setup.first_padi,
            last_established_mono=setup.last_established,
            setup_ms=[s * 1000.0 for s in setup.setup_s],
            established_mono=list(setup.established),
            accounting_records=self.runtime.writer.written,
        )

    async def Switchover(  # noqa: N802
        self, request: management_pb2.SwitchoverRequest, context: grpc.aio.ServicerContext
    ) -> management_pb2.SwitchoverReply:
        try:
            to, epoch, duration_ms, sessions = await self.runtime.switchover(
                request.timeout_s or 5.0
            )
        except ValueError as exc:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        except TimeoutError as exc:
            await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, str(exc))
        return management_pb2.SwitchoverReply(
            from_cp=self.core.config.name,
            to_cp=to,
            epoch=epoch,
            duration_ms=duration_ms,
            sessions=sessions,
        )

    async def MoveGroup(  # noqa: N802
        self, request: management_pb2.MoveGroupRequest, context: grpc.aio.ServicerContext
    ) -> management_pb2.MoveGroupReply:
        try:
            takeover, error = await self.runtime.move_group(
                request.group_id, request.to_dp, request.timeout_s or 10.0
            )
        except ValueError as exc:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        except TimeoutError:
            await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "the move did not complete")
        if not isinstance(takeover, Takeover):
            await context.abort(grpc.StatusCode.ABORTED, f"move aborted: {error}")
        assert isinstance(takeover, Takeover)
        return management_pb2.MoveGroupReply(
            from_dp=takeover.from_node,
            to_dp=takeover.to_node,
            sessions=takeover.sessions,
            duration_ms=takeover.takeover_ms,
        )

    async def ListModems(  # noqa: N802
        self, request: management_pb2.ModemQuery, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[management_pb2.ModemPage]:
        rows = self.core.cable.rows(
            bytes(request.mac), request.state, request.all, time.monotonic()
        )
        size = request.page_size or PAGE
        for start in range(0, len(rows), size):
            yield management_pb2.ModemPage(
                modems=[
                    management_pb2.ModemInfo(
                        mac=r.mac,
                        state=r.state,
                        sid=r.sid,
                        group=r.group,
                        dp=r.dp,
                        cpe_mac=r.cpe_mac,
                        cpe_ipv4=r.cpe_ipv4,
                        service_class=r.service_class,
                        up_kbps=r.up_kbps,
                        down_kbps=r.down_kbps,
                        uptime_s=r.uptime_s,
                        up_bytes=r.up_bytes,
                        down_bytes=r.down_bytes,
                        reason=r.reason,
                        session_key=r.session_key,
                        forwarding=r.forwarding,
                    )
                    for r in rows[start : start + size]
                ]
            )

    async def SetModemServiceClass(  # noqa: N802
        self, request: management_pb2.ModemServiceClassRequest, context: grpc.aio.ServicerContext
    ) -> management_pb2.ModemReply:
        mac = bytes(request.mac)
        core = self.core
        if request.service_class not in core.directory.profiles:
            known = ", ".join(sorted(core.directory.profiles))
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"unknown service class {request.service_class!r} (known: {known})",
            )
        provisioned = core.cable.directory.get(mac)
        if provisioned is None:
            await context.abort(
                grpc.StatusCode.NOT_FOUND, f"cable modem {mac_to_str(mac)} is not provisioned"
            )
        if self.runtime.role != "active":
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "not the active control plane")
        assert provisioned is not None
        changed = dataclasses.replace(provisioned, service_class=request.service_class)
        self.runtime.store.put_modems([changed])
        core.put_modems([changed], time.monotonic())
        self.runtime.flush()
        return management_pb2.ModemReply(online=mac in core.cable.by_mac)

    async def ResetModem(  # noqa: N802
        self, request: management_pb2.ModemRequest, context: grpc.aio.ServicerContext
    ) -> management_pb2.ModemReply:
        if self.runtime.role != "active":
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "not the active control plane")
        mac = bytes(request.mac)
        if not self.core.reset_modem(mac, time.monotonic()):
            await context.abort(
                grpc.StatusCode.NOT_FOUND, f"cable modem {mac_to_str(mac)} is not online"
            )
        self.runtime.flush()
        return management_pb2.ModemReply(online=True)


async def _regex(pattern: str, context: grpc.aio.ServicerContext) -> re.Pattern[str] | None:
    if not pattern:
        return None
    try:
        return re.compile(pattern)
    except re.error as exc:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"bad regular expression: {exc}")
    raise AssertionError("unreachable")


async def _session_query(
    request: management_pb2.SessionQuery, context: grpc.aio.ServicerContext
) -> SessionQuery:
    await _regex(request.username_regex, context)
    if request.ipv4:
        try:
            int_to_ip(ip_to_int(request.ipv4))
        except ValueError:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"not an IPv4 address: {request.ipv4!r}"
            )
    states = {s.value for s in SessionState}
    if request.state and request.state not in states:
        await context.abort(
            grpc.StatusCode.INVALID_ARGUMENT, f"state is one of {', '.join(sorted(states))}"
        )
    return SessionQuery(
        request.username_regex, request.dp, request.ipv4, request.client_mac, request.state
    )


def _subscriber_problem(msg: management_pb2.Subscriber, profiles: set[str]) -> str:
    if not msg.username or len(msg.username.encode()) > 255:
        return "username must be 1..255 bytes"
    if not msg.secret or len(msg.secret.encode()) > 255:
        return "secret must be 1..255 bytes"
    if msg.auth_type and msg.auth_type not in {str(a) for a in AuthType}:
        return f"auth type {msg.auth_type!r} is not pap, chap or any"
    if msg.rate_profile and msg.rate_profile not in profiles:
        return f"unknown rate profile {msg.rate_profile!r} (known: {', '.join(sorted(profiles))})"
    return ""


__all__ = ["ManagementServicer", "SessionControlServicer", "mac_to_str"]
