"""Protobuf ⇄ domain model. Servicers are thin: message → here → domain call → here → message.

Nothing outside adapters and this module touches generated protobuf classes.
"""

from __future__ import annotations

import ipaddress
from typing import cast

from vnf.api import common_pb2, management_pb2, session_control_pb2
from vnf.model.accounting import AccountingRecord, RecordType
from vnf.model.group import SubscriberGroup
from vnf.model.session import (
    AccessType,
    Qos,
    RuleOp,
    RuleResult,
    SessionRule,
    TrafficEndpoint,
    Usage,
)
from vnf.model.subscriber import AuthType, Subscriber

PORT_ACCESS = common_pb2.PORT_ACCESS
PORT_CORE = common_pb2.PORT_CORE


def rule_to_pb(rule: SessionRule) -> session_control_pb2.SessionRule:
    e = rule.endpoint
    return session_control_pb2.SessionRule(
        op=cast(session_control_pb2.RuleOp.ValueType, int(rule.op)),
        session_key=rule.session_key,
        group=rule.group,
        endpoint=session_control_pb2.TrafficEndpoint(
            client_mac=e.client_mac,
            ac_mac=e.ac_mac,
            pppoe_session_id=e.pppoe_session_id,
            cm_sid=e.cm_sid,
            access=cast(session_control_pb2.AccessType.ValueType, int(e.access)),
            cpe_mac=e.cpe_mac,
        ),
        ipv4=rule.ipv4,
        qos=session_control_pb2.Qos(
            up_kbps=rule.qos.up_kbps,
            down_kbps=rule.qos.down_kbps,
            burst_bytes=rule.qos.burst_bytes,
        ),
        usage_interval_s=rule.usage_interval_s,
    )


def rule_from_pb(msg: session_control_pb2.SessionRule) -> SessionRule:
    e = msg.endpoint
    return SessionRule(
        op=RuleOp(msg.op),
        session_key=msg.session_key,
        group=msg.group,
        endpoint=TrafficEndpoint(
            client_mac=bytes(e.client_mac),
            ac_mac=bytes(e.ac_mac),
            pppoe_session_id=e.pppoe_session_id,
            cm_sid=e.cm_sid,
            access=AccessType(e.access) if e.access else AccessType.PPPOE,
            cpe_mac=bytes(e.cpe_mac),
        ),
        ipv4=msg.ipv4,
        qos=Qos(msg.qos.up_kbps, msg.qos.down_kbps, msg.qos.burst_bytes),
        usage_interval_s=msg.usage_interval_s,
    )


def usage_to_pb(usage: Usage) -> session_control_pb2.UsageReport:
    return session_control_pb2.UsageReport(
        session_key=usage.session_key,
        up_packets=usage.up_packets,
        up_bytes=usage.up_bytes,
        down_packets=usage.down_packets,
        down_bytes=usage.down_bytes,
        dropped=usage.dropped,
    )


def usage_from_pb(msg: session_control_pb2.UsageReport) -> Usage:
    return Usage(
        msg.session_key, msg.up_packets, msg.up_bytes, msg.down_packets, msg.down_bytes, msg.dropped
    )


def result_to_pb(result: RuleResult) -> session_control_pb2.RuleResult:
    return session_control_pb2.RuleResult(
        session_key=result.session_key, ok=result.ok, error=result.error
    )


def result_from_pb(msg: session_control_pb2.RuleResult) -> RuleResult:
    return RuleResult(msg.session_key, msg.ok, msg.error)


def group_to_pb(group: SubscriberGroup) -> session_control_pb2.GroupAssignment:
    return session_control_pb2.GroupAssignment(
        group_id=group.group_id,
        virtual_mac=group.virtual_mac,
        pool_network=int(group.pool.network_address),
        pool_prefix_len=group.pool.prefixlen,
    )


def group_from_pb(msg: session_control_pb2.GroupAssignment, site: str) -> SubscriberGroup:
    network = ipaddress.IPv4Network((msg.pool_network, msg.pool_prefix_len))
    return SubscriberGroup(msg.group_id, site, bytes(msg.virtual_mac), network)


def subscriber_to_pb(sub: Subscriber, with_secret: bool = True) -> management_pb2.Subscriber:
    return management_pb2.Subscriber(
        username=sub.username,
        secret=sub.secret if with_secret else "",
        auth_type=str(sub.auth_type),
        rate_profile=sub.rate_profile,
    )


def subscriber_from_pb(msg: management_pb2.Subscriber) -> Subscriber:
    return Subscriber(
        username=msg.username,
        secret=msg.secret,
        auth_type=AuthType(msg.auth_type or "any"),
        rate_profile=msg.rate_profile or "default",
    )


def accounting_to_pb(row_id: int, rec: AccountingRecord) -> management_pb2.AccountingRecord:
    return management_pb2.AccountingRecord(
        id=row_id,
        acct_session_id=rec.acct_session_id,
        record_type=str(rec.record_type),
        username=rec.username,
        client_mac=rec.client_mac,
        ipv4=rec.ipv4,
        pppoe_session_id=rec.pppoe_session_id,
        group=rec.group,
        dp=rec.dp,
        session_time_s=rec.session_time_s,
        up_packets=rec.up_packets,
        up_bytes=rec.up_bytes,
        down_packets=rec.down_packets,
        down_bytes=rec.down_bytes,
        terminate_cause=rec.terminate_cause,
        wall_time=rec.wall_time,
    )


def accounting_from_pb(msg: management_pb2.AccountingRecord) -> tuple[int, AccountingRecord]:
    return msg.id, AccountingRecord(
        acct_session_id=msg.acct_session_id,
        record_type=RecordType(msg.record_type),
        username=msg.username,
        client_mac=msg.client_mac,
        ipv4=msg.ipv4,
        pppoe_session_id=msg.pppoe_session_id,
        group=msg.group,
        dp=msg.dp,
        session_time_s=msg.session_time_s,
        up_packets=msg.up_packets,
        up_bytes=msg.up_bytes,
        down_packets=msg.down_packets,
        down_bytes=msg.down_bytes,
        terminate_cause=msg.terminate_cause,
        wall_time=msg.wall_time,
    )
