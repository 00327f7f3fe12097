"""vnf — bring up a CUPS broadband access gateway lab, dial subscribers, push traffic, inspect.

Thin click group: each command imports what it needs, calls into the lab adapters or a node's
gRPC API, and prints a table (accel-cmd layout), JSON or CSV. A user mistake is one line on
stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, NoReturn

import click

from vnf.console.cable import cable_group
from vnf.console.common import OUTPUT
from vnf.console.common import client as _client
from vnf.console.common import fail as _fail
from vnf.console.common import lab_name as _lab_name
from vnf.console.common import progress as _progress
from vnf.console.maintenance import fail_group, move_group, repair_group, switchover_group


def _usage_error(exc: click.UsageError, ctx: click.Context) -> NoReturn:
    """A usage mistake is one line too (click's own layout is three), exit status 2."""
    if isinstance(exc, getattr(click.exceptions, "NoArgsIsHelpError", ())):
        raise exc  # a bare group name: its help, as click prints it
    where = exc.ctx.command_path if exc.ctx is not None else ctx.command_path
    click.echo(f"{where}: {exc.format_message()} (try '{where} --help')", err=True)
    sys.exit(exc.exit_code)


class VnfGroup(click.Group):
    """Maps our errors and gRPC failures to one line on stderr and exit status 1 (2 for a
    usage mistake)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            _usage_error(exc, ctx)

    def invoke(self, ctx: click.Context) -> Any:
        import grpc

        from vnf.errors import ConfigError, VnfError

        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            _usage_error(exc, ctx)
        except ConfigError as exc:
            _fail(f"configuration error: {exc}")
        except VnfError as exc:
            _fail(str(exc))
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else None
            details = exc.details() if hasattr(exc, "details") else str(exc)
            if code is not None and code.name in ("UNAVAILABLE", "DEADLINE_EXCEEDED"):
                _fail(f"a lab node did not answer ({code.name.lower()}): is the lab up? {details}")
            if code is not None and code.name == "UNIMPLEMENTED":
                _fail(f"the node does not implement this yet: {details}")
            _fail(details or str(exc))
        except KeyboardInterrupt:
            _fail("interrupted", 130)
        except PermissionError as exc:
            _fail(f"permission denied: {exc.filename or exc} (run as root)")


@click.group(cls=VnfGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--lab", envvar="VNF_LAB", help="Lab to act on (default: the only running lab).")
@click.version_option(package_name="vnf")
@click.pass_context
def main(ctx: click.Context, lab: str | None) -> None:
    """Simulate a converged vBRAS/vCCAP with a separated control plane and data plane.

    \b
    Quick start (as root):
      vnf demo                 bring up the default lab, dial, run traffic, report, tear down
      vnf lab up               bring up the default lab and dial its subscribers
      vnf sessions             list PPPoE sessions (accel-cmd layout)
      vnf lab down             remove everything the lab created
    """
    ctx.ensure_object(dict)
    ctx.obj["lab"] = lab


# --------------------------------------------------------------------------------- lab


@main.group()
def lab() -> None:
    """Bring labs up and down, show and extend them."""


@lab.command("up")
@click.argument("topology", required=False, type=click.Path(dir_okay=False))
@click.option("--no-dial", is_flag=True, help="Do not dial the subscribers after bring-up.")
@click.option("--timeout", default=90.0, show_default=True, help="Seconds to wait for the nodes.")
@click.option("--keep-on-failure", is_flag=True, help="Leave a failed lab in place to inspect.")
def lab_up(topology: str | None, no_dial: bool, timeout: float, keep_on_failure: bool) -> None:
    """Create the lab described by TOPOLOGY (YAML; default: the built-in default lab)."""
    from vnf.lab.adapters import lifecycle

    topo, raw = lifecycle.load_topology(topology)
    started = time.monotonic()
    click.echo(f"bringing up lab {topo.name}")
    state = lifecycle.up(
        topo, raw, topology or "", _progress, timeout_s=timeout, keep_on_failure=keep_on_failure
    )
    click.echo(f"lab {state.lab} is up in {time.monotonic() - started:.1f} s")
    if not no_dial and any(site.dial.autostart for site in topo.sites):
        from vnf.lab.adapters.clients import LabClient
        from vnf.lab.adapters.operations import dial_and_wait
        from vnf.lab.adapters.state import StateStore

        per_site = {
            s.name: (s.dial.rate, s.dial.max_outstanding) for s in topo.sites if s.dial.autostart
        }
        with LabClient(StateStore(), state.lab) as client:
            dial_and_wait(
                client, timeout_s=max(60.0, timeout), progress=_progress, per_site=per_site
            )
    click.echo("try: vnf sessions | vnf stats | vnf lab status | vnf lab down")


@lab.command("down")
@click.option("--cleanup", is_flag=True, help="Also delete the lab's data directory (logs, store).")
@click.pass_context
def lab_down(ctx: click.Context, cleanup: bool) -> None:
    """Stop every process and remove every namespace, link and bridge the lab created."""
    from vnf.lab.adapters import lifecycle

    name = _lab_name(ctx)
    click.echo(f"tearing down lab {name}")
    lifecycle.down(name, _progress, cleanup=cleanup)
    click.echo(f"lab {name} is down")


@lab.command("list")
def lab_list() -> None:
    """Labs recorded on this machine."""
    from vnf.lab.adapters.state import StateStore

    store = StateStore()
    for name in store.labs():
        state = store.load(name)
        click.echo(f"{name}\t{state.status}\tindex {state.index}\t{state.data_dir}")


@lab.command("status")
@OUTPUT
@click.pass_context
def lab_status(ctx: click.Context, output: str) -> None:
    """Every node: kind, role, health, address, metrics URL; the CP pair (role, epoch, peer,
    replication lag); groups and the DP serving each; DP roles; active faults."""
    import grpc

    from vnf.console import format as fmt
    from vnf.lab.adapters.faults import active_faults
    from vnf.lab.adapters.lifecycle import lab_status as orchestrator_status

    with _client(ctx) as client:
        state = client.state
        try:
            status = orchestrator_status(client.store, client.lab)
            nodes = {n.name: n for n in status.nodes}
        except grpc.RpcError:
            nodes = {}
            click.echo(
                "vnf: the orchestrator does not answer (crashed?): showing recorded state", err=True
            )
        rows = []
        for rec in state.nodes:
            n = nodes.get(rec.name)
            rows.append(
                {
                    "node": rec.name,
                    "kind": rec.kind,
                    "role": rec.role,
                    "site": rec.site,
                    "state": n.state if n else "unknown",
                    "health": (n.health if n else "") or "-",
                    "pid": n.pid if n and n.pid else "",
                    "address": n.grpc_address if n and n.grpc_address else rec.mgmt_ip or "-",
                    "metrics": n.metrics_url if n and n.metrics_url else "",
                    "netns": rec.netns,
                    "restarts": n.restarts if n else 0,
                }
            )
        views = client.cp_statuses(timeout_s=1.0)
        faults = active_faults(client)
    cps = [fmt.cp_row(v) for v in views]
    answering = [v for v in views if v.status is not None]
    active = [v for v in answering if v.status.role == "active"]
    chosen = max(active, key=lambda v: v.status.epoch) if active else None
    chosen = chosen or (answering[0] if answering else None)
    cp_status = chosen.status if chosen else None
    # Roles as they are now (a takeover swaps them), not as the topology configured them.
    live = {v.node.name: v.status.role for v in answering}
    if cp_status is not None:
        live.update({d.dp_id: d.role for d in cp_status.dps if d.connected})
    for row in rows:
        row["role"] = live.get(row["node"], row["role"])
    groups, dps = fmt.placement_rows(cp_status)
    fault_rows = fmt.fault_rows(faults, time.time())
    if output == "json":
        import json

        click.echo(
            json.dumps(
                {
                    "lab": state.lab,
                    "status": state.status,
                    "management": state.mgmt_subnet,
                    "cp": {
                        "name": cp_status.name if cp_status else "",
                        "role": cp_status.role if cp_status else "",
                        "epoch": cp_status.epoch if cp_status else 0,
                        "sessions": cp_status.sessions if cp_status else 0,
                    },
                    "cps": cps,
                    "nodes": rows,
                    "groups": groups,
                    "dps": dps,
                    "faults": fault_rows,
                },
                indent=2,
            )
        )
        return
    click.echo(
        f"lab {state.lab}: {state.status}, management {state.mgmt_subnet} "
        f"(this host {state.root_mgmt_ip})"
        + (
            f", active cp {cp_status.name} epoch {cp_status.epoch}, {cp_status.sessions} sessions"
            if cp_status and cp_status.role == "active"
            else ", no active cp"
        )
    )
    sections = [(rows, fmt.NODE_COLUMNS), (cps, fmt.CP_COLUMNS)]
    sections += [(x, c) for x, c in ((groups, fmt.GROUP_COLUMNS), (dps, fmt.DP_COLUMNS)) if x]
    if fault_rows:
        sections.append((fault_rows, fmt.FAULT_COLUMNS))
    click.echo("\n\n".join(fmt.render(r, c, output) for r, c in sections))
    if output == "table" and not fault_rows:
        click.echo("\nno active faults")


@lab.command("attach")
@click.argument("site")
@click.option("--netns", "netns_name", required=True, help="Namespace to put the veth end in.")
@click.option("--ifname", default="vnf0", show_default=True, help="Name of the veth end there.")
@click.pass_context
def lab_attach(ctx: click.Context, site: str, netns_name: str, ifname: str) -> None:
    """Give SITE's access segment a spare veth end in NETNS for any PPPoE client or tester.

    The namespace is created (and removed by `vnf lab down`) if it does not exist; an existing
    one is left alone, only the veth is removed with the lab.
    """
    from vnf.lab.adapters import lifecycle

    click.echo(lifecycle.attach(_lab_name(ctx), site, netns_name, ifname))


# --------------------------------------------------------------------------------- sessions


SESSION_COLUMNS = [
    ("username", "username"),
    ("calling_sid", "calling-sid"),
    ("sid", "sid"),
    ("ip", "ip"),
    ("dp", "dp"),
    ("state", "state"),
    ("uptime", "uptime"),
    ("rx_bytes", "rx-bytes"),
    ("tx_bytes", "tx-bytes"),
]


@main.command("sessions")
@click.option(
    "--match",
    "matches",
    multiple=True,
    metavar="FIELD=VALUE",
    help="Filter: user=REGEX, ip=ADDR, mac=MAC, state=STATE (repeatable).",
)
@click.option("--dp", default="", help="Only sessions served by this DP worker.")
@OUTPUT
@click.pass_context
def sessions(ctx: click.Context, matches: tuple[str, ...], dp: str, output: str) -> None:
    """PPPoE sessions, like `accel-cmd show sessions` (rx = from the subscriber)."""
    from vnf.api import management_pb2
    from vnf.console.format import human_bytes, render, uptime
    from vnf.model.addresses import int_to_ip, mac_to_str

    query = management_pb2.SessionQuery(dp=dp)
    fields = {"user": "username_regex", "ip": "ipv4", "mac": "client_mac", "state": "state"}
    for item in matches:
        key, sep, value = item.partition("=")
        if not sep or key not in fields:
            raise click.BadParameter(
                f"{item!r}: use user=REGEX, ip=ADDR, mac=MAC or state=STATE", param_hint="--match"
            )
        setattr(query, fields[key], value)
    with _client(ctx) as client:
        rows = []
        for page in client.management().ListSessions(query, timeout=30):
            for s in page.sessions:
                raw = output != "table"
                rows.append(
                    {
                        "username": s.username,
                        "calling_sid": mac_to_str(s.client_mac),
                        "sid": s.pppoe_session_id,
                        "ip": str(int_to_ip(s.ipv4)) if s.ipv4 else "",
                        "dp": s.dp,
                        "group": s.group,
                        "state": s.state,
                        "uptime": round(s.uptime_s, 3) if raw else uptime(s.uptime_s),
                        "rx_bytes": s.rx_bytes if raw else human_bytes(s.rx_bytes),
                        "tx_bytes": s.tx_bytes if raw else human_bytes(s.tx_bytes),
                        "rx_packets": s.rx_packets,
                        "tx_packets": s.tx_packets,
                        "auth": s.auth,
                        "acct_session_id": s.acct_session_id,
                        "session_key": s.session_key,
                    }
                )
    columns = SESSION_COLUMNS
    if output != "table":
        columns = [(k, k) for k in rows[0]] if rows else [(k, k) for k, _ in SESSION_COLUMNS]
    click.echo(render(rows, columns, output))
    if output == "table":
        click.echo(f"{len(rows)} sessions", err=True)


@main.group()
def session() -> None:
    """Act on sessions."""


@session.command("terminate")
@click.option("--user", default=None, help="Every session of this username.")
@click.option("--ip", default=None, help="The session holding this address.")
@click.option("--all", "all_", is_flag=True, help="Every session.")
@click.option(
    "--cause",
    default="admin-reset",
    show_default=True,
    help="RFC 2866 Acct-Terminate-Cause written in the accounting stop.",
)
@click.pass_context
def session_terminate(
    ctx: click.Context, user: str | None, ip: str | None, all_: bool, cause: str
) -> None:
    """LCP Terminate-Request, then PADT; the accounting stop records the cause."""
    from vnf.api import management_pb2

    chosen = [x for x in (user is not None, ip is not None, all_) if x]
    if len(chosen) != 1:
        raise click.UsageError("name exactly one of --user, --ip, --all")
    if user is not None:
        request = management_pb2.TerminateRequest(username=user, cause=cause)
    elif ip is not None:
        request = management_pb2.TerminateRequest(ipv4=ip, cause=cause)
    else:
        request = management_pb2.TerminateRequest(all=True, cause=cause)
    with _client(ctx) as client:
        reply = client.management().TerminateSessions(request, timeout=30)
    click.echo(f"terminating {reply.terminated} sessions")


# --------------------------------------------------------------------------------- subscribers


@main.group()
def subscribers() -> None:
    """The control plane's local subscriber store."""


@subscribers.command("add")
@click.argument("username")
@click.option("--secret", required=True, help="PAP password / CHAP secret.")
@click.option("--auth", type=click.Choice(["pap", "chap", "any"]), default="any", show_default=True)
@click.option("--rate-profile", default="default", show_default=True)
@click.pass_context
def subscribers_add(
    ctx: click.Context, username: str, secret: str, auth: str, rate_profile: str
) -> None:
    """Add (or update) a subscriber."""
    from vnf.api import management_pb2

    batch = management_pb2.SubscriberBatch(
        subscribers=[
            management_pb2.Subscriber(
                username=username, secret=secret, auth_type=auth, rate_profile=rate_profile
            )
        ]
    )
    with _client(ctx) as client:
        reply = client.management().PutSubscribers(batch, timeout=10)
    click.echo(f"{'added' if reply.added else 'updated'} {username}")


@subscribers.command("list")
@click.option("--match", "pattern", default="", help="Regular expression on the username.")
@click.option("--show-secrets", is_flag=True)
@OUTPUT
@click.pass_context
def subscribers_list(ctx: click.Context, pattern: str, show_secrets: bool, output: str) -> None:
    """List subscribers."""
    from vnf.api import management_pb2
    from vnf.console.format import render

    query = management_pb2.SubscriberQuery(username_regex=pattern, with_secrets=show_secrets)
    rows = []
    with _client(ctx) as client:
        for batch in client.management().ListSubscribers(query, timeout=30):
            for s in batch.subscribers:
                row = {"username": s.username, "auth": s.auth_type, "rate_profile": s.rate_profile}
                if show_secrets:
                    row["secret"] = s.secret
                rows.append(row)
    columns = [("username", "username"), ("auth", "auth"), ("rate_profile", "rate-profile")]
    if show_secrets:
        columns.append(("secret", "secret"))
    click.echo(render(rows, columns, output))


@subscribers.command("remove")
@click.argument("usernames", nargs=-1, required=True)
@click.pass_context
def subscribers_remove(ctx: click.Context, usernames: tuple[str, ...]) -> None:
    """Remove subscribers (their sessions stay up until they end)."""
    from vnf.api import management_pb2

    with _client(ctx) as client:
        reply = client.management().RemoveSubscribers(
            management_pb2.RemoveSubscribersRequest(usernames=list(usernames)), timeout=10
        )
    click.echo(f"removed {reply.removed}")
    if reply.missing:
        _fail(f"no such subscriber: {', '.join(reply.missing)}")


# --------------------------------------------------------------------------------- stats


@main.command("stats")
@OUTPUT
@click.pass_context
def stats(ctx: click.Context, output: str) -> None:
    """Counters of the control plane and of every data-plane worker."""
    import grpc

    from vnf.api import common_pb2
    from vnf.console.format import render

    rows: list[dict[str, Any]] = []
    with _client(ctx) as client:
        sources: list[tuple[str, Callable[[], Any]]] = [
            (
                client.active_cp().name,
                lambda: client.management().GetStats(common_pb2.Empty(), timeout=5),
            )
        ]
        for node in client.nodes("dp"):
            sources.append(
                (
                    node.name,
                    lambda n=node: client.dp_admin(n).GetStats(common_pb2.Empty(), timeout=5),
                )
            )
        for name, fetch in sources:
            try:
                reply = fetch()
            except grpc.RpcError as exc:
                click.echo(f"vnf: {name} did not answer: {exc.code().name}", err=True)
                continue
            for c in reply.counters:
                label = ",".join(f"{k}={v}" for k, v in sorted(c.labels.items()))
                rows.append({"node": name, "counter": c.name, "labels": label, "value": c.value})
    click.echo(
        render(
            rows,
            [("node", "node"), ("counter", "counter"), ("labels", "labels"), ("value", "value")],
            output,
        )
    )


# --------------------------------------------------------------------------------- accounting


ACCOUNTING_COLUMNS = [
    ("id", "id"),
    ("acct_session_id", "acct-session-id"),
    ("type", "type"),
    ("username", "username"),
    ("ip", "ip"),
    ("session_time", "session-time"),
    ("in_octets", "in-octets"),
    ("out_octets", "out-octets"),
    ("cause", "terminate-cause"),
]


@main.command("accounting")
@click.option("--user", "pattern", default="", help="Regular expression on the username.")
@click.option(
    "--type", "record_type", type=click.Choice(["start", "interim", "stop"]), default=None
)
@click.option("--session", "acct_session_id", default="", help="One Acct-Session-Id.")
@click.option("--limit", default=1000, show_default=True, help="Most recent N records.")
@click.option(
    "--db",
    default=None,
    type=click.Path(dir_okay=False),
    help="Read a CP store file directly (lab down).",
)
@OUTPUT
@click.pass_context
def accounting(
    ctx: click.Context,
    pattern: str,
    record_type: str | None,
    acct_session_id: str,
    limit: int,
    db: str | None,
    output: str,
) -> None:
    """Accounting records (start / interim / stop) from the CP's durable store.

    In/out octets follow RADIUS: in = from the subscriber (upstream), out = to it.
    """
    from vnf.console.format import render
    from vnf.model.accounting import AccountingRecord

    found: list[tuple[int, AccountingRecord]] = []
    if db:
        import os

        from control_plane.adapters.store import AccountingQuery, Store

        if not os.path.exists(db):
            _fail(f"{db}: no such file")
        store = Store(db, readonly=True)
        try:
            found = store.accounting(
                AccountingQuery(pattern, acct_session_id, record_type or "", limit)
            )
        finally:
            store.close()
    else:
        from vnf.api import convert, management_pb2

        query = management_pb2.AccountingQuery(
            username_regex=pattern,
            acct_session_id=acct_session_id,
            record_type=record_type or "",
            limit=limit,
        )
        with _client(ctx) as client:
            for page in client.management().ListAccounting(query, timeout=30):
                found.extend(convert.accounting_from_pb(r) for r in page.records)
    rows = [
        {
            "id": rid,
            "acct_session_id": r.acct_session_id,
            "type": str(r.record_type),
            "username": r.username,
            "ip": r.ipv4,
            "session_time": round(r.session_time_s, 1),
            "in_octets": r.up_bytes,
            "out_octets": r.down_bytes,
            "cause": r.terminate_cause,
            "in_packets": r.up_packets,
            "out_packets": r.down_packets,
            "client_mac": r.client_mac,
            "dp": r.dp,
        }
        for rid, r in found
    ]
    columns = (
        ACCOUNTING_COLUMNS
        if output == "table"
        else [(k, k) for k in (rows[0] if rows else dict(ACCOUNTING_COLUMNS))]
    )
    click.echo(render(rows, columns, output))


# --------------------------------------------------------------------------------- traffic, dial


KIND = click.option(
    "--kind",
    type=click.Choice(["", "pppoe", "docsis"]),
    default="",
    help="Only PPPoE subscribers or only cable modems (default: both).",
)


@main.command("dial")
@click.option("--count", default=0, help="How many idle subscribers (0: all).")
@click.option("--rate", default=0.0, help="New sessions per second (0: as fast as allowed).")
@click.option("--outstanding", default=0, help="Sessions in setup at once (0: 1000).")
@KIND
@click.pass_context
def dial(ctx: click.Context, count: int, rate: float, outstanding: int, kind: str) -> None:
    """Dial emulated subscribers (PPPoE) and power on emulated cable modems."""
    from vnf.api import emulator_pb2

    with _client(ctx) as client:
        total = 0
        for node in client.nodes("emulator"):
            total += (
                client.emulator(node)
                .Dial(
                    emulator_pb2.DialRequest(
                        count=count, rate=rate, max_outstanding=outstanding, kind=kind
                    ),
                    timeout=10,
                )
                .started
            )
    click.echo(f"dialing {total} subscribers")


@main.command("hangup")
@click.option("--user", default="", help="One subscriber (default: all).")
@click.pass_context
def hangup(ctx: click.Context, user: str) -> None:
    """Hang up emulated subscribers (LCP terminate, then PADT from the client)."""
    from vnf.api import emulator_pb2

    with _client(ctx) as client:
        total = 0
        for node in client.nodes("emulator"):
            total += (
                client.emulator(node)
                .Hangup(emulator_pb2.HangupRequest(username=user), timeout=10)
                .hung_up
            )
    click.echo(f"hung up {total} subscribers")


@main.group()
def traffic() -> None:
    """Sequence-numbered UDP between subscribers and the server host."""


@traffic.command("run")
@click.option("--duration", default=5.0, show_default=True, help="Seconds.")
@click.option(
    "--pps", default=10, show_default=True, help="Packets per second per session and direction."
)
@click.option("--size", default=128, show_default=True, help="IPv4 packet size in bytes.")
@click.option("--sessions", "max_sessions", default=0, help="Use at most N sessions (0: all up).")
@KIND
@OUTPUT
@click.pass_context
def traffic_run(
    ctx: click.Context,
    duration: float,
    pps: int,
    size: int,
    max_sessions: int,
    kind: str,
    output: str,
) -> None:
    """Run bidirectional traffic and print loss, reordering and latency per direction."""
    from vnf.lab.adapters.operations import run_traffic

    with _client(ctx) as client:
        reports = run_traffic(client, duration, pps, size, max_sessions, _progress, kind)
    _print_traffic(reports, output)


def _print_traffic(reports: list[Any], output: str) -> None:
    from vnf.console.format import render
    from vnf.lab.adapters.operations import TRAFFIC_COLUMNS, traffic_rows

    click.echo(render(traffic_rows(reports), TRAFFIC_COLUMNS, output))


# --------------------------------------------------------------------------------- demo


@main.command("demo")
@click.option("--subscribers", "count", default=200, show_default=True, help="PPPoE subscribers.")
@click.option("--modems", default=100, show_default=True, help="Cable modems (one CPE each).")
@click.option("--duration", default=5.0, show_default=True, help="Seconds of traffic.")
@click.option("--pps", default=10, show_default=True, help="Packets/s per session and direction.")
@click.option("--keep", is_flag=True, help="Leave the lab up at the end.")
@OUTPUT
def demo(count: int, modems: int, duration: float, pps: int, keep: bool, output: str) -> None:
    """The main job end to end: default lab up, dial, traffic, report, tear down."""
    from vnf.lab.adapters.demo import run_demo

    report = run_demo(count, duration, pps, keep, _progress, modems)
    if output == "json":
        import json

        click.echo(json.dumps(report, indent=2))
    else:
        from vnf.lab.adapters.demo import format_report

        click.echo(format_report(report))
    if report["sessions"]["up"] < report["sessions"]["total"]:
        sys.exit(1)


for _command in (fail_group, repair_group, switchover_group, move_group, cable_group):
    main.add_command(_command)


if __name__ == "__main__":
    main()
